"""Rollback: undo what the forward steps did, report why (SourceRestarted when the kubelet restarted the source)."""

from __future__ import annotations

import logging
from datetime import timedelta

from .. import api, fencing, phases, scheduling, sourcehealth
from .. import status as st
from ..helperclient import HelperError
from ..kube import api_message, status_code
from ..runtime import Obj, Interrupt, OperatorStopping, StaleStatus, StopFlag

log = logging.getLogger(__name__)

#: How long a rollback waits for the deleted replacement to disappear before it retries.
REPLACEMENT_GONE_SECONDS = 60


class RollbackSteps:
    """The rollback step(s) of MigrationRunner (mixed into it; ``self`` is the runner)."""

    def _begin_rollback(self, migration: Obj, interrupt: Interrupt) -> None:
        rollback = {"phase": interrupt.outcome, "reason": interrupt.reason, "message": interrupt.message}
        patch = st.progress(migration.get("status") or {}, f"rolling back: {interrupt.message}", self.d.clock(),
                            self._generation(migration), reason="RollingBack")
        patch["rollback"] = rollback
        self._write(migration, patch)
        self._announce(migration, "Warning", "RollingBack", interrupt.message)

    def _release_source(self, pod: Obj, node: str) -> None:
        """Thaw the source, reconnect its network and put it back into Service traffic, as it was before.

        Only a pod this migration fenced can have been frozen or cut by it (the fence comes first and is
        removed last), so another migration's pod is never thawed.
        """
        patch = fencing.unfence_patch(pod, self.name)
        if patch is None:
            return
        helper = self._helper(node)
        self.d.helpers.thaw(helper, pod["metadata"]["uid"])
        self.d.helpers.network_restore(helper, pod["metadata"]["uid"])
        self.d.kube.patch_pod(self.namespace, pod["metadata"]["name"], patch)

    def _discard_replacement(self, replacement: Obj, stop: StopFlag) -> None:
        """Kill the never-promoted copy and wait until it is gone, so that it never answers beside the
        source once that is back in traffic (it carries the same labels).

        One second of grace, not 0: 0 is a force delete, the API object vanishes before the kubelet has
        stopped the containers, so the wait below would prove nothing. With 1 the kubelet kills the
        containers within a second and only then removes the object.
        """
        name, uid = replacement["metadata"]["name"], replacement["metadata"]["uid"]
        self.d.kube.delete_pod(self.namespace, name, uid, grace_seconds=1)
        deadline = self.d.clock() + timedelta(seconds=REPLACEMENT_GONE_SECONDS)
        while (pod := self.d.kube.get_pod(self.namespace, name)) is not None and pod["metadata"]["uid"] == uid:
            node = pod["spec"].get("nodeName")
            if node and not self._node_ready(node):
                self._force_discard(pod, node)
                return
            if self.d.clock() >= deadline:
                raise RuntimeError(f"replacement pod {name} is still terminating")
            self._sleep(self.d.config.poll_seconds, stop)

    def _node_ready(self, name: str) -> bool:
        return any(n["metadata"]["name"] == name and scheduling.node_ready(n) for n in self.d.kube.list_nodes())

    def _force_discard(self, pod: Obj, node: str) -> None:
        """The replacement's node is not Ready (its kubelet is stopped or unreachable): nothing would ever finish
        its deletion, and the source would stay frozen meanwhile. Its processes are killed through the node-helper
        where it answers, and the object is removed (out of every Service); a kubelet that comes back stops the
        containers of a pod that no longer exists."""
        name, uid = pod["metadata"]["name"], pod["metadata"]["uid"]
        try:
            helper = self._helpers().get(node)
            if helper is not None:
                self.d.helpers.freeze(helper, uid)
                self.d.helpers.kill(helper, uid, thaw=True)
        except HelperError as exc:
            log.warning("%s/%s: could not kill replacement %s on node %s: %s", self.namespace, self.name, name, node,
                        exc)
        self.d.kube.delete_pod(self.namespace, name, uid, grace_seconds=0)
        self._event(pod, "Warning", "ReplacementForceDeleted",
                    f"PodMigration {self.name}: node {node} is not Ready, so its kubelet cannot stop this pod; "
                    "its processes were killed through the node-helper where it answered and the pod was deleted")

    def _restart_checked(self, migration: Obj, pod: Obj, rollback: Obj) -> Obj:
        """The rollback's outcome, with reason SourceRestarted when the source's kubelet restarted or killed it
        while it was cut off and frozen: then no old process resumed, and saying so would be false."""
        since = st.phase_times(migration["status"]).get(phases.CHECKPOINTING)
        if since is None:
            return rollback
        current = self.d.kube.get_pod(self.namespace, pod["metadata"]["name"]) or pod
        why = sourcehealth.restart_evidence(current, migration["status"].get("sourceRestarts") or {},
                                            self.d.kube.pod_events(self.namespace, pod["metadata"]["name"],
                                                                   pod["metadata"]["uid"]), since)
        if why is None:
            return rollback
        return {**rollback, "reason": "SourceRestarted",
                "message": f"{rollback['message']}; rolled back, but {why}: its state since the migration began "
                           "is lost"}

    def _roll_back(self, migration: Obj, stop: StopFlag) -> None:
        """Undo whatever the forward steps did, then end in the recorded outcome; retried until done."""
        status = migration["status"]
        rollback = status["rollback"]
        touched = status.get("phase") in (phases.CHECKPOINTING, phases.TRANSFERRING, phases.RESTORING)
        try:
            # First, so that an owner recreating the discarded pod starts it fresh, not as a restore.
            migration = self._end_handover(migration)
            replacement = self.d.kube.get_pod(self.namespace, status["targetPod"]) if status.get("targetPod") else None
            if replacement and (replacement["metadata"].get("annotations") or {}).get(
                    api.MIGRATION_ANNOTATION) == self.name:
                self._discard_replacement(replacement, stop)
            source_pod = self._source_pod(migration)
            if source_pod is not None and touched:
                self._release_source(source_pod, status["sourceNode"])
                rollback = self._restart_checked(migration, source_pod, rollback)
            if touched:
                self._cleanup(migration)
        except (OperatorStopping, StaleStatus):
            raise  # not a failed rollback step: the operator exits, or another writer moved the status on
        except Exception as exc:
            message = api_message(exc) if status_code(exc) else str(exc)
            log.warning("%s/%s: rollback step failed: %s", self.namespace, self.name, message)
            self._progress(migration, f"rollback retrying in {self.d.config.retry_seconds:g}s: {message}",
                           reason="RollingBack")
            self._sleep(self.d.config.retry_seconds, stop)
            return
        self._transition(migration, rollback["phase"], {"rollback": None}, reason=rollback["reason"],
                         message=rollback["message"], event_type="Warning")
