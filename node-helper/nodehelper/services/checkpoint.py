"""POST /v1/checkpoint, /v1/freeze, /v1/thaw: a container dumped by the kubelet into the store; a pod's cgroups
frozen or thawed."""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from nodehelper import validation
from nodehelper.criu.imagefile import ImageError
from nodehelper.criu.openfiles import MAX_OPEN_FILES, read_open_files
from nodehelper.criu.stats import read_dump_stats
from nodehelper.errors import HelperError
from nodehelper.services.helper import Helper
from nodehelper.streams.follow import GrowingFileHash
from pmcontract.bodies import CheckpointAnswer, FreezeAnswer

log = logging.getLogger(__name__)


def checkpoint(h: Helper, body: dict[str, Any]) -> CheckpointAnswer:
    """Kubelet checkpoint -> archive moved into the store (kubelet's copy gone) -> CRIU stats.

    One dump of a container at a time: when a step is repeated (its operator replica died, or its call timed
    out), the earlier call may still run here, and two dumps at once would each hash the other's kubelet file
    (the archive then reached the target with a digest that was not its own)."""
    key = tuple(validation.field(body, name) for name in ("namespace", "pod", "container"))
    with h.dumping.hold(key):
        return _checkpoint(h, body)


def _checkpoint(h: Helper, body: dict[str, Any]) -> CheckpointAnswer:
    archive_id = validation.archive_id(validation.field(body, "id"))
    namespace, pod, container = (validation.field(body, name) for name in ("namespace", "pod", "container"))
    timeout = validation.timeout_seconds(body.get("timeoutSeconds"), default=60)
    expected = validation.byte_count(body.get("expectedBytes", 0), "expectedBytes")
    discard_since = validation.unix_time(body.get("discardSince"), "discardSince")
    # Refused before the kubelet dumps anything: a dump nobody may keep would only be process memory to delete.
    h.store.refuse_existing(archive_id)
    generation = h.store.generation(archive_id)
    h.store.refuse_larger(archive_id, expected, "the expected checkpoint")
    h.store.require_space(archive_id, expected)
    h.store.space.require(h.kubelet.checkpoint_dir, expected, f"checkpoint {archive_id} by the kubelet")
    _discard_earlier(h, pod, namespace, container, discard_since)
    started, since = time.monotonic(), time.time() - 1
    written = functools.partial(h.kubelet.written_bytes, pod, namespace, container, since)
    follower = GrowingFileHash(functools.partial(h.kubelet.writing, pod, namespace, container, since))
    try:
        with h.progress.measuring(archive_id, "checkpoint", expected, written):
            kubelet_archive = h.kubelet.checkpoint(namespace, pod, container, timeout)
        seconds = time.monotonic() - started
        digest = follower.finish(kubelet_archive)  # the rest of the hash counts as taking the archive in
    finally:
        follower.close()
    try:
        info = h.store.adopt(archive_id, kubelet_archive, digest, generation)
        adopted = time.monotonic() - started - seconds
    except FileNotFoundError:
        raise HelperError(
            f"kubelet wrote {kubelet_archive.name} but it is not in {kubelet_archive.parent} "
            "(is KUBELET_CHECKPOINT_DIR the kubelet's checkpoint directory?)"
        ) from None
    _discard_earlier(h, pod, namespace, container, discard_since)  # an earlier call that ended after ours
    result: CheckpointAnswer = {
        "id": archive_id,
        "bytes": info.bytes,
        "sha256": info.sha256,
        "seconds": round(seconds, 3),
        "stats": {},
        "openFiles": [],
    }
    archive = h.store.path(archive_id)
    try:
        result["stats"] = read_dump_stats(archive)
    except ImageError as exc:
        result["statsError"] = str(exc)
        log.warning("archive %s: CRIU stats unreadable: %s", archive_id, exc)
    try:
        result["openFiles"] = read_open_files(archive)
    except ImageError as exc:
        result["openFilesError"] = str(exc)
        log.warning("archive %s: open files unreadable: %s", archive_id, exc)
    if len(result["openFiles"]) >= MAX_OPEN_FILES:
        log.warning("archive %s: open files listed only up to %d", archive_id, MAX_OPEN_FILES)
    log.info(
        "checkpointed %s/%s/%s as archive %s: %d bytes in %.3fs (then moved in %s in %.3fs, read in "
        "%.3fs), frozen %s us, %d open files",
        namespace,
        pod,
        container,
        archive_id,
        info.bytes,
        seconds,
        "and hashed" if digest is None else "(hashed while written)",
        adopted,
        time.monotonic() - started - seconds - adopted,
        result["stats"].get("frozen_time"),
        len(result["openFiles"]),
    )
    return result


def _discard_earlier(h: Helper, pod: str, namespace: str, container: str, since: float | None) -> None:
    """The container's kubelet archives since `since` come from a call of this migration that a helper restart
    interrupted (the kubelet went on and wrote the archive): process memory nobody will take in."""
    if since is not None:
        for name in h.kubelet.discard_unreported(pod, namespace, container, since):
            log.info("deleted %s, left by an interrupted checkpoint of %s/%s/%s", name, namespace, pod, container)


def freeze(h: Helper, body: dict[str, Any]) -> FreezeAnswer:
    uid = validation.pod_uid(validation.field(body, "podUID"))
    frozen = h.freezer.freeze(uid)
    log.info("froze pod %s: %d container cgroups", uid, len(frozen))
    return {"frozen": frozen}


def thaw(h: Helper, body: dict[str, Any]) -> FreezeAnswer:
    uid = validation.pod_uid(validation.field(body, "podUID"))
    thawed = h.freezer.thaw(uid)
    log.info("thawed pod %s: %d container cgroups", uid, len(thawed))
    return {"frozen": [], "thawed": thawed}
