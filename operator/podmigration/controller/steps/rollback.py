"""Rollback: undo what the forward steps did, report why (SourceRestarted when the kubelet restarted the source)."""

from __future__ import annotations

import logging
from datetime import timedelta

from ... import api
from ...api import phases
from ...api.types import Obj, Rollback, annotations_of
from ...clients.kube import api_message, status_code
from ...domain import scheduling, sourcehealth
from ...domain import status as st
from ...domain.helpers import HelperError
from ..context import Run, generation
from ..runtime import Interrupt, OperatorStopping, StaleStatus
from . import baseimages, cleanup, restore, sourcepod

log = logging.getLogger(__name__)

#: How long a rollback waits for the deleted replacement to disappear before it retries.
REPLACEMENT_GONE_SECONDS = 60


def begin_rollback(run: Run, migration: Obj, interrupt: Interrupt) -> None:
    rollback: Rollback = {"phase": interrupt.outcome, "reason": interrupt.reason, "message": interrupt.message}
    patch = st.progress(
        migration.get("status") or {},
        f"rolling back: {interrupt.message}",
        run.deps.clock(),
        generation(migration),
        reason="RollingBack",
    )
    patch["rollback"] = rollback
    run.write(migration, patch)
    run.announce(migration, "Warning", "RollingBack", interrupt.message)


def _discard_replacement(run: Run, replacement: Obj) -> None:
    """Kill the never-promoted copy and wait until it is gone, so that it never answers beside the
    source once that is back in traffic (it carries the same labels).

    One second of grace, not 0: 0 is a force delete, the API object vanishes before the kubelet has
    stopped the containers, so the wait below would prove nothing. With 1 the kubelet kills the
    containers within a second and only then removes the object.
    """
    name, uid = replacement["metadata"]["name"], replacement["metadata"]["uid"]
    run.deps.kube.delete_pod(run.namespace, name, uid, grace_seconds=1)
    deadline = run.deps.clock() + timedelta(seconds=REPLACEMENT_GONE_SECONDS)
    while (pod := run.deps.kube.get_pod(run.namespace, name)) is not None and pod["metadata"]["uid"] == uid:
        node = pod["spec"].get("nodeName")
        if node and not _node_ready(run, node):
            _force_discard(run, pod, node)
            return
        if run.deps.clock() >= deadline:
            raise RuntimeError(f"replacement pod {name} is still terminating")
        run.sleep(run.deps.config.poll_seconds)


def _node_ready(run: Run, name: str) -> bool:
    return any(n["metadata"]["name"] == name and scheduling.node_ready(n) for n in run.deps.kube.list_nodes())


def _force_discard(run: Run, pod: Obj, node: str) -> None:
    """The replacement's node is not Ready (its kubelet is stopped or unreachable): nothing would ever finish
    its deletion, and the source would stay frozen meanwhile. Its processes are killed through the node-helper
    where it answers, and the object is removed (out of every Service); a kubelet that comes back stops the
    containers of a pod that no longer exists."""
    name, uid = pod["metadata"]["name"], pod["metadata"]["uid"]
    try:
        helper = run.helpers().get(node)
        if helper is not None:
            run.deps.helpers.freeze(helper, uid)
            run.deps.helpers.kill(helper, uid, thaw=True)
    except HelperError as exc:
        log.warning("%s/%s: could not kill replacement %s on node %s: %s", run.namespace, run.name, name, node, exc)
    run.deps.kube.delete_pod(run.namespace, name, uid, grace_seconds=0)
    run.event(
        pod,
        "Warning",
        "ReplacementForceDeleted",
        f"PodMigration {run.name}: node {node} is not Ready, so its kubelet cannot stop this pod; "
        "its processes were killed through the node-helper where it answered and the pod was deleted",
    )


def _restart_checked(run: Run, migration: Obj, pod: Obj, rollback: Obj) -> Obj:
    """The rollback's outcome, with reason SourceRestarted when the source's kubelet restarted or killed it
    while it was cut off and frozen: then no old process resumed, and saying so would be false."""
    since = st.phase_times(migration["status"]).get(phases.CHECKPOINTING)
    if since is None:
        return rollback
    current = run.deps.kube.get_pod(run.namespace, pod["metadata"]["name"]) or pod
    why = sourcehealth.restart_evidence(
        current,
        migration["status"].get("sourceRestarts") or {},
        run.deps.kube.pod_events(run.namespace, pod["metadata"]["name"], pod["metadata"]["uid"]),
        since,
    )
    if why is None:
        return rollback
    return {
        **rollback,
        "reason": "SourceRestarted",
        "message": f"{rollback['message']}; rolled back, but {why}: its state since the migration began is lost",
    }


def _note_refused(run: Run, migration: Obj, rollback: Obj, refused: list[str]) -> tuple[Obj, Obj]:
    """Put what the node-helper refused into the outcome's message, written at once (a retried rollback would
    not see it again: the pod is unfenced by then), and in a Warning."""
    rollback = {
        **rollback,
        "message": f"{rollback['message']}; while rolling back the node-helper refused: {'; '.join(refused)}",
    }
    migration = run.write(migration, {"rollback": rollback})
    run.announce(migration, "Warning", "RollbackStepRefused", "; ".join(refused))
    return migration, rollback


def roll_back(run: Run, migration: Obj) -> None:
    """Undo whatever the forward steps did, then end in the recorded outcome; retried until done."""
    status = migration["status"]
    rollback = status["rollback"]
    touched = status.get("phase") in (phases.CHECKPOINTING, phases.TRANSFERRING, phases.RESTORING)
    try:
        # First, so that an owner recreating the discarded pod starts it fresh, not as a restore.
        migration = restore.end_handover(run, migration)
        baseimages.discard_prepull(run, migration)
        replacement = run.deps.kube.get_pod(run.namespace, status["targetPod"]) if status.get("targetPod") else None
        if replacement and annotations_of(replacement).get(api.MIGRATION_ANNOTATION) == run.name:
            _discard_replacement(run, replacement)
        source_pod = run.source_pod(migration)
        if source_pod is not None and touched:
            refused = sourcepod.release_source(run, source_pod, status["sourceNode"])
            if refused:
                migration, rollback = _note_refused(run, migration, rollback, refused)
            rollback = _restart_checked(run, migration, source_pod, rollback)
        if touched and (refused_cleanup := sourcepod.refusal(cleanup.cleanup, run, migration)):
            migration, rollback = _note_refused(run, migration, rollback, [refused_cleanup])
    except (OperatorStopping, StaleStatus):
        raise  # not a failed rollback step: the operator exits, or another writer moved the status on
    except Exception as exc:
        message = api_message(exc) if status_code(exc) else str(exc)
        log.warning("%s/%s: rollback step failed: %s", run.namespace, run.name, message)
        run.progress(
            migration, f"rollback retrying in {run.deps.config.retry_seconds:g}s: {message}", reason="RollingBack"
        )
        run.sleep(run.deps.config.retry_seconds)
        return
    run.transition(
        migration,
        rollback["phase"],
        {"rollback": None},
        reason=rollback["reason"],
        message=rollback["message"],
        event_type="Warning",
    )
