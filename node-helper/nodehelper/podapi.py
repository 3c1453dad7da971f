"""What the endpoints that act on a pod do (network cut, kill, memory, emptyDir copy): validate, act, log one line."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from . import cgroups, validation, volumes
from .archives import ArchiveStore
from .containers import Containers
from .errors import BadRequest
from .killer import Killer
from .netcut import NetworkCut
from .volumes import EmptyDirs

log = logging.getLogger(__name__)


class PodApi:
    def __init__(
        self,
        store: ArchiveStore,
        containers: Containers,
        netcut: NetworkCut,
        killer: Killer,
        empty_dirs: EmptyDirs,
        cgroup_root: Path,
    ) -> None:
        self.store = store
        self.containers = containers
        self.netcut = netcut
        self.killer = killer
        self.empty_dirs = empty_dirs
        self.cgroup_root = cgroup_root

    def cut_network(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._set_network(body, cut=True)

    def restore_network(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._set_network(body, cut=False)

    def _set_network(self, body: dict[str, Any], cut: bool) -> dict[str, Any]:
        uid = validation.pod_uid(validation.field(body, "podUID"))
        netns = self.containers.sandbox_netns(uid)
        families = (self.netcut.cut if cut else self.netcut.restore)(netns)
        what = "cut" if cut else "restored"
        log.info("%s the network of pod %s (netns %s, %s)", what, uid, netns.name, "+".join(families) or "gone")
        return {"cut": cut}

    def kill(self, body: dict[str, Any]) -> dict[str, Any]:
        uid = validation.pod_uid(validation.field(body, "podUID"))
        started = time.monotonic()
        thaw = body.get("thaw", True)
        if not isinstance(thaw, bool):
            raise BadRequest("thaw must be true or false")
        killed = self.killer.kill(uid, thaw=thaw)
        log.info("killed pod %s: %d processes in %.3fs%s", uid, killed, time.monotonic() - started,
                 "" if thaw else " (left frozen: they die at the thaw)")
        return {"killed": killed}

    def memory(self, pod_uid: str) -> dict[str, Any]:
        return {"bytes": cgroups.pod_memory_bytes(self.cgroup_root, validation.pod_uid(pod_uid))}

    def pack_volume(self, body: dict[str, Any]) -> dict[str, Any]:
        uid, volume = validation.field(body, "podUID"), validation.field(body, "volume")
        archive_id = validation.archive_id(validation.field(body, "id"))
        directory = self.empty_dirs.existing(uid, volume)
        started = time.monotonic()
        need = volumes.packed_size(directory)
        info, entries = self.store.write(archive_id, need, lambda out: volumes.pack(directory, out))
        seconds = time.monotonic() - started
        log.info(
            "packed emptyDir %s of pod %s as archive %s: %d entries, %d bytes in %.3fs",
            volume, uid, archive_id, entries, info.bytes, seconds,
        )  # fmt: skip
        return {"id": archive_id, "bytes": info.bytes, "sha256": info.sha256, "seconds": round(seconds, 3),
                "files": entries}  # fmt: skip

    def unpack_volume(self, body: dict[str, Any]) -> dict[str, Any]:
        uid, volume = validation.field(body, "podUID"), validation.field(body, "volume")
        archive_id = validation.archive_id(validation.field(body, "id"))
        sha256, size = validation.recorded_archive(body)
        sizes = volumes.truncations(body.get("truncate"))
        timeout = validation.timeout_seconds(body.get("timeoutSeconds"), default=60)
        directory = self.empty_dirs.wait_ready(uid, volume, timeout)
        started = time.monotonic()
        info = self.store.verify(archive_id, sha256, size)
        entries = volumes.unpack(self.store.path(archive_id), directory)
        truncated = volumes.truncate(directory, sizes)
        seconds = time.monotonic() - started
        log.info(
            "unpacked archive %s into emptyDir %s of pod %s: %d entries, %d bytes in %.3fs, truncated %s",
            archive_id, volume, uid, entries, info.bytes, seconds, truncated,
        )  # fmt: skip
        return {"bytes": info.bytes, "files": entries, "seconds": round(seconds, 3), "truncated": truncated}

    def release_volume(self, body: dict[str, Any]) -> dict[str, Any]:
        uid, volume = validation.field(body, "podUID"), validation.field(body, "volume")
        timeout = validation.timeout_seconds(body.get("timeoutSeconds"), default=60)
        directory = self.empty_dirs.wait_ready(uid, volume, timeout)
        volumes.release(directory)
        log.info("released pod %s: wrote %s in emptyDir %s", uid, volumes.RELEASE_FILE, volume)
        return {"released": True}
