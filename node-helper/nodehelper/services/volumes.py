"""POST /v1/volumes/pack, /unpack and /release: a pod's emptyDir packed into the store on the source, unpacked into
the replacement pod's on the target, and the gate file that lets its containers start."""

from __future__ import annotations

import logging
import time
from typing import Any

from nodehelper import validation
from nodehelper.errors import Conflict
from nodehelper.node import volumes
from nodehelper.services.pods import PodApi
from nodehelper.store import digests
from nodehelper.streams.codec import Writer
from pmcontract.bodies import PackAnswer, ReleaseAnswer, UnpackAnswer
from pmcontract.names import GATE_FILE

log = logging.getLogger(__name__)


def pack(p: PodApi, body: dict[str, Any]) -> PackAnswer:
    uid, volume = validation.field(body, "podUID"), validation.field(body, "volume")
    archive_id = validation.archive_id(validation.field(body, "id"))
    directory = p.empty_dirs.existing(uid, volume)
    started = time.monotonic()
    frozen = p.killer.freezer.frozen(uid)
    need = volumes.packed_size(directory)

    def fill(out: Writer) -> int:
        entries = volumes.pack(directory, out)
        if p.killer.freezer.frozen(uid) != frozen:  # raises itself when one is not frozen
            raise Conflict(
                f"the containers of pod {uid} changed while emptyDir {volume} was copied (one "
                "appeared, restarted or was removed): the copy is discarded"
            )
        return entries

    info, entries = p.store.write(archive_id, need, fill)
    seconds = time.monotonic() - started
    log.info(
        "packed emptyDir %s of pod %s as archive %s: %d entries, %d bytes in %.3fs",
        volume, uid, archive_id, entries, info.bytes, seconds,
    )  # fmt: skip
    return {"id": archive_id, "bytes": info.bytes, "sha256": info.sha256, "seconds": round(seconds, 3),
            "files": entries}  # fmt: skip


def unpack(p: PodApi, body: dict[str, Any]) -> UnpackAnswer:
    uid, volume = validation.field(body, "podUID"), validation.field(body, "volume")
    archive_id = validation.archive_id(validation.field(body, "id"))
    recorded = digests.recorded(body)
    sizes = volumes.truncations(body.get("truncate"))
    timeout = validation.timeout_seconds(body.get("timeoutSeconds"), default=60)
    directory = p.empty_dirs.wait_ready(uid, volume, timeout)
    started = time.monotonic()
    info = p.store.verify(archive_id, digests.resolve(p.store, archive_id, recorded), recorded.bytes)
    unpacked = volumes.unpack(p.store.path(archive_id), directory, p.store.space)
    truncated = volumes.truncate(directory, sizes)
    seconds = time.monotonic() - started
    log.info(
        "unpacked archive %s into emptyDir %s of pod %s: %d entries, %d bytes in %.3fs, truncated %s, "
        "setuid/setgid bits stripped from %s",
        archive_id, volume, uid, unpacked.entries, info.bytes, seconds, truncated, unpacked.stripped,
    )  # fmt: skip
    return {"bytes": info.bytes, "files": unpacked.entries, "seconds": round(seconds, 3), "truncated": truncated,
            "stripped": unpacked.stripped}  # fmt: skip


def release(p: PodApi, body: dict[str, Any]) -> ReleaseAnswer:
    uid, volume = validation.field(body, "podUID"), validation.field(body, "volume")
    timeout = validation.timeout_seconds(body.get("timeoutSeconds"), default=60)
    directory = p.empty_dirs.wait_ready(uid, volume, timeout)
    volumes.release(directory)
    log.info("released pod %s: wrote %s in emptyDir %s", uid, GATE_FILE, volume)
    return {"released": True}
