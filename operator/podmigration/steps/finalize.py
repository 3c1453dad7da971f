"""Finalizing: end the source without letting it run again, hand the replacement to its owner, clean up."""

from __future__ import annotations

import logging
from datetime import timedelta

from .. import owners, phases
from .. import status as st
from ..helperclient import Helper, HelperError
from ..runtime import Obj, StopFlag

log = logging.getLogger(__name__)

#: How long a successful migration waits for the source's kubelet to start stopping the deleted source before
#: it thaws the (already killed) processes anyway.
KUBELET_STOPPING_SECONDS = 10


class FinalizeSteps:
    """The finalize step(s) of MigrationRunner (mixed into it; ``self`` is the runner)."""

    def _finalize(self, migration: Obj, stop: StopFlag) -> Obj:
        status = migration["status"]
        skipped: list[str] = []
        source_pod = self._source_pod(migration)
        if source_pod is not None:
            replacement = self.d.kube.get_pod(self.namespace, status["targetPod"])
            try:
                if migration["spec"].get("keepSource"):
                    self._release_source(source_pod, status["sourceNode"])
                else:
                    self._kill_source(source_pod, status["sourceNode"], replacement, stop)
            except HelperError as exc:
                skipped.append(self._without_source_helper(migration, source_pod, replacement, exc))
        migration = self._end_handover(migration)
        skipped += self._cleanup(migration, give_up=self._helper_wait_over(migration))
        kept = " (source kept running)" if migration["spec"].get("keepSource") else ""
        message = f"pod {status['targetPod']} runs on {status['targetNode']}{kept}"
        if not skipped:
            return self._transition(migration, phases.SUCCEEDED, message=message)
        return self._transition(migration, phases.SUCCEEDED,
                                {"warnings": list(status.get("warnings") or []) + skipped},
                                reason="CleanupSkipped", message=f"{message}; " + "; ".join(skipped),
                                event_type="Warning")

    def _helper_wait_over(self, migration: Obj) -> bool:
        """Whether Finalizing has waited long enough for an unreachable node-helper: the replacement serves, and a
        node that is down (or a helper that is not scheduled) must not keep the migration from ever ending."""
        since = st.phase_times(migration["status"]).get(phases.FINALIZING)
        wait = timedelta(seconds=self.d.config.finalize_helper_wait_seconds)
        return since is not None and self.d.clock() - since >= wait

    def _without_source_helper(self, migration: Obj, pod: Obj, replacement: Obj | None, exc: HelperError) -> str:
        """End the source through the API alone once its node-helper stayed unreachable past the wait (else
        re-raise, so the step is retried). It stays frozen and cut off from the network; its kubelet, if the
        node comes back, stops it, and a SIGKILL reaches frozen processes before any handler of a SIGTERM."""
        if not self._helper_wait_over(migration):
            raise exc
        node = migration["status"]["sourceNode"]
        if migration["spec"].get("keepSource"):
            note = (f"node-helper on {node} unreachable ({exc}): the kept source pod {pod['metadata']['name']} could "
                    "not be thawed and reconnected; it stays frozen and cut off from the network")
            self._event(migration, "Warning", "SourceNotReleased", note)
            return note
        if replacement is not None:
            owners.strategy_for(pod).hand_over(self.d.kube, self.namespace, pod, replacement)
        self.d.kube.delete_pod(self.namespace, pod["metadata"]["name"], pod["metadata"]["uid"])
        note = (f"node-helper on {node} unreachable ({exc}): the source pod {pod['metadata']['name']} was deleted "
                "without being killed while frozen; it stays frozen and cut off from the network until its kubelet "
                "stops it")
        log.warning("%s/%s: %s", self.namespace, self.name, note)
        self._event(migration, "Warning", "SourceNotKilled", note)
        return note

    def _kill_source(self, pod: Obj, node: str, replacement: Obj | None, stop: StopFlag) -> None:
        """End the source without letting its processes run again: their state lives on in the replacement.

        SIGKILL is queued while the pod is frozen, which makes the kernel drop any later SIGTERM; only then is
        the pod deleted, so the kubelet (which never restarts a container of a deleted pod) stops it without a
        preStop hook or SIGTERM handler ever running; the thaw waits until the kubelet has begun stopping it
        (its Killing Event), so the death it sees is never taken for a crash to restart from.
        """
        helper, uid, name = self._helper(node), pod["metadata"]["uid"], pod["metadata"]["name"]
        killed = self.d.helpers.kill(helper, uid, thaw=False).get("killed", 0)
        if replacement is not None:
            owners.strategy_for(pod).hand_over(self.d.kube, self.namespace, pod, replacement)
        self.d.kube.delete_pod(self.namespace, name, uid)
        deadline = self.d.clock() + timedelta(seconds=KUBELET_STOPPING_SECONDS)
        while self.d.clock() < deadline and self._source_pod_present(name, uid) and not any(
                e.get("reason") == "Killing" for e in self.d.kube.pod_events(self.namespace, name, uid)):
            self._sleep(self.d.config.poll_seconds, stop)
        try:
            self.d.helpers.thaw(helper, uid)
        except HelperError as exc:
            if exc.status != 404:
                raise
            log.info("%s/%s: source %s already gone at the thaw: %s", self.namespace, self.name, name, exc)
        log.info("%s/%s: source pod %s killed while frozen (%s processes) and deleted", self.namespace, self.name,
                 name, killed)

    def _source_pod_present(self, name: str, uid: str) -> bool:
        pod = self.d.kube.get_pod(self.namespace, name)
        return pod is not None and pod["metadata"]["uid"] == uid

    def _cleanup(self, migration: Obj, give_up: bool = False) -> list[str]:
        """Delete this migration's archives and checkpoint images on both nodes (idempotent); returns what was
        skipped, and why.

        Best-effort per node: a node without a ready helper (gone, drained, helper uninstalled) would
        otherwise keep the migration from ever ending; what is left there is reported in an Event. A helper that
        is listed ready but does not answer is retried, unless ``give_up``.
        """
        status = migration.get("status") or {}
        nodes = list(dict.fromkeys(n for n in (status.get("sourceNode"), status.get("targetNode")) if n))
        helpers = self._helpers() if nodes else {}
        return [note for node in nodes if (note := self._cleanup_node(migration, node, helpers.get(node), give_up))]

    def _cleanup_node(self, migration: Obj, node: str, helper: Helper | None, give_up: bool = False) -> str | None:
        """A helper listed not ready is still asked once (on a NotReady node its pod is marked not ready, yet it
        may answer); only when it does not is the cleanup skipped at once."""
        if helper is None:
            return self._cleanup_skipped(migration, node, "no podmigration node-helper pod on node")
        try:
            answer = self.d.helpers.cleanup(helper, migration["metadata"]["uid"])
        except HelperError as exc:
            if not helper.ready:
                return self._cleanup_skipped(migration, node, f"node-helper not ready ({exc}) on node")
            if not give_up:
                raise
            return self._cleanup_skipped(migration, node, f"cleanup given up, the node-helper does not answer ({exc}), "
                                                          "on node")
        kept = [k.get("image", "?") if isinstance(k, dict) else str(k) for k in answer.get("kept") or []]
        if kept:
            self._event(migration, "Warning", "CleanupIncomplete",
                        f"node-helper on node {node} kept checkpoint image(s) still in use: {', '.join(kept)}")
        return None

    def _cleanup_skipped(self, migration: Obj, node: str, why: str) -> str:
        log.warning("%s/%s: %s %s; cleanup skipped there", self.namespace, self.name, why, node)
        note = f"{why} {node}: this migration's checkpoint archives and images may remain on that node"
        self._event(migration, "Warning", "CleanupSkipped", note)
        return note
