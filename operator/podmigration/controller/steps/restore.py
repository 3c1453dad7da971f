"""Restoring: checkpoint images, the replacement (or the owner's own pod, handed over), volumes, readiness."""

from __future__ import annotations

import functools
import time

from ... import api
from ...api import phases
from ...api.types import Obj, annotations_of, status_of
from ...domain import baseimages, handover, owners, podspec, volumes
from ...domain.helpers import Helper
from .. import faults
from ..context import Run
from ..runtime import Interrupt
from . import cleanup, sourcepod, watching

#: Waiting reasons after which a replacement container will not start by itself.
_HOPELESS_WAITING = frozenset(
    {
        "CreateContainerError",
        "CreateContainerConfigError",
        "ErrImageNeverPull",
        "InvalidImageName",
        "RunContainerError",
        "ImageInspectError",
    }
)


def restore(run: Run, migration: Obj) -> Obj:
    status = migration["status"]
    target = run.helper(status["targetNode"])
    uid = migration["metadata"]["uid"]
    containers = [dict(c) for c in status.get("containers") or []]
    for container in containers:
        if container.get("image"):
            continue
        image, archive = api.checkpoint_image(uid, container["name"]), api.checkpoint_id(uid, container["name"])
        size, started = container.get("checkpointBytes", 0), time.monotonic()
        build = functools.partial(
            run.deps.helpers.build_checkpoint_image,
            target,
            archive,
            container["name"],
            image,
            recorded=api.recorded_archive(status, container),
            size=size,
            timeout=run.remaining(migration),
        )
        migration, _ = watching.watched(run, migration, target, archive, "image", container["name"], build)
        container["image"] = image
        migration = run.write(
            migration,
            {
                "containers": containers,
                "progress": watching.done(run, "image", container["name"], size, time.monotonic() - started),
            },
        )
    if owners.by_kind((status.get("owner") or {}).get("kind")).same_name:
        if run.source_pod(migration) is not None:
            _check_owner(run, migration)  # last moment to roll back: the source is deleted next
        replacement = _handed_over_replacement(run, migration)
    else:
        replacement = _ensure_replacement(run, migration)
        migration = run.reached(migration, faults.REPLACEMENT_CREATED)
    if forced := baseimages.always_pull_forced(replacement):
        raise Interrupt(phases.FAILED, "AlwaysPullImages", forced)
    migration = _place_volumes(run, migration, replacement, target)
    name = replacement["metadata"]["name"]
    run.progress(migration, f"waiting for pod {name} to be Running and Ready on {status['targetNode']}")
    settled = False
    while True:
        ready = _pod_ready(run, replacement, status.get("sourceRestarts") or {})
        settled = settled or _settled(run, migration, target, replacement)
        if ready:
            _check_restored(run, target, name, containers)
            if settled:
                break
        migration = run.pause(run.deps.config.poll_seconds)
        current = run.deps.kube.get_pod(run.namespace, name)
        if current is None:
            raise RuntimeError(f"replacement pod {name} disappeared")
        replacement = current
    # The restored containers exist: the archives on the target are of no more use (the checkpoint images went
    # as soon as CRI-O restored from them: _settled).
    cleanup.cleanup_node(run, migration, status["targetNode"], target)
    if not owners.by_kind((status.get("owner") or {}).get("kind")).same_name:
        _check_owner(run, migration)  # the hand-over to it comes next, in Finalizing
    return run.transition(
        migration, phases.FINALIZING, message=f"pod {name} is Running, Ready and restored on {status['targetNode']}"
    )


def _settled(run: Run, migration: Obj, target: Helper, pod: Obj) -> bool:
    """Whether every container of the replacement is restored and settled: its checkpoint (or pointer) image
    and archive link gone from the target, its spec's image name now naming its original image, so that
    a restart later is fresh from that image and never the checkpoint again. Asked from the moment a
    container runs, when CRI-O has restored it."""
    status = pod.get("status") or {}
    if status.get("phase") != "Running" and not any(
        "running" in (c.get("state") or {}) for c in status.get("containerStatuses") or []
    ):
        return False
    answer = run.deps.helpers.settle(
        target,
        run.namespace,
        pod["metadata"]["name"],
        migration["metadata"]["uid"],
        migration["status"].get("originalImages") or {},
    )
    return not answer.get("waiting")


def _check_restored(run: Run, target: Helper, name: str, containers: list[Obj]) -> None:
    restored = run.deps.helpers.restored(target, run.namespace, name)
    fresh = sorted(c["name"] for c in containers if not restored.get(c["name"]))
    if fresh:
        raise RuntimeError(f"containers {', '.join(fresh)} of pod {name} started fresh instead of being restored")


def _place_volumes(run: Run, migration: Obj, replacement: Obj, target: Helper) -> Obj:
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
        result = run.deps.helpers.unpack_volume(
            target,
            uid,
            volume["name"],
            volume["id"],
            volume.get("truncate") or {},
            recorded=api.recorded_archive(migration["status"], volume),
            size=volume.get("bytes", 0),
            timeout=run.remaining(migration),
        )
        volume.update(unpackSeconds=result.get("seconds", 0), truncated=result.get("truncated") or [])
        migration = run.write(migration, {"volumes": moved})
    run.deps.helpers.release_volumes(target, uid, api.VOLUMES_GATE_VOLUME, timeout=run.remaining(migration))
    return run.progress(migration, f"{len(moved)} volume(s) in place on {migration['status']['targetNode']}")


