"""Restoring: checkpoint images, the replacement (or the owner's own pod, handed over), volumes, readiness."""

from __future__ import annotations

import functools
import time

from .. import api, faults, handover, owners, phases, podspec, volumes
from ..helperclient import Helper
from ..runtime import Obj, Interrupt, StopFlag
from .watching import WatchedCalls

#: Waiting reasons after which a replacement container will not start by itself.
_HOPELESS_WAITING = frozenset({"CreateContainerError", "CreateContainerConfigError", "ErrImageNeverPull",
                               "InvalidImageName", "RunContainerError", "ImageInspectError"})


class RestoreSteps(WatchedCalls):
    """The restore step(s) of MigrationRunner (mixed into it; ``self`` is the runner)."""

    def _restore(self, migration: Obj, stop: StopFlag) -> Obj:
        status = migration["status"]
        target = self._helper(status["targetNode"])
        uid = migration["metadata"]["uid"]
        containers = [dict(c) for c in status.get("containers") or []]
        for container in containers:
            if container.get("image"):
                continue
            image, archive = api.checkpoint_image(uid, container["name"]), api.checkpoint_id(uid, container["name"])
            size, started = container.get("checkpointBytes", 0), time.monotonic()
            build = functools.partial(self.d.helpers.build_checkpoint_image, target, archive, container["name"],
                                      image, sha256=container.get("sha256", ""), size=size,
                                      timeout=self._remaining(migration))
            migration, _ = self._watched(migration, target, archive, "image", container["name"], build)
            container["image"] = image
            migration = self._write(migration, {"containers": containers, "progress": self._done(
                "image", container["name"], size, time.monotonic() - started)})
        if owners.by_kind((status.get("owner") or {}).get("kind")).same_name:
            if self._source_pod(migration) is not None:
                self._check_owner(migration)  # last moment to roll back: the source is deleted next
            replacement = self._handed_over_replacement(migration, stop)
        else:
            replacement = self._ensure_replacement(migration)
            migration = faults.reached(self, migration, faults.REPLACEMENT_CREATED, stop)
        migration = self._place_volumes(migration, replacement, target)
        name = replacement["metadata"]["name"]
        self._progress(migration, f"waiting for pod {name} to be Running and Ready on {status['targetNode']}")
        while not self._pod_ready(replacement):
            migration = self._pause(self.d.config.poll_seconds, stop)
            replacement = self.d.kube.get_pod(self.namespace, name)
            if replacement is None:
                raise RuntimeError(f"replacement pod {name} disappeared")
        restored = self.d.helpers.restored(target, self.namespace, name)
        fresh = sorted(c["name"] for c in containers if not restored.get(c["name"]))
        if fresh:
            raise RuntimeError(f"containers {', '.join(fresh)} of pod {name} started fresh instead of being restored")
        # The restored containers exist: the checkpoint images (all of the pod's memory) and archives on the target
        # are of no more use, and any pod could start from such an image while it is there.
        self._cleanup_node(migration, status["targetNode"], target)
        if not owners.by_kind((status.get("owner") or {}).get("kind")).same_name:
            self._check_owner(migration)  # the hand-over to it comes next, in Finalizing
        return self._transition(migration, phases.FINALIZING,
                                message=f"pod {name} is Running, Ready and restored on {status['targetNode']}")

    def _place_volumes(self, migration: Obj, replacement: Obj, target: Helper) -> Obj:
        """Unpack each moved volume into the replacement's emptyDir, then let its restored containers start.

        Each unpack is recorded, so a resumed step never unpacks again over a volume the restored
        containers may already use; the release is idempotent.
        """
        moved = [dict(v) for v in (migration["status"].get("volumes") or [])]
        if not moved:
            return migration
        uid = replacement["metadata"]["uid"]
        for volume in moved:
            if volume.get("unpackSeconds") is not None:
                continue
            result = self.d.helpers.unpack_volume(target, uid, volume["name"], volume["id"],
                                                  volume.get("truncate") or {}, sha256=volume.get("sha256", ""),
                                                  size=volume.get("bytes", 0), timeout=self._remaining(migration))
            volume.update(unpackSeconds=result.get("seconds", 0), truncated=result.get("truncated") or [])
            migration = self._write(migration, {"volumes": moved})
        self.d.helpers.release_volumes(target, uid, api.VOLUMES_GATE_VOLUME, timeout=self._remaining(migration))
        return self._progress(migration, f"{len(moved)} volume(s) in place on {migration['status']['targetNode']}")

    def _handed_over_replacement(self, migration: Obj, stop: StopFlag) -> Obj:
        """The owner recreates the pod under its own name: list it for the webhook, end the source (killed
        frozen), then wait for the owner's new pod, which the webhook has made the restore.

        From the source's deletion on there is no source to roll back to: a rollback then deletes the
        replacement with the webhook no longer matching, and the owner starts the pod fresh.
        """
        status = migration["status"]
        name = status["targetPod"]
        source = self._source_pod(migration)
        if source is not None:
            if not status.get("handover"):
                migration = self._write(migration, {"handover": {"pod": name}})
            self._sync_handover()
            self._progress(migration, f"handing pod {name} over to its {status['owner']['kind']}: the source is killed "
                                      "and deleted, the pod its controller recreates is the restore")
            self._kill_source(source, status["sourceNode"], None, stop)
        while True:
            pod = self.d.kube.get_pod(self.namespace, name)
            if pod is not None and pod["metadata"]["uid"] != status.get("sourcePodUID"):
                if (pod["metadata"].get("annotations") or {}).get(api.MIGRATION_ANNOTATION) != self.name:
                    raise RuntimeError(f"pod {name} was recreated without its restore (the handover webhook did not "
                                       "run): its state is lost")
                return pod
            migration = self._pause(self.d.config.poll_seconds, stop)

    def _check_owner(self, migration: Obj) -> None:
        """Roll back when the pod's owner changed since Preparing (scaled, rolled out, suspended, deleted)."""
        recorded = migration["status"].get("owner") or {}
        if not recorded.get("name"):
            return
        owner = self.d.kube.get_owner(self.namespace, recorded["kind"], recorded["name"],
                                      recorded.get("apiVersion") or "apps/v1")
        changed = owners.by_kind(recorded["kind"]).changed(recorded, owner)
        if changed:
            raise Interrupt(phases.FAILED, "OwnerChanged", f"{changed}; the source is kept and its owner decides")

    def _sync_handover(self) -> None:
        """Rebuild the handover webhook's match condition from every unfinished migration."""
        if not self.d.config.handover_webhook:
            raise RuntimeError("PM_HANDOVER_WEBHOOK is not set: StatefulSet pods cannot be handed over")
        with handover.SYNC_LOCK:
            pods = handover.handed_over(self.d.kube.list_migrations(None))
            self.d.kube.set_webhook_match(self.d.config.handover_webhook, handover.match_expression(pods))

    def _end_handover(self, migration: Obj) -> Obj:
        if not (migration.get("status") or {}).get("handover"):
            return migration
        migration = self._write(migration, {"handover": None})
        self._sync_handover()
        return migration

    def _ensure_replacement(self, migration: Obj) -> Obj:
        """Create the replacement once; a pod of that name that is not ours is an error, not adopted."""
        status = migration["status"]
        name = status["targetPod"]
        existing = self.d.kube.get_pod(self.namespace, name)
        if existing is None:
            source = self._require_source(migration)
            body = podspec.replacement_pod(source, migration_name=self.name,
                                           migration_uid=migration["metadata"]["uid"],
                                           target_node=status["targetNode"])
            owners.strategy_for(source).shape_replacement(body, source, self._owner(source))
            if status.get("volumes"):
                if not self.d.config.image:
                    raise RuntimeError("PM_IMAGE is not set: the replacement's volume gate needs the operator's image")
                volumes.add_volumes_gate(body, source, self.d.config.image)
            return self.d.kube.create_pod(self.namespace, body)
        if (existing["metadata"].get("annotations") or {}).get(api.MIGRATION_ANNOTATION) != self.name:
            raise RuntimeError(f"a pod named {name} already exists and was not created by this migration")
        return existing

    def _pod_ready(self, pod: Obj) -> bool:
        """Ready, or raise at once when the pod can no longer become Ready (waiting out the timeout helps nobody)."""
        status = pod.get("status") or {}
        if status.get("phase") in ("Failed", "Succeeded"):
            raise RuntimeError(f"replacement pod {pod['metadata']['name']} ended with phase {status['phase']}: "
                               f"{status.get('message') or status.get('reason') or 'no message'}")
        for container in status.get("containerStatuses") or []:
            waiting = (container.get("state") or {}).get("waiting") or {}
            terminated = (container.get("state") or {}).get("terminated") or {}
            if waiting.get("reason") in _HOPELESS_WAITING or terminated or container.get("restartCount"):
                why = waiting.get("message") or waiting.get("reason") or terminated.get("reason") or "restarted"
                raise RuntimeError(f"container {container['name']} of replacement pod {pod['metadata']['name']} "
                                   f"failed: {why}")
        return status.get("phase") == "Running" and any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
