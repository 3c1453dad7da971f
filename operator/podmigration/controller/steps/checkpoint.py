"""Checkpointing: fence, cut the network, dump every container, freeze, copy the volumes while frozen."""

from __future__ import annotations

import functools
import logging
import secrets
from typing import cast

from ... import api
from ...api import phases
from ...api.types import ContainerRecord, CriuStats, Obj, VolumeRecord
from ...clients.kube import status_code
from ...domain import fencing, owners, volumes
from ...domain import status as st
from ...domain.helpers import Helper
from .. import faults
from ..context import Run
from ..runtime import Interrupt
from . import watching

log = logging.getLogger(__name__)

#: How often fencing the source pod is tried when the pod changes under it (HTTP 409).
FENCE_ATTEMPTS = 5


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def criu_stats(raw: Obj) -> CriuStats:
    """The helper's stats-dump fields (snake_case, microseconds) in API style (camelCase)."""
    return cast(CriuStats, {_camel(k): v for k, v in (raw or {}).items() if isinstance(v, (int, float))})


def _fence(run: Run, migration: Obj, pod: Obj) -> Obj:
    """Fence the source pod; a concurrent change (409) re-reads the pod and checks the lock again."""
    for attempt in range(1, FENCE_ATTEMPTS + 1):
        owner = fencing.fenced_by(pod)
        if owner == run.name:
            return pod
        if owner:
            raise Interrupt(
                phases.FAILED,
                "AlreadyMigrating",
                f"pod {run.namespace}/{pod['metadata']['name']} is already being migrated by PodMigration {owner}",
            )
        keys = owners.strategy_for(pod).fence_keys(
            pod, run.owner(pod), fencing.service_keys(pod, run.deps.kube.list_services(run.namespace))
        )
        try:
            return run.deps.kube.patch_pod(
                run.namespace, pod["metadata"]["name"], fencing.fence_patch(pod, keys, run.name)
            )
        except Exception as exc:
            if status_code(exc) != 409 or attempt == FENCE_ATTEMPTS:
                raise
            log.info(
                "%s/%s: pod %s changed while fencing it; retrying",
                run.namespace,
                run.name,
                pod["metadata"]["name"],
            )
        pod = run.require_source(migration)
    raise AssertionError("unreachable")


def checkpoint(run: Run, migration: Obj) -> Obj:
    status = migration["status"]
    source = run.helper(status["sourceNode"])
    pod = run.require_source(migration)
    # Archives are write-once on the helpers: a step run again (after a restart) starts from none.
    run.deps.helpers.cleanup(source, migration["metadata"]["uid"])
    if fencing.fenced_by(pod) == run.name:
        # Resumed after a restart: the pod may already be frozen, and CRIU must dump a running pod.
        run.deps.helpers.thaw(source, pod["metadata"]["uid"])
    pod = _fence(run, migration, pod)
    removed = fencing.fenced_labels(pod)
    # Before the first dump: from here on nothing from outside reaches the processes, over new or
    # established connections, so every reply a client got reflects state the dumps contain.
    run.deps.helpers.network_cut(source, pod["metadata"]["uid"])
    run.event(
        pod,
        "Normal",
        "MigrationFenced",
        f"PodMigration {run.name}: network cut and out of Service traffic (labels {sorted(removed)} removed)",
    )
    uid = migration["metadata"]["uid"]
    # Kubelet archives of this pod since the phase began are an earlier try's (a helper restarted mid-call).
    began = st.phase_times(status).get(phases.CHECKPOINTING)
    since = began.timestamp() if began else None
    if not status.get("digestKey"):
        migration = run.write(migration, {"digestKey": secrets.token_hex(32)})
    key = migration["status"]["digestKey"]
    containers: list[ContainerRecord] = []
    open_files: dict[str, list[Obj]] = {}
    for container in pod["spec"]["containers"]:
        archive = api.checkpoint_id(uid, container["name"])
        dump = functools.partial(
            run.deps.helpers.checkpoint,
            source,
            run.namespace,
            pod["metadata"]["name"],
            container["name"],
            archive,
            timeout=run.remaining(migration),
            since=since,
        )
        migration, result = watching.watched(run, migration, source, archive, "checkpoint", container["name"], dump)
        migration = run.reached(migration, faults.CHECKPOINTED)
        open_files[container["name"]] = result.get("openFiles") or []
        containers.append(
            {
                "name": container["name"],
                "checkpointBytes": result.get("bytes", 0),
                "digest": api.keyed_digest(key, result.get("sha256", "")),
                "checkpointSeconds": result.get("seconds", 0),
                "criu": criu_stats(result.get("stats") or {}),
            }
        )
        migration = run.write(
            migration,
            {
                "containers": containers,
                "checkpointBytes": sum(c["checkpointBytes"] for c in containers),
                "progress": watching.done(
                    run, "checkpoint", container["name"], result.get("bytes", 0), result.get("seconds") or 0
                ),
            },
        )
        run.progress(migration, f"checkpointed container {container['name']}")
    run.deps.helpers.freeze(source, pod["metadata"]["uid"])
    migration = run.reached(migration, faults.FROZEN)
    moved = _pack_volumes(run, migration, pod, source, open_files)
    return run.transition(
        migration,
        phases.TRANSFERRING,
        message=f"source frozen; sending {len(containers)} archive(s) and {len(moved)} "
        f"volume(s) to {status['targetNode']}",
    )


def _pack_volumes(
    run: Run, migration: Obj, pod: Obj, source: Helper, open_files: dict[str, list[Obj]]
) -> list[VolumeRecord]:
    """Copy each emptyDir while the source is frozen; files open at the dump get their dump-time size."""
    uid = migration["metadata"]["uid"]
    cut_back = volumes.truncations(pod, open_files)
    moved: list[VolumeRecord] = []
    for volume in volumes.moved_volumes(pod):
        archive = api.volume_archive_id(uid, volume["name"])
        result = run.deps.helpers.pack_volume(
            source, pod["metadata"]["uid"], volume["name"], archive, timeout=run.remaining(migration)
        )
        moved.append(
            {
                "name": volume["name"],
                "medium": volume["medium"],
                "id": archive,
                "bytes": result.get("bytes", 0),
                "digest": api.keyed_digest(migration["status"]["digestKey"], result.get("sha256", "")),
                "files": result.get("files", 0),
                "packSeconds": result.get("seconds", 0),
                "truncate": cut_back.get(volume["name"], {}),
            }
        )
        migration = run.write(migration, {"volumes": moved})
        run.progress(migration, f"copied volume {volume['name']} ({result.get('bytes', 0)} bytes)")
    return moved