def _handed_over_replacement(run: Run, migration: Obj) -> Obj:
    """The owner recreates the pod under its own name: list it for the webhook, end the source (killed
    frozen), then wait for the owner's new pod, which the webhook has made the restore.

    From the source's deletion on there is no source to roll back to: a rollback then deletes the
    replacement with the webhook no longer matching, and the owner starts the pod fresh.
    """
    status = migration["status"]
    name = status["targetPod"]
    source = run.source_pod(migration)
    if source is not None:
        if not status.get("handover"):
            migration = run.write(migration, {"handover": {"pod": name}})
        sync_handover(run)
        run.progress(
            migration,
            f"handing pod {name} over to its {status['owner']['kind']}: the source is killed "
            "and deleted, the pod its controller recreates is the restore",
        )
        sourcepod.kill_source(run, source, status["sourceNode"], None)
        migration = run.reached(migration, faults.HANDED_OVER)
    while True:
        pod = run.deps.kube.get_pod(run.namespace, name)
        if pod is not None and pod["metadata"]["uid"] != status.get("sourcePodUID"):
            if annotations_of(pod).get(api.MIGRATION_ANNOTATION) != run.name:
                raise RuntimeError(
                    f"pod {name} was recreated without its restore (the handover webhook did not "
                    "run): its state is lost"
                )
            return pod
        migration = run.pause(run.deps.config.poll_seconds)


def _check_owner(run: Run, migration: Obj) -> None:
    """Roll back when the pod's owner changed since Preparing (scaled, rolled out, suspended, deleted)."""
    recorded = migration["status"].get("owner") or {}
    if not recorded.get("name"):
        return
    owner = run.deps.kube.get_owner(
        run.namespace, recorded["kind"], recorded["name"], recorded.get("apiVersion") or "apps/v1"
    )
    changed = owners.by_kind(recorded["kind"]).changed(recorded, owner)
    if changed:
        raise Interrupt(phases.FAILED, "OwnerChanged", f"{changed}; the source is kept and its owner decides")


def sync_handover(run: Run) -> None:
    """Rebuild the handover webhook's match condition from every unfinished migration."""
    if not run.deps.config.handover_webhook:
        raise RuntimeError("PM_HANDOVER_WEBHOOK is not set: StatefulSet pods cannot be handed over")
    with handover.SYNC_LOCK:
        pods = handover.handed_over(run.deps.kube.list_migrations(None))
        run.deps.kube.set_webhook_match(run.deps.config.handover_webhook, handover.match_expression(pods))


def end_handover(run: Run, migration: Obj) -> Obj:
    if not status_of(migration).get("handover"):
        return migration
    migration = run.write(migration, {"handover": None})
    sync_handover(run)
    return migration


def _ensure_replacement(run: Run, migration: Obj) -> Obj:
    """Create the replacement once; a pod of that name that is not ours is an error, not adopted."""
    status = migration["status"]
    name = status["targetPod"]
    existing = run.deps.kube.get_pod(run.namespace, name)
    if existing is None:
        source = run.require_source(migration)
        body = podspec.replacement_pod(
            source,
            migration_name=run.name,
            migration_uid=migration["metadata"]["uid"],
            target_node=status["targetNode"],
        )
        owners.strategy_for(source).shape_replacement(body, source, run.owner(source))
        if status.get("volumes"):
            if not run.deps.config.image:
                raise RuntimeError("PM_IMAGE is not set: the replacement's volume gate needs the operator's image")
            volumes.add_volumes_gate(body, source, run.deps.config.image)
        return run.deps.kube.create_pod(run.namespace, body)
    if annotations_of(existing).get(api.MIGRATION_ANNOTATION) != run.name:
        raise RuntimeError(f"a pod named {name} already exists and was not created by this migration")
    return existing


def _pod_ready(run: Run, pod: Obj, restarts: dict[str, int]) -> bool:
    """Ready, or raise at once when the pod can no longer become Ready (waiting out the timeout helps nobody).

    ``restarts``: each container's restart count at the checkpoint, which a restored container reports as its
    own (CRI-O restores the checkpoint's annotations, the kubelet's restart count among them); only a higher one
    is a restart."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Failed", "Succeeded"):
        raise RuntimeError(
            f"replacement pod {pod['metadata']['name']} ended with phase {status['phase']}: "
            f"{status.get('message') or status.get('reason') or 'no message'}"
        )
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        terminated = (container.get("state") or {}).get("terminated") or {}
        restarted = int(container.get("restartCount") or 0) > restarts.get(container["name"], 0)
        if waiting.get("reason") in _HOPELESS_WAITING or terminated or restarted:
            why = waiting.get("message") or waiting.get("reason") or terminated.get("reason") or "restarted"
            raise RuntimeError(
                f"container {container['name']} of replacement pod {pod['metadata']['name']} failed: {why}"
            )
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
    )
