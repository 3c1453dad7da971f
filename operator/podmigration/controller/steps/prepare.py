"""Pending and Preparing: accept, wait for a slot under the limits, validate, record what a later step checks."""

from __future__ import annotations

from ...api import phases
from ...api.types import Obj, status_of
from ...domain import helperoutage, limits, owners, podspec, sourcehealth, volumes
from ...domain import status as st
from ...domain.preflight import preflight, read_around
from ...domain.refusals import Refusal
from ..context import Run, generation
from ..runtime import Interrupt, WaitForSlot
from . import baseimages


def accept(run: Run, migration: Obj) -> Obj:
    at = run.deps.clock()
    patch = {
        "phase": phases.PENDING,
        "reason": phases.PENDING,
        "message": "migration accepted",
        "phaseTransitions": [{"phase": phases.PENDING, "time": st.format_time(at)}],
        "conditions": st.conditions_for(
            [], phases.PENDING, phases.PENDING, "migration accepted", at, generation(migration)
        ),
        "observedGeneration": generation(migration),
    }
    return run.write(migration, patch)


def start(run: Run, migration: Obj) -> Obj:
    """Start when the limits leave a slot (domain/limits.py: fair across namespaces); else wait in Pending, or give
    up (QueueFull, QueueTimeout). Nothing is touched before Preparing: ending here needs no rollback."""
    config = run.deps.config
    pod = run.deps.kube.get_pod(run.namespace, migration["spec"]["podName"])
    node = ((pod or {}).get("spec") or {}).get("nodeName")
    with limits.START_LOCK:
        migrations = run.deps.kube.list_migrations(None)
        queued = limits.why_waiting(migration, node, migrations, config.limits)
        if queued is None:
            # sourceNode with the phase: the next migration counted under the lock must see where this one runs.
            return run.transition(
                migration, phases.PREPARING, {"sourceNode": node}, message="validating the pod and the target node"
            )
    full = limits.queue_full(migration, run.namespace, migrations, config.max_queued_per_namespace)
    if full:
        raise Interrupt(phases.FAILED, limits.QUEUE_FULL, full)
    status = status_of(migration)
    timeout = migration["spec"].get("queueTimeoutSeconds") or config.max_queue_seconds
    expired = limits.queue_timeout(run.phase_seconds(migration), timeout, queued)
    if expired:
        raise Interrupt(phases.FAILED, "QueueTimeout", expired)
    if status.get("message") != queued.message or status.get("sourceNode") != node:
        migration = run.write(
            migration,
            {
                "sourceNode": node,
                **st.progress(status, queued.message, run.deps.clock(), generation(migration), reason="Queued"),
            },
        )
    raise WaitForSlot(queued.poll_seconds)


def prepare(run: Run, migration: Obj) -> Obj:
    status = status_of(migration)
    spec = dict(migration["spec"])
    spec["targetNode"] = status.get("targetNode") or spec.get("targetNode")
    pod = run.deps.kube.get_pod(run.namespace, spec["podName"])
    helpers = run.helpers()
    claims = (
        volumes.read_claims(pod, lambda name: run.deps.kube.get_claim(run.namespace, name), run.deps.kube.get_volume)
        if pod
        else {}
    )
    owner = owners.read_owner(pod, run.deps.kube.get_owner) if pod else None
    plan = preflight(
        spec,
        run.namespace,
        pod,
        run.deps.kube.list_nodes(),
        {node: h.ready for node, h in helpers.items()},
        run.name,
        claims,
        owner,
        around=read_around(run.deps.kube) if pod else None,
    )
    if not plan.ok:
        if helperoutage.preparing_wait(
            plan.refusals, run.phase_seconds(migration), run.deps.config.helper_restart_seconds
        ):
            raise helperoutage.HelperUnavailable(
                [n for n in (plan.source_node, plan.target_node) if n], "; ".join(r.message for r in plan.refusals)
            )
        first: Refusal = plan.refusals[0]
        raise Interrupt(phases.FAILED, first.reason, "; ".join(r.message for r in plan.refusals))
    assert pod is not None and plan.source_node and plan.target_node
    memory = run.deps.helpers.pod_memory(helpers[plan.source_node], pod["metadata"]["uid"])
    expected = sourcehealth.expected_downtime(
        memory, run.deps.config.downtime_base_seconds, run.deps.config.downtime_seconds_per_gib
    )
    warnings = sourcehealth.liveness_warnings(pod, expected)
    migration = run.write(
        migration,
        {
            "sourceNode": plan.source_node,
            "targetNode": plan.target_node,
            "targetPod": (
                pod["metadata"]["name"]
                if owners.strategy_for(pod).same_name
                else podspec.replacement_name_of(pod, migration["metadata"]["uid"])
            ),
            "sourcePodUID": pod["metadata"]["uid"],
            "sourceRestarts": sourcehealth.restart_counts(pod),
            "originalImages": podspec.original_images(pod),
            "sourceRestoredBy": podspec.restored_by(pod),
            "owner": owners.strategy_for(pod).record(owner),
            "expectedDowntime": expected,
            "warnings": warnings,
        },
    )
    for warning in warnings:
        run.event(migration, "Warning", "LivenessProbeRisk", warning)
    migration = baseimages.ensure(run, migration, pod, helpers[plan.target_node], helpers[plan.source_node])
    return run.transition(migration, phases.CHECKPOINTING, message=f"fencing and checkpointing on {plan.source_node}")
