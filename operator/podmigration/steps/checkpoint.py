"""Checkpointing: fence, cut the network, dump every container, freeze, copy the volumes while frozen."""

from __future__ import annotations

import functools
import logging

from .. import api, faults, fencing, owners, phases, volumes
from ..helperclient import Helper
from ..kube import status_code
from ..runtime import Obj, Interrupt, StopFlag
from .watching import WatchedCalls

log = logging.getLogger(__name__)

#: How often fencing the source pod is tried when the pod changes under it (HTTP 409).
FENCE_ATTEMPTS = 5


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def criu_stats(raw: Obj) -> Obj:
    """The helper's stats-dump fields (snake_case, microseconds) in API style (camelCase)."""
    return {_camel(k): v for k, v in (raw or {}).items() if isinstance(v, (int, float))}


class CheckpointSteps(WatchedCalls):
    """The checkpoint step(s) of MigrationRunner (mixed into it; ``self`` is the runner)."""

    def _fence(self, migration: Obj, pod: Obj) -> Obj:
        """Fence the source pod; a concurrent change (409) re-reads the pod and checks the lock again."""
        for attempt in range(1, FENCE_ATTEMPTS + 1):
            owner = fencing.fenced_by(pod)
            if owner == self.name:
                return pod
            if owner:
                raise Interrupt(phases.FAILED, "AlreadyMigrating",
                                f"pod {self.namespace}/{pod['metadata']['name']} is already being migrated by "
                                f"PodMigration {owner}")
            keys = owners.strategy_for(pod).fence_keys(pod, self._owner(pod),
                                                       fencing.service_keys(pod, self.d.kube.list_services(
                                                           self.namespace)))
            try:
                return self.d.kube.patch_pod(self.namespace, pod["metadata"]["name"],
                                             fencing.fence_patch(pod, keys, self.name))
            except Exception as exc:
                if status_code(exc) != 409 or attempt == FENCE_ATTEMPTS:
                    raise
                log.info("%s/%s: pod %s changed while fencing it; retrying", self.namespace, self.name,
                         pod["metadata"]["name"])
            pod = self._require_source(migration)
        raise AssertionError("unreachable")

    def _checkpoint(self, migration: Obj, stop: StopFlag) -> Obj:
        status = migration["status"]
        source = self._helper(status["sourceNode"])
        pod = self._require_source(migration)
        # Archives are write-once on the helpers: a step run again (after a restart) starts from none.
        self.d.helpers.cleanup(source, migration["metadata"]["uid"])
        if fencing.fenced_by(pod) == self.name:
            # Resumed after a restart: the pod may already be frozen, and CRIU must dump a running pod.
            self.d.helpers.thaw(source, pod["metadata"]["uid"])
        pod = self._fence(migration, pod)
        removed = fencing.fenced_labels(pod)
        # Before the first dump: from here on nothing from outside reaches the processes, over new or
        # established connections, so every reply a client got reflects state the dumps contain.
        self.d.helpers.network_cut(source, pod["metadata"]["uid"])
        self._event(pod, "Normal", "MigrationFenced",
                    f"PodMigration {self.name}: network cut and out of Service traffic (labels {sorted(removed)} "
                    "removed)")
        uid = migration["metadata"]["uid"]
        containers: list[Obj] = []
        open_files: dict[str, list[Obj]] = {}
        for container in pod["spec"]["containers"]:
            archive = api.checkpoint_id(uid, container["name"])
            dump = functools.partial(self.d.helpers.checkpoint, source, self.namespace, pod["metadata"]["name"],
                                     container["name"], archive, timeout=self._remaining(migration))
            migration, result = self._watched(migration, source, archive, "checkpoint", container["name"], dump)
            migration = faults.reached(self, migration, faults.CHECKPOINTED, stop)
            open_files[container["name"]] = result.get("openFiles") or []
            containers.append({"name": container["name"], "checkpointBytes": result.get("bytes", 0),
                               "sha256": result.get("sha256", ""), "checkpointSeconds": result.get("seconds", 0),
                               "criu": criu_stats(result.get("stats") or {})})
            migration = self._write(migration, {
                "containers": containers, "checkpointBytes": sum(c["checkpointBytes"] for c in containers),
                "progress": self._done("checkpoint", container["name"], result.get("bytes", 0),
                                       result.get("seconds") or 0)})
            self._progress(migration, f"checkpointed container {container['name']}")
        self.d.helpers.freeze(source, pod["metadata"]["uid"])
        moved = self._pack_volumes(migration, pod, source, open_files)
        return self._transition(migration, phases.TRANSFERRING,
                                message=f"source frozen; sending {len(containers)} archive(s) and {len(moved)} "
                                        f"volume(s) to {status['targetNode']}")

    def _pack_volumes(self, migration: Obj, pod: Obj, source: Helper, open_files: dict[str, list[Obj]]) -> list[Obj]:
        """Copy each emptyDir while the source is frozen; files open at the dump get their dump-time size."""
        uid = migration["metadata"]["uid"]
        cut_back = volumes.truncations(pod, open_files)
        moved: list[Obj] = []
        for volume in volumes.moved_volumes(pod):
            archive = api.volume_archive_id(uid, volume["name"])
            result = self.d.helpers.pack_volume(source, pod["metadata"]["uid"], volume["name"], archive,
                                                timeout=self._remaining(migration))
            moved.append({**volume, "id": archive, "bytes": result.get("bytes", 0), "sha256": result.get("sha256", ""),
                          "files": result.get("files", 0), "packSeconds": result.get("seconds", 0),
                          "truncate": cut_back.get(volume["name"], {})})
            migration = self._write(migration, {"volumes": moved})
            self._progress(migration, f"copied volume {volume['name']} ({result.get('bytes', 0)} bytes)")
        return moved
