"""Disk space for everything the helper writes: a write that would not fit is refused before it starts, and one
that grows past what was announced or what the disk can spare is stopped while it streams (a zstd bomb, a sender
that lies)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO, NamedTuple

from nodehelper.errors import ArchiveTooLarge, HelperError, InsufficientStorage

#: How often (in bytes written) a streaming write re-reads the free space: concurrent writes share the disk.
CHECK_EVERY = 64 << 20

DEFAULT_MIN_FREE_BYTES = 1 << 30
#: The kubelet's default hard eviction threshold for the image filesystem (imagefs.available<15%; nodefs: 10%).
DEFAULT_MIN_FREE_PERCENT = 15


class Usage(NamedTuple):
    free: int  # bytes an unprivileged writer may still use (f_bavail): the root-reserved blocks are the system's own
    size: int  # the filesystem's size, which the kubelet's eviction thresholds are percentages of


def usage(directory: Path) -> Usage:
    try:
        st = os.statvfs(directory)
    except OSError as exc:
        raise HelperError(f"cannot read the free space of {directory}: {exc}") from None
    return Usage(st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize)


def floor(size: int, min_free: int, min_free_percent: int) -> int:
    """Bytes kept free on a filesystem of `size` bytes: `min_free_percent` of it (default 15: the kubelet's
    default hard eviction thresholds are nodefs.available<10% and imagefs.available<15%, and the node's image
    store usually shares the disk) plus `min_free` as a margin above that threshold."""
    return -(-size * min_free_percent // 100) + min_free


def refusal(space: Usage, need: int, min_free: int, min_free_percent: int) -> str:
    """Why `need` more bytes do not fit on a filesystem with `space` ("" if they fit above the floor)."""
    kept = floor(space.size, min_free, min_free_percent)
    if space.free - need >= kept:
        return ""
    return (
        f"{space.free} bytes free of {space.size}, {kept} of them kept free: PM_MIN_FREE_PERCENT="
        f"{min_free_percent} of the disk plus PM_MIN_FREE_BYTES={min_free}, so that the kubelet does not evict "
        "pods for want of disk"
    )


class DiskSpace:
    """Keeps free, on every filesystem the helper writes to (archives, emptyDir volumes, images, scratch), more
    than the kubelet's eviction threshold: the kubelet, the container runtime and the pods on the node need that
    disk too, and the kubelet evicts pods when it runs short. Every write checks first (`require`)."""

    def __init__(self, min_free: int, min_free_percent: int) -> None:
        self.min_free = min_free
        self.min_free_percent = min_free_percent

    def require(self, directory: Path, need: int, what: str) -> None:
        why = refusal(usage(directory), need, self.min_free, self.min_free_percent)
        if why:
            raise InsufficientStorage(f"{what}: {need} bytes do not fit in {directory} ({why})")

    def require_all(self, needs: Mapping[Path, int], what: str) -> None:
        """`require` for a write that needs room in several directories at once (an image staged in scratch while
        the storage takes it): those on one filesystem need the sum there."""
        by_device: dict[int, tuple[Path, int]] = {}
        for directory, need in needs.items():
            first, total = by_device.get(_device(directory), (directory, 0))
            by_device[_device(directory)] = (first, total + need)
        for directory, need in by_device.values():
            self.require(directory, need, what)


def _device(directory: Path) -> int:
    try:
        return os.stat(directory).st_dev
    except OSError as exc:
        raise HelperError(f"cannot read the free space of {directory}: {exc}") from None


class BoundedWriter:
    """Writes through to `out` up to `limit` bytes (past it: ArchiveTooLarge with `too_large`), calling `check`
    every CHECK_EVERY bytes; output is refused before it reaches the disk, not after."""

    def __init__(self, out: BinaryIO, limit: int, too_large: str, check: Callable[[], None]) -> None:
        self.out = out
        self.limit = limit
        self.too_large = too_large
        self.check = check
        self.bytes = 0

    def write(self, data: bytes) -> int:
        before, self.bytes = self.bytes, self.bytes + len(data)
        if self.bytes > self.limit:
            raise ArchiveTooLarge(self.too_large)
        if before // CHECK_EVERY != self.bytes // CHECK_EVERY:
            self.check()
        return self.out.write(data)
