"""Local store of checkpoint archives. They hold full process memory: root-only files, written once, verified,
deleted only with their migration."""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

from nodehelper import validation
from nodehelper.errors import ArchiveTooLarge, ChecksumMismatch, Conflict, InsufficientStorage, NotFound
from nodehelper.store import records
from nodehelper.streams.codec import HashingWriter, Reader, copy_into, file_sha256
from nodehelper.streams.diskspace import DEFAULT_MIN_FREE_BYTES, DEFAULT_MIN_FREE_PERCENT, BoundedWriter, DiskSpace
from pmcontract.names import migration_uid

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


def _exists(archive_id: str) -> Conflict:
    return Conflict(
        f"archive {archive_id} already exists on this node: archives are written once and removed only "
        "with their migration (DELETE /v1/migrations/<uid>)"
    )


DEFAULT_MAX_ARCHIVE_BYTES = 64 << 30


class ArchiveStore:
    """Files <id>.tar (0600) in a 0700 directory, each with a <id>.tar.sha256 recorded when it was written.

    Write-once: an archive appears whole under its id (hard-linked from a partial file, which fails if the id
    exists) or not at all, and only deleting its migration removes it, so nobody can swap what was verified.
    Each is at most `max_bytes`; `space` keeps the disk's floor free (the helper's other writes check it too)."""

    def __init__(
        self,
        root: Path,
        max_bytes: int = DEFAULT_MAX_ARCHIVE_BYTES,
        space: DiskSpace | None = None,
    ) -> None:
        self.root = root
        self.max_bytes = max_bytes
        # Migration uid -> how often it was cleaned up: a call still running for it when the operator cleaned up
        # (its process died mid-call, the next one started over) must not publish its archive afterwards.
        self._cleanups: dict[str, int] = {}
        self._lock = threading.Lock()
        self.space = space or DiskSpace(DEFAULT_MIN_FREE_BYTES, DEFAULT_MIN_FREE_PERCENT)
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

    def generation(self, archive_id: str) -> int:
        """How often the archive's migration was cleaned up so far; a writer takes it when it starts."""
        with self._lock:
            return self._generation(archive_id)

    def _generation(self, archive_id: str) -> int:
        return sum(n for uid, n in self._cleanups.items() if archive_id.startswith(f"{uid}-"))

    def refuse_existing(self, archive_id: str) -> None:
        """Checked before any work (a kubelet checkpoint, reading an upload), and again when the archive appears."""
        if self.path(archive_id).exists():
            raise _exists(archive_id)

    def refuse_larger(self, archive_id: str, size: int, what: str) -> None:
        if size > self.max_bytes:
            raise ArchiveTooLarge(
                f"archive {archive_id}: {what} of {size} bytes exceeds the maximum of {self.max_bytes} "
                "(PM_MAX_ARCHIVE_BYTES)"
            )

    def require_space(self, archive_id: str, need: int) -> None:
        self.space.require(self.root, need, f"archive {archive_id}")

    @contextlib.contextmanager
    def _writing(self, archive_id: str, need: int, limit: int, too_large: str) -> Iterator[HashingWriter]:
        """Yields a hashing writer, bounded to `limit` bytes, on a hidden partial file that becomes <id>.tar (with
        its sha256 record) only if the block ends without an exception and the id is still free; otherwise
        nothing is kept."""
        self.refuse_existing(archive_id)
        self.require_space(archive_id, need)
        generation = self.generation(archive_id)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{archive_id}.", suffix=_PART_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as out:
                check = functools.partial(self.require_space, archive_id, 0)
                writer = HashingWriter(BoundedWriter(out, limit, too_large, check))
                try:
                    yield writer
                finally:
                    writer.close()
            self._publish(Path(tmp), archive_id, generation)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise InsufficientStorage(f"archive {archive_id}: the disk of {self.root} is full") from None
            raise
        finally:
            Path(tmp).unlink(missing_ok=True)
        self._write_digest(archive_id, writer.sha256)

    def _publish(self, source: Path, archive_id: str, generation: int | None) -> None:
        """Links a complete file in as <id>.tar; link(2), unlike rename(2), never replaces an existing one. Not if
        its migration was cleaned up since the writer started (`generation`): nobody would ever delete it."""
        with self._lock:  # against delete_migration between the check and the link
            if generation is not None and self._generation(archive_id) != generation:
                raise Conflict(
                    f"archive {archive_id}: its migration was cleaned up while it was being written; discarded"
                )
            # No archive has this id, so any record of it is stale (a deletion that crashed halfway).
            self._digest_path(archive_id).unlink(missing_ok=True)
            try:
                os.link(source, self.path(archive_id))
            except FileExistsError:
                raise _exists(archive_id) from None

    def receive(
        self, archive_id: str, reader: Reader, expected_sha256: str | None = None, size: int | None = None
    ) -> ArchiveInfo:
        """Writes a stream to <id>.tar, hashing on the way; `size`, when the sender announced it, bounds the
        stream (and is checked for room first); on a size or checksum mismatch nothing is kept."""
        if size is None:
            limit, too_large = self.max_bytes, f"the maximum of {self.max_bytes} bytes (PM_MAX_ARCHIVE_BYTES)"
        else:
            self.refuse_larger(archive_id, size, "the announced size")
            limit, too_large = size, f"the {size} bytes announced"
        message = f"archive {archive_id}: the stream is larger than {too_large}; nothing kept"
        with self._writing(archive_id, size or 0, limit, message) as out:
            copy_into(reader, out)
            if size is not None and out.bytes != size:
                raise ChecksumMismatch(f"archive {archive_id}: received {out.bytes} bytes, {size} were announced")
            if expected_sha256 is not None and out.sha256 != expected_sha256.lower():
                raise ChecksumMismatch(
                    f"archive {archive_id}: sha256 {out.sha256} of {out.bytes} received bytes "
                    f"does not match {expected_sha256}"
                )
        return ArchiveInfo(archive_id, out.bytes, out.sha256)

    def write(self, archive_id: str, need: int, fill: Callable[[HashingWriter], T]) -> tuple[ArchiveInfo, T]:
        """Creates <id>.tar from what `fill` writes (e.g. a tar stream), hashed on the way like a received archive;
        `need` is its estimated size. Returns its info and what `fill` returned."""
        self.refuse_larger(archive_id, need, "an estimated size")
        message = f"archive {archive_id}: larger than the maximum of {self.max_bytes} bytes (PM_MAX_ARCHIVE_BYTES)"
        with self._writing(archive_id, need, self.max_bytes, message) as out:
            result = fill(out)
        return ArchiveInfo(archive_id, out.bytes, out.sha256), result

    def adopt(
        self, archive_id: str, source: Path, sha256: str | None = None, generation: int | None = None
    ) -> ArchiveInfo:
        """Moves a file (the kubelet's checkpoint) into the store; the original is gone afterwards either way,
        also when the move or the copy fails (it holds full process memory). `sha256`, when it was computed while
        the file was written, is recorded as it is (a link does not change the bytes) or checked by a copy."""
        try:
            size = source.stat().st_size
            self.refuse_larger(archive_id, size, "the checkpoint")
            self.refuse_existing(archive_id)
            try:
                self._publish(source, archive_id, generation)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                # Different mounts: copy (hashing on the way), then the finally below deletes the original.
                with open(source, "rb") as f:
                    return self.receive(archive_id, f, expected_sha256=sha256, size=size)
        finally:
            source.unlink(missing_ok=True)
        final = self.path(archive_id)
        os.chmod(final, 0o600)
        digest = sha256
        if digest is None:
            with open(final, "rb") as f:
                digest = file_sha256(f)
        self._write_digest(archive_id, digest)
        return ArchiveInfo(archive_id, size, digest)

    def info(self, archive_id: str) -> ArchiveInfo:
        """Size and the sha256 recorded at write time (recomputed if the record is missing)."""
        final = self.path(archive_id)
        try:
            size = final.stat().st_size
        except FileNotFoundError:
            raise NotFound(f"archive {archive_id} not found on this node") from None
        try:
            digest = validation.sha256_hex(self._record(archive_id)[0])
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

    def verify(self, archive_id: str, sha256: str, size: int) -> ArchiveInfo:
        """Re-hashes the file as it is on disk now against the sha256 and size the checkpoint (or pack) answered,
        not against the record kept here, so an archive changed on disk after its transfer is never used."""
        with self.open(archive_id) as f:
            self._check_size(archive_id, os.fstat(f.fileno()).st_size, size)
            digest = file_sha256(f)
        if digest != sha256:
            raise ChecksumMismatch(
                f"archive {archive_id}: sha256 {digest} on disk does not match sha256 {sha256} recorded at the "
                "checkpoint; "
                "not used"
            )
        return ArchiveInfo(archive_id, size, digest)

    def unchanged(self, archive_id: str, sha256: str, size: int) -> ArchiveInfo:
        """verify, without reading the archive again when it is still the file hashed as it was written here
        (received, or taken from the kubelet) with the checkpoint's digest: same inode, size, mtime and ctime as
        recorded right after (every write changes mtime and ctime, and the kernel stamps a change after that stat
        finer than the stat saw). Anything else (a changed file, another digest, a record without a fingerprint
        from an older helper) is re-hashed by verify, which decides. A second pass over 1 GiB cost 1.5-2.5 s of
        downtime here."""
        try:
            st = self.path(archive_id).stat()
            digest, fingerprint = self._record(archive_id)
        except FileNotFoundError:
            return self.verify(archive_id, sha256, size)
        if st.st_size == size and digest == sha256 and fingerprint == records.fingerprint(st):
            return ArchiveInfo(archive_id, size, digest)
        log.info(
            "archive %s is not the file hashed as it was written (or not with that digest): hashing it again",
            archive_id,
        )
        return self.verify(archive_id, sha256, size)

    def check_size(self, archive_id: str, size: int) -> None:
        """The cheap half of verify, for a consumer that checks the digest itself while it reads (skopeo)."""
        try:
            actual = self.path(archive_id).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"archive {archive_id} not found on this node") from None
        self._check_size(archive_id, actual, size)

    @staticmethod
    def _check_size(archive_id: str, actual: int, size: int) -> None:
        if actual != size:
            raise ChecksumMismatch(
                f"archive {archive_id}: {actual} bytes on disk, but {size} were recorded at the checkpoint; not used"
            )

    def delete_migration(self, migration_uid: str) -> list[str]:
        """Deletes every archive (and partial upload) whose id starts with "<migration-uid>-"; idempotent."""
        uid = validation.archive_id(migration_uid)
        prefix = f"{uid}-"
        deleted = []
        with self._lock:
            self._cleanups[uid] = self._cleanups.get(uid, 0) + 1
            paths = sorted(self.root.iterdir())
        for path in paths:
            name = path.name
            if (
                name.startswith(f".{prefix}")
                and name.endswith(_PART_SUFFIX)
                or name.startswith(prefix)
                and name.endswith(_DIGEST_SUFFIX)
            ):
                path.unlink(missing_ok=True)
            elif name.startswith(prefix) and name.endswith(_SUFFIX):
                path.unlink(missing_ok=True)
                deleted.append(name[: -len(_SUFFIX)])
        return deleted

    def migration_uids(self) -> set[str]:
        """The migrations with an archive, a digest record or a partial upload here."""
        names = (path.name.removeprefix(".") for path in self.root.iterdir())
        return {uid for name in names if (uid := migration_uid(name))}

    def _write_digest(self, archive_id: str, digest: str) -> None:
        records.write(self._digest_path(archive_id), digest, self.path(archive_id))

    def _record(self, archive_id: str) -> tuple[str, str | None]:
        return records.read(self._digest_path(archive_id))
