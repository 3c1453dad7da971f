"""The record kept beside each archive (<id>.tar.sha256): its sha256 as the bytes went by and, on the next line, the
file's fingerprint right after, so an archive still that file need not be read again to be verified."""

from __future__ import annotations

import os
from pathlib import Path


def fingerprint(st: os.stat_result) -> str:
    """Inode, size, mtime and ctime: every write changes the last two."""
    return f"{st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}"


def write(record: Path, digest: str, archive: Path) -> None:
    """The digest and the archive's fingerprint as it is now, once nothing will change it."""
    stamp = fingerprint(archive.stat())
    fd = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{digest}\n{stamp}\n")


def read(record: Path) -> tuple[str, str | None]:
    """The recorded digest and fingerprint (None in a record an older helper wrote)."""
    lines = record.read_text().splitlines()
    return (lines[0].strip() if lines else ""), (lines[1].strip() if len(lines) > 1 else None)
