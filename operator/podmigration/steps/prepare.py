"""Pending and Preparing: accept, wait for a slot under the limits, validate, record what a later step checks."""

from __future__ import annotations

from .. import limits, owners, phases, podspec, sourcehealth, volumes
from .. import status as st
from ..preflight import preflight
from ..refusals import Refusal
from ..runtime import Obj, Interrupt, StopFlag

#: How often a queued migration looks for a free slot.
QUEUED_POLL_SECONDS = 1.0


class PrepareSteps:
    """The prepare step(s) of MigrationRunner (mixed into it; ``self`` is the runner)."""

    def _accept(self, migration: Obj, stop: StopFlag) -> Obj:
        at = self.d.clock()
        patch = {
            "phase": phases.PENDING,
            "reason": phases.PENDING,
            "message": "migration accepted",
            "phaseTransitions": [{"phase": phases.PENDING, "time": st.format_time(at)}],
            "conditions": st.conditions_for([], phases.PENDING, phases.PENDING, "migration accepted", at,
                                            self._generation(migration)),
            "observedGeneration": self._generation(migration),
        }
        return self._write(migration, patch)

    def _start(self, migration: Obj, stop: StopFlag) -> Obj:
        """Start when the per-node and per-cluster limits leave a slot (oldest first); wait in Pending until then."""
        pod = self.d.kube.get_pod(self.namespace, migration["spec"]["podName"])
        node = ((pod or {}).get("spec") or {}).get("nodeName")
        with limits.START_LOCK:
            waiting = limits.why_waiting(migration, node, self.d.kube.list_migrations(None),
                                         self.d.config.max_outbound_per_node, self.d.config.max_per_cluster)
            if waiting is None:
                # sourceNode with the phase: the next migration counted under the lock must see where this one runs.
                return self._transition(migration, phases.PREPARING, {"sourceNode": node},
                                        message="validating the pod and the target node")
        status = migration.get("status") or {}
        if status.get("message") != waiting or status.get("sourceNode") != node:
            migration = self._write(migration, {"sourceNode": node, **st.progress(
                status, waiting, self.d.clock(), self._generation(migration), reason="Queued")})
        return self._pause(QUEUED_POLL_SECONDS, stop)

    def _prepare(self, migration: Obj, stop: StopFlag) -> Obj:
        status = migration.get("status") or {}
        spec = dict(migration["spec"])
        spec["targetNode"] = status.get("targetNode") or spec.get("targetNode")
        pod = self.d.kube.get_pod(self.namespace, spec["podName"])
        helpers = self._helpers()
        claims = volumes.read_claims(pod, lambda name: self.d.kube.get_claim(self.namespace, name),
                                     self.d.kube.get_volume) if pod else {}
        owner = owners.read_owner(pod, self.d.kube.get_owner) if pod else None
        plan = preflight(spec, self.namespace, pod, self.d.kube.list_nodes(),
                         {node: h.ready for node, h in helpers.items()}, self.name, claims, owner)
        if not plan.ok:
            first: Refusal = plan.refusals[0]
            raise Interrupt(phases.FAILED, first.reason, "; ".join(r.message for r in plan.refusals))
        assert pod is not None and plan.source_node and plan.target_node
        memory = self.d.helpers.pod_memory(helpers[plan.source_node], pod["metadata"]["uid"])
        expected = sourcehealth.expected_downtime(memory, self.d.config.downtime_base_seconds,
                                                  self.d.config.downtime_seconds_per_gib)
        warnings = sourcehealth.liveness_warnings(pod, expected)
        migration = self._write(migration, {
            "sourceNode": plan.source_node,
            "targetNode": plan.target_node,
            "targetPod": (pod["metadata"]["name"] if owners.strategy_for(pod).same_name
                          else podspec.replacement_name(pod["metadata"]["name"], migration["metadata"]["uid"])),
            "sourcePodUID": pod["metadata"]["uid"],
            "sourceRestarts": sourcehealth.restart_counts(pod),
            "owner": owners.strategy_for(pod).record(owner),
            "expectedDowntime": expected,
            "warnings": warnings,
        })
        for warning in warnings:
            self._event(migration, "Warning", "LivenessProbeRisk", warning)
        images = podspec.base_images(pod)
        self._progress(migration, f"making sure {len(images)} base image(s) are on {plan.target_node}")
        self.d.helpers.ensure_images(helpers[plan.target_node], images, helpers[plan.source_node],
                                     timeout=self._remaining(migration))
        return self._transition(migration, phases.CHECKPOINTING,
                                message=f"fencing and checkpointing on {plan.source_node}")
