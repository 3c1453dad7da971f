"""Disk space for archives: a write that would not fit is refused before it starts, and one that grows past what
was announced or what the disk can spare is stopped while it streams (a zstd bomb, a sender that lies)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from .errors import ArchiveTooLarge, HelperError, InsufficientStorage

#: How often (in bytes written) a streaming write re-reads the free space: concurrent writes share the disk.
CHECK_EVERY = 64 << 20


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged writer may still use (f_bavail): the root-reserved blocks are the system's own."""
    try:
        st = os.statvfs(directory)
    except OSError as exc:
        raise HelperError(f"cannot read the free space of {directory}: {exc}") from None
    return st.f_bavail * st.f_frsize


class DiskSpace:
    """Keeps `min_free` bytes free on every filesystem the helper writes archives to: the kubelet, the container
    runtime and the pods on the node need that disk too, and a full one fails them all."""

    def __init__(self, min_free: int) -> None:
        self.min_free = min_free

    def require(self, directory: Path, need: int, what: str) -> None:
        free = free_bytes(directory)
        if free - need < self.min_free:
            raise InsufficientStorage(
                f"{what}: {need} bytes do not fit in {directory} ({free} bytes free, "
                f"{self.min_free} of them kept free by PM_MIN_FREE_BYTES)"
            )


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
