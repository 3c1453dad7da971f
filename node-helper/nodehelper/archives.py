"""Local store of checkpoint archives. They hold full process memory: root-only files, verified, deleted after use."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

from . import validation
from .errors import ChecksumMismatch, NotFound
from .transfer import HashingWriter, Reader, copy_into, file_sha256

log = logging.getLogger(__name__)

T = TypeVar("T")

_SUFFIX = ".tar"
_DIGEST_SUFFIX = ".tar.sha256"
_PART_SUFFIX = ".part"


@dataclass(frozen=True)
class ArchiveInfo:
    id: str
    bytes: int
    sha256: str


class ArchiveStore:
    """Files <id>.tar (0600) in a 0700 directory, each with a <id>.tar.sha256 recorded when it was written.

    The record is deleted before its archive is replaced, so a stale one is never trusted after a crash."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        for stale in root.glob(f".*{_PART_SUFFIX}"):
            # Left by an interrupted upload: process memory nobody will ever verify.
            stale.unlink(missing_ok=True)
            log.info("removed stale partial archive %s", stale.name)

    def path(self, archive_id: str) -> Path:
        return self.root / f"{validation.archive_id(archive_id)}{_SUFFIX}"

    def _digest_path(self, archive_id: str) -> Path:
        return self.root / f"{validation.archive_id(archive_id)}{_DIGEST_SUFFIX}"

    @contextlib.contextmanager
    def _writing(self, archive_id: str) -> Iterator[HashingWriter]:
        """Yields a hashing writer on a hidden partial file that becomes <id>.tar (and gets its sha256 record)
        only if the block ends without an exception; otherwise nothing is kept and an earlier copy stays."""
        final = self.path(archive_id)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{archive_id}.", suffix=_PART_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as out:
                writer = HashingWriter(out)
                yield writer
            # A crash between the replace and the new record must leave no record rather than the old one.
            self._digest_path(archive_id).unlink(missing_ok=True)
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._write_digest(archive_id, writer.sha256)

    def receive(self, archive_id: str, reader: Reader, expected_sha256: str | None = None) -> ArchiveInfo:
        """Writes a stream to <id>.tar, hashing on the way; on a checksum mismatch nothing is kept."""
        with self._writing(archive_id) as out:
            copy_into(reader, out)
            if expected_sha256 is not None and out.sha256 != expected_sha256.lower():
                raise ChecksumMismatch(
                    f"archive {archive_id}: sha256 {out.sha256} of {out.bytes} received bytes "
                    f"does not match {expected_sha256}"
                )
        return ArchiveInfo(archive_id, out.bytes, out.sha256)

    def write(self, archive_id: str, fill: Callable[[HashingWriter], T]) -> tuple[ArchiveInfo, T]:
        """Creates <id>.tar from what `fill` writes (e.g. a tar stream), hashed on the way like a received archive;
        returns its info and what `fill` returned."""
        with self._writing(archive_id) as out:
            result = fill(out)
        return ArchiveInfo(archive_id, out.bytes, out.sha256), result

    def adopt(self, archive_id: str, source: Path) -> ArchiveInfo:
        """Moves a file (the kubelet's checkpoint) into the store; the original is gone afterwards either way,
        also when the move or the copy fails (it holds full process memory)."""
        final = self.path(archive_id)
        try:
            try:
                self._digest_path(archive_id).unlink(missing_ok=True)
                os.rename(source, final)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                # Different mounts: copy (hashing on the way), then the finally below deletes the original.
                with open(source, "rb") as f:
                    return self.receive(archive_id, f)
        finally:
            source.unlink(missing_ok=True)
        os.chmod(final, 0o600)
        with open(final, "rb") as f:
            digest = file_sha256(f)
        self._write_digest(archive_id, digest)
        return ArchiveInfo(archive_id, final.stat().st_size, digest)

    def info(self, archive_id: str) -> ArchiveInfo:
        """Size and the sha256 recorded at write time (recomputed if the record is missing)."""
        final = self.path(archive_id)
        try:
            size = final.stat().st_size
        except FileNotFoundError:
            raise NotFound(f"archive {archive_id} not found on this node") from None
        try:
            digest = validation.sha256_hex(self._digest_path(archive_id).read_text().strip())
        except (FileNotFoundError, ValueError):
            with open(final, "rb") as f:
                digest = file_sha256(f)
            self._write_digest(archive_id, digest)
        return ArchiveInfo(archive_id, size, digest)

    def open(self, archive_id: str) -> BinaryIO:
        try:
            return open(self.path(archive_id), "rb")
        except FileNotFoundError:
            raise NotFound(f"archive {archive_id} not found on this node") from None

    def verify(self, archive_id: str) -> ArchiveInfo:
        """Re-hashes the archive and compares it with its record, so a corrupted file is never used."""
        info = self.info(archive_id)
        with self.open(archive_id) as f:
            digest = file_sha256(f)
        if digest != info.sha256:
            raise ChecksumMismatch(f"archive {archive_id}: sha256 {digest} does not match the recorded {info.sha256}")
        return info

    def delete_migration(self, migration_uid: str) -> list[str]:
        """Deletes every archive (and partial upload) whose id starts with "<migration-uid>-"; idempotent."""
        prefix = f"{validation.archive_id(migration_uid)}-"
        deleted = []
        for path in sorted(self.root.iterdir()):
            name = path.name
            if name.startswith(f".{prefix}") and name.endswith(_PART_SUFFIX):
                path.unlink(missing_ok=True)
            elif name.startswith(prefix) and name.endswith(_DIGEST_SUFFIX):
                path.unlink(missing_ok=True)
            elif name.startswith(prefix) and name.endswith(_SUFFIX):
                path.unlink(missing_ok=True)
                deleted.append(name[: -len(_SUFFIX)])
        return deleted

    def _write_digest(self, archive_id: str, digest: str) -> None:
        path = self._digest_path(archive_id)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(digest + "\n")
