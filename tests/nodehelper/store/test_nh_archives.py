import errno
import hashlib
import io
import os
import stat
from pathlib import Path

import pytest

from nodehelper.errors import BadRequest, ChecksumMismatch, Conflict, InsufficientStorage, NotFound
from nodehelper.store import archives
from nodehelper.store.archives import ArchiveStore

DATA = os.urandom(3 * (1 << 20) + 17)  # spans several 1 MiB chunks
SHA = hashlib.sha256(DATA).hexdigest()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_store_is_root_only(tmp_path: Path) -> None:
    (tmp_path / "archives").mkdir(mode=0o755)
    store = ArchiveStore(tmp_path / "archives")
    info = store.receive("uid-c", io.BytesIO(DATA), SHA)
    assert (info.bytes, info.sha256) == (len(DATA), SHA)
    assert mode(store.root) == 0o700
    assert mode(store.path("uid-c")) == 0o600
    assert store.path("uid-c").read_bytes() == DATA
    assert all(mode(p) == 0o600 for p in store.root.iterdir())


def test_checksum_mismatch_keeps_nothing(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path)
    with pytest.raises(ChecksumMismatch, match="does not match"):
        store.receive("uid-c", io.BytesIO(DATA), "0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_an_archive_is_written_once(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path / "archives")
    store.receive("uid-c", io.BytesIO(DATA), SHA)
    kubelet_copy = tmp_path / "checkpoint-web_default-c-2025-01-01T00:00:00Z.tar"
    kubelet_copy.write_bytes(b"other memory")
    for write in (
        lambda: store.receive("uid-c", io.BytesIO(DATA), SHA),  # even the same bytes
        lambda: store.receive("uid-c", io.BytesIO(b"forged")),
        lambda: store.write("uid-c", 0, lambda out: out.write(b"forged")),
        lambda: store.adopt("uid-c", kubelet_copy),
    ):
        with pytest.raises(Conflict, match="already exists.*DELETE /v1/migrations"):
            write()
    assert not kubelet_copy.exists()  # process memory nobody may keep
    assert store.path("uid-c").read_bytes() == DATA and store.info("uid-c").sha256 == SHA
    assert sorted(p.name for p in store.root.iterdir()) == ["uid-c.tar", "uid-c.tar.sha256"]
    store.delete_migration("uid")
    assert store.receive("uid-c", io.BytesIO(b"new")).bytes == 3


class AnotherUpload(io.BytesIO):
    """A stream during which a concurrent upload of the same id completes."""

    def __init__(self, store: ArchiveStore) -> None:
        super().__init__(DATA)
        self.store = store

    def read(self, size: int = -1) -> bytes:
        if self.tell() == 0 and not self.store.path("uid-c").exists():
            self.store.path("uid-c").write_bytes(b"first")
        return super().read(size)


def test_the_first_of_two_concurrent_writes_wins(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path)
    with pytest.raises(Conflict):
        store.receive("uid-c", AnotherUpload(store), SHA)
    assert store.path("uid-c").read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["uid-c.tar"]


def test_info_uses_recorded_digest_and_recomputes_when_missing(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path)
    store.receive("uid-c", io.BytesIO(DATA))
    assert store.info("uid-c").sha256 == SHA
    (tmp_path / "uid-c.tar.sha256").unlink()
    assert store.info("uid-c").sha256 == SHA
    with pytest.raises(NotFound):
        store.info("uid-other")


def test_adopt_moves_kubelet_archive(tmp_path: Path) -> None:
    kubelet_dir = tmp_path / "kubelet"
    kubelet_dir.mkdir()
    original = kubelet_dir / "checkpoint-web_default-app-2025-01-01T00:00:00Z.tar"
    original.write_bytes(DATA)
    original.chmod(0o644)
    store = ArchiveStore(tmp_path / "archives")
    info = store.adopt("uid-app", original)
    assert not original.exists()
    assert (info.bytes, info.sha256) == (len(DATA), SHA)
    assert mode(store.path("uid-app")) == 0o600


class Crash(Exception):
    pass


def test_no_stale_digest_is_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ArchiveStore(tmp_path / "archives")
    # A deletion that crashed between the archive and its record left the record.
    (store.root / "uid-c.tar.sha256").write_text("0" * 64 + "\n")
    assert store.receive("uid-c", io.BytesIO(DATA)).sha256 == SHA
    assert store.info("uid-c").sha256 == SHA

    # A crash between the archive's appearance and its record: the record is recomputed.
    original = tmp_path / "checkpoint-web_default-c-2025-01-01T00:00:00Z.tar"
    original.write_bytes(DATA)

    def crash(archive_id: str, digest: str) -> None:
        raise Crash

    with monkeypatch.context() as patched, pytest.raises(Crash):  # undoes only its own patch, not conftest's
        patched.setattr(store, "_write_digest", crash)
        store.adopt("uid-d", original)
    assert store.info("uid-d").sha256 == SHA


_link = os.link


def _cross_device(src: Path, dst: Path) -> None:
    """The kubelet's checkpoint directory is another mount: linking from it fails, within the store it works."""
    if Path(src).parent != Path(dst).parent:
        raise OSError(errno.EXDEV, "Invalid cross-device link")
    _link(src, dst)


def test_adopt_across_mounts_copies_and_deletes_the_original(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = tmp_path / "checkpoint-web_default-app-2025-01-01T00:00:00Z.tar"
    original.write_bytes(DATA)
    store = ArchiveStore(tmp_path / "archives")
    monkeypatch.setattr(archives.os, "link", _cross_device)
    info = store.adopt("uid-app", original)
    assert not original.exists()
    assert (info.bytes, info.sha256) == (len(DATA), SHA)
    assert store.path("uid-app").read_bytes() == DATA and mode(store.path("uid-app")) == 0o600


def test_adopt_records_a_digest_computed_while_written_and_a_copy_checks_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = tmp_path / "checkpoint-web_default-app-2025-01-01T00:00:00Z.tar"
    original.write_bytes(DATA)
    store = ArchiveStore(tmp_path / "archives")
    with monkeypatch.context() as patched:  # undoes only its own patch, not conftest's
        patched.setattr(archives, "file_sha256", lambda f: pytest.fail("hashed again after the link"))
        assert store.adopt("uid-app", original, SHA).sha256 == SHA == store.info("uid-app").sha256
    # Across mounts the copy hashes anyway and refuses a digest that is not the file's: nothing kept.
    original.write_bytes(DATA)
    monkeypatch.setattr(archives.os, "link", _cross_device)
    with pytest.raises(ChecksumMismatch):
        store.adopt("uid-other", original, "0" * 64)
    assert not original.exists() and not store.path("uid-other").exists()


def test_adopt_deletes_the_original_when_the_copy_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = tmp_path / "checkpoint-web_default-app-2025-01-01T00:00:00Z.tar"
    original.write_bytes(DATA)
    store = ArchiveStore(tmp_path / "archives")
    monkeypatch.setattr(archives.os, "link", _cross_device)

    def disk_full(reader: object, out: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(archives, "copy_into", disk_full)
    with pytest.raises(InsufficientStorage, match="disk of .* is full") as info:
        store.adopt("uid-app", original)
    assert info.value.status == 507
    assert not original.exists()
    assert list(store.root.iterdir()) == []


def test_delete_migration_removes_only_that_migration(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path)
    for archive_id in ["mig1-app", "mig1-sidecar", "mig2-app"]:
        store.receive(archive_id, io.BytesIO(b"x"))
    (tmp_path / ".mig1-app.abc.part").write_bytes(b"partial")
    assert store.delete_migration("mig1") == ["mig1-app", "mig1-sidecar"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mig2-app.tar", "mig2-app.tar.sha256"]
    assert store.delete_migration("mig1") == []


def test_stale_partial_uploads_are_removed_at_start(tmp_path: Path) -> None:
    (tmp_path / ".uid-c.x1.part").write_bytes(b"memory")
    ArchiveStore(tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", ["../x", "a/b", "..", "A"])
def test_ids_never_become_paths_outside_the_store(tmp_path: Path, bad: str) -> None:
    store = ArchiveStore(tmp_path / "archives")
    with pytest.raises(BadRequest):
        store.path(bad)
    with pytest.raises(BadRequest):
        store.receive(bad, io.BytesIO(b"x"))
    with pytest.raises(BadRequest):
        store.delete_migration(bad)


def test_an_archive_still_as_hashed_on_its_way_in_is_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ArchiveStore(tmp_path / "archives")
    store.receive("uid-c", io.BytesIO(DATA), SHA)
    kubelet_copy = tmp_path / "kubelet.tar"
    kubelet_copy.write_bytes(DATA)
    store.adopt("uid-d", kubelet_copy, SHA)  # taken in from the kubelet, hashed while CRI-O wrote it
    rehashed: list[str] = []
    verify = store.verify
    monkeypatch.setattr(
        store, "verify", lambda archive_id, *rest: rehashed.append(archive_id) or verify(archive_id, *rest)
    )
    assert store.unchanged("uid-c", SHA, len(DATA)).sha256 == SHA
    assert store.unchanged("uid-d", SHA, len(DATA)).sha256 == SHA
    assert rehashed == []

    # Anything but the file as hashed, with the checkpoint's digest, is hashed again, and that decides.
    with pytest.raises(ChecksumMismatch, match=f"does not match sha256 {'0' * 64} recorded at the checkpoint"):
        store.unchanged("uid-c", "0" * 64, len(DATA))
    changed = bytearray(DATA)
    changed[5] ^= 0xFF
    store.path("uid-c").write_bytes(bytes(changed))  # same size, same inode
    with pytest.raises(ChecksumMismatch, match="on disk does not match"):
        store.unchanged("uid-c", SHA, len(DATA))
    store.path("uid-c").write_bytes(DATA)  # the same bytes again: the re-hash accepts them
    assert store.unchanged("uid-c", SHA, len(DATA)).sha256 == SHA
    (store.root / "uid-d.tar.sha256").write_text(SHA + "\n")  # a record without a fingerprint (an older helper)
    assert store.unchanged("uid-d", SHA, len(DATA)).sha256 == SHA
    assert rehashed == ["uid-c", "uid-c", "uid-c", "uid-d"]


def test_an_archive_that_outlives_its_migrations_cleanup_is_discarded(tmp_path: Path) -> None:
    """An operator that died mid-call cleans up when it starts over; the old call, still running here, must not
    publish its archive afterwards: it would block the new checkpoint (409) or be left behind for good."""
    store = ArchiveStore(tmp_path / "archives")
    kubelet_copy = tmp_path / "kubelet.tar"
    kubelet_copy.write_bytes(DATA)
    generation = store.generation("uid-c")  # the old call starts
    store.delete_migration("uid")  # the new operator process cleans up
    with pytest.raises(Conflict, match="cleaned up while it was being written"):
        store.adopt("uid-c", kubelet_copy, SHA, generation)
    assert not kubelet_copy.exists() and list(store.root.iterdir()) == []

    class CleanedUpMidStream(io.BytesIO):
        def read(self, size: int = -1) -> bytes:
            store.delete_migration("uid")
            return super().read(size)

    with pytest.raises(Conflict, match="cleaned up while it was being written"):
        store.receive("uid-c", CleanedUpMidStream(DATA), SHA)
    assert list(store.root.iterdir()) == []
    assert store.receive("uid-c", io.BytesIO(DATA), SHA).sha256 == SHA  # a write that starts afterwards is kept
