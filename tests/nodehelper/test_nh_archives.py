import errno
import hashlib
import io
import os
import stat
from pathlib import Path

import pytest
from nodehelper import archives
from nodehelper.archives import ArchiveStore
from nodehelper.errors import BadRequest, ChecksumMismatch, NotFound

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


def test_failed_retry_keeps_the_verified_copy(tmp_path: Path) -> None:
    store = ArchiveStore(tmp_path)
    store.receive("uid-c", io.BytesIO(DATA), SHA)
    with pytest.raises(ChecksumMismatch):
        store.receive("uid-c", io.BytesIO(DATA[:-1]), SHA)
    assert store.path("uid-c").read_bytes() == DATA


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


def test_a_crash_before_the_new_digest_is_written_leaves_no_stale_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ArchiveStore(tmp_path / "archives")
    store.receive("uid-c", io.BytesIO(b"old archive"))
    original = tmp_path / "checkpoint-web_default-c-2025-01-01T00:00:00Z.tar"
    original.write_bytes(DATA)

    def crash(archive_id: str, digest: str) -> None:
        raise Crash

    monkeypatch.setattr(store, "_write_digest", crash)
    with pytest.raises(Crash):
        store.receive("uid-c", io.BytesIO(DATA), SHA)
    monkeypatch.undo()
    assert store.info("uid-c").sha256 == SHA

    store.receive("uid-c", io.BytesIO(b"old archive"))
    monkeypatch.setattr(store, "_write_digest", crash)
    with pytest.raises(Crash):
        store.adopt("uid-c", original)
    monkeypatch.undo()
    assert store.info("uid-c").sha256 == SHA


def _cross_device(src: object, dst: object) -> None:
    raise OSError(errno.EXDEV, "Invalid cross-device link")


def test_adopt_across_mounts_copies_and_deletes_the_original(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = tmp_path / "checkpoint-web_default-app-2025-01-01T00:00:00Z.tar"
    original.write_bytes(DATA)
    store = ArchiveStore(tmp_path / "archives")
    monkeypatch.setattr(archives.os, "rename", _cross_device)
    info = store.adopt("uid-app", original)
    assert not original.exists()
    assert (info.bytes, info.sha256) == (len(DATA), SHA)
    assert store.path("uid-app").read_bytes() == DATA and mode(store.path("uid-app")) == 0o600


def test_adopt_deletes_the_original_when_the_copy_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = tmp_path / "checkpoint-web_default-app-2025-01-01T00:00:00Z.tar"
    original.write_bytes(DATA)
    store = ArchiveStore(tmp_path / "archives")
    monkeypatch.setattr(archives.os, "rename", _cross_device)

    def disk_full(reader: object, out: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(archives, "copy_into", disk_full)
    with pytest.raises(OSError, match="No space"):
        store.adopt("uid-app", original)
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
