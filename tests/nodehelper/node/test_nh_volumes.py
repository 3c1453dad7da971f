"""emptyDir copy: pack on the source, send, unpack into the replacement's volume, truncate, release."""

from __future__ import annotations

import io
import os
import socket
import stat
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from nhcalls import call
from nhtestlib import RunningHelper
from nhvolumes import (
    MTIME,
    SOURCE_UID,
    TARGET_UID,
    empty_dir,
    fill_volume,
    frozen_container,
    pack_and_send,
    pack_request,
    unpack,
)

from nodehelper.node import volumes
from nodehelper.streams.diskspace import DiskSpace


def test_volume_content_arrives_with_owners_modes_times_and_links(
    helpers: tuple[RunningHelper, RunningHelper], ctx: Any
) -> None:
    source, target = helpers
    packed = pack_and_send(source, target, ctx)
    assert packed["files"] == 7 and packed["bytes"] > 0 and set(packed) == {"id", "bytes", "sha256", "seconds", "files"}
    assert stat.S_IMODE(source.store.path("mig1-vol-data").stat().st_mode) == 0o600

    # The replacement's volume appears only after the unpack request: the helper waits for the kubelet.
    threading.Timer(0.2, empty_dir, (target, TARGET_UID, "data")).start()
    request = {"podUID": TARGET_UID, "volume": "data", "id": "mig1-vol-data", "truncate": {"seq": 12}}
    status, body = unpack(target, request, ctx)
    assert status == 200, body
    assert body["files"] == 7 and body["bytes"] == packed["bytes"] and body["truncated"] == ["seq"]
    assert body["stripped"] == ["tool"]

    got = target.pods_dir / TARGET_UID / "volumes/kubernetes.io~empty-dir/data"
    assert (got / "seq").read_bytes() == b"1\n2\n3\n4\n5\n6\n"
    assert (got / "sub/owned").read_text() == "owned\n"
    assert stat.S_IMODE((got / "sub/owned").stat().st_mode) == 0o640
    assert stat.S_IMODE((got / "tool").stat().st_mode) == 0o755  # the helper never makes a setuid file
    assert stat.S_IMODE((got / "sub").stat().st_mode) == 0o2755  # a directory's setgid bit is kept
    assert stat.S_IMODE((got / "sub/empty").stat().st_mode) == 0o700 and list((got / "sub/empty").iterdir()) == []
    assert os.readlink(got / "link") == "sub/owned"
    assert (got / "hard").stat().st_ino == (got / "sub/owned").stat().st_ino
    for name in ["sub/owned", "tool", "sub/empty", "sub"]:
        assert (got / name).stat().st_mtime == MTIME, name
    assert os.lstat(got / "link").st_mtime == MTIME
    if os.geteuid() == 0:
        assert ((got / "sub/owned").stat().st_uid, (got / "sub/owned").stat().st_gid) == (1234, 2345)


def test_truncate_cuts_only_larger_files(helpers: tuple[RunningHelper, RunningHelper], ctx: Any) -> None:
    source, target = helpers
    pack_and_send(source, target, ctx)
    got = empty_dir(target, TARGET_UID, "data")
    request = {
        "podUID": TARGET_UID,
        "volume": "data",
        "id": "mig1-vol-data",
        "truncate": {"seq": 10_000, "sub/owned": 2, "missing": 0},
    }
    status, body = unpack(target, request, ctx)
    assert status == 200, body
    assert body["truncated"] == ["sub/owned"]
    assert (got / "sub/owned").read_text() == "ow" and (got / "seq").stat().st_size == 292


def test_truncate_never_follows_a_link(tmp_path: Path) -> None:
    """The paths name the open files themselves (the kernel's path of each fd), never a link to one."""
    volume = tmp_path / "volume"
    (volume / "sub").mkdir(parents=True)
    (tmp_path / "host-file").write_text("host file")
    (volume / "escape").symlink_to(tmp_path / "host-file")
    (volume / "data").write_text("0123456789")
    (volume / "sub/data").write_text("0123456789")
    (volume / "alias").symlink_to("data")
    (volume / "linked").symlink_to("sub")
    assert volumes.truncate(volume, {"escape": 1, "alias": 4, "linked/data": 2, "sub/data": 3, "sub": 0}) == [
        "sub/data"
    ]
    assert (tmp_path / "host-file").read_text() == "host file"
    assert (volume / "data").read_text() == "0123456789" and (volume / "sub/data").read_text() == "012"


@pytest.mark.parametrize(
    "truncate", [{"../x": 1}, {"/etc/passwd": 0}, {"a/../../x": 0}, {"seq": -1}, {"seq": "1"}, {"seq": True}, ["seq"]]
)
def test_invalid_truncations_are_refused_before_anything_happens(
    helpers: tuple[RunningHelper, RunningHelper], ctx: Any, truncate: Any
) -> None:
    _, target = helpers
    got = empty_dir(target, TARGET_UID, "data")
    target.store.receive("mig1-vol-data", io.BytesIO(tar_of([])))
    request = {"podUID": TARGET_UID, "volume": "data", "id": "mig1-vol-data", "truncate": truncate}
    status, body = unpack(target, request, ctx)
    assert status == 400 and "truncate" in body["error"]
    assert list(got.iterdir()) == []


def test_a_corrupted_archive_is_refused_and_nothing_extracted(
    helpers: tuple[RunningHelper, RunningHelper], ctx: Any
) -> None:
    source, target = helpers
    pack_and_send(source, target, ctx)
    got = empty_dir(target, TARGET_UID, "data")
    archive = target.store.path("mig1-vol-data")
    data = bytearray(archive.read_bytes())
    data[600] ^= 0xFF  # inside the first member's content
    archive.write_bytes(bytes(data))
    request = {"podUID": TARGET_UID, "volume": "data", "id": "mig1-vol-data"}
    status, body = unpack(target, request, ctx)
    assert status == 422 and "on disk does not match" in body["error"]
    assert list(got.iterdir()) == []


def tar_of(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


@pytest.mark.parametrize(
    "evil, message",
    [
        (member("/abs"), "not a plain relative path"),
        (member("../up"), "not a plain relative path"),
        (member("a/../../up"), "not a plain relative path"),
        (member("hard", tarfile.LNKTYPE, "../../outside"), "hard link outside"),
        (member("hard", tarfile.LNKTYPE, "/etc/passwd"), "hard link outside"),
    ],
)
def test_archives_that_reach_outside_the_volume_are_refused(
    helpers: tuple[RunningHelper, RunningHelper], ctx: Any, tmp_path: Path, evil: tarfile.TarInfo, message: str
) -> None:
    _, target = helpers
    got = empty_dir(target, TARGET_UID, "data")
    target.store.receive("mig1-vol-data", io.BytesIO(tar_of([(evil, b"evil")])))
    before = sorted(tmp_path.rglob("*"))
    status, body = unpack(target, {"podUID": TARGET_UID, "volume": "data", "id": "mig1-vol-data"}, ctx)
    assert status == 400 and message in body["error"]
    assert list(got.iterdir()) == []
    assert sorted(tmp_path.rglob("*")) == before


def test_symlinks_pointing_anywhere_are_restored_as_links(
    helpers: tuple[RunningHelper, RunningHelper], ctx: Any
) -> None:
    _, target = helpers
    got = empty_dir(target, TARGET_UID, "data")
    links = [(member("current", tarfile.SYMTYPE, "/data/v2"), b""), (member("up", tarfile.SYMTYPE, "../x"), b"")]
    target.store.receive("mig1-vol-data", io.BytesIO(tar_of(links)))
    status, body = unpack(target, {"podUID": TARGET_UID, "volume": "data", "id": "mig1-vol-data"}, ctx)
    assert status == 200, body
    assert os.readlink(got / "current") == "/data/v2" and os.readlink(got / "up") == "../x"


def test_nothing_is_written_through_a_symlink(
    helpers: tuple[RunningHelper, RunningHelper], ctx: Any, tmp_path: Path
) -> None:
    _, target = helpers
    empty_dir(target, TARGET_UID, "data")
    outside = tmp_path / "outside"
    outside.mkdir()
    evil = [(member("out", tarfile.SYMTYPE, str(outside)), b""), (member("out/planted"), b"evil")]
    target.store.receive("mig1-vol-data", io.BytesIO(tar_of(evil)))
    status, body = unpack(target, {"podUID": TARGET_UID, "volume": "data", "id": "mig1-vol-data"}, ctx)
    assert status == 400 and "below a symbolic link of the archive" in body["error"], body
    assert list(outside.iterdir()) == []


def test_unpack_and_release_wait_for_the_kubelet_then_give_up(
    helpers: tuple[RunningHelper, RunningHelper], ctx: Any
) -> None:
    _, target = helpers
    target.store.receive("mig1-vol-data", io.BytesIO(tar_of([])))
    empty_dir(target, TARGET_UID, "data", ready=False)  # directory made, tmpfs/ownership not done yet
    started = time.monotonic()
    request = {"podUID": TARGET_UID, "volume": "data", "id": "mig1-vol-data", "timeoutSeconds": 1}
    status, body = unpack(target, request, ctx)
    assert status == 404 and "did not set up emptyDir data" in body["error"]
    assert 1 <= time.monotonic() - started < 5
    status, body = call(
        target, "POST", "/v1/volumes/release", {"podUID": TARGET_UID, "volume": "ready", "timeoutSeconds": 1}, ctx=ctx
    )
    assert status == 404


def test_release_writes_the_file_the_init_container_waits_for(
    helpers: tuple[RunningHelper, RunningHelper], ctx: Any
) -> None:
    _, target = helpers
    threading.Timer(0.2, empty_dir, (target, TARGET_UID, "podmigration-ready")).start()
    request = {"podUID": TARGET_UID, "volume": "podmigration-ready"}
    assert call(target, "POST", "/v1/volumes/release", request, ctx=ctx) == (200, {"released": True})
    done = target.pods_dir / TARGET_UID / "volumes/kubernetes.io~empty-dir/podmigration-ready/done"
    assert done.is_file() and done.stat().st_size == 0
    assert call(target, "POST", "/v1/volumes/release", request, ctx=ctx) == (200, {"released": True})


def test_device_nodes_are_not_copied(helpers: tuple[RunningHelper, RunningHelper], ctx: Any) -> None:
    source, target = helpers
    volume = empty_dir(source, SOURCE_UID, "data")
    frozen_container(source, SOURCE_UID)
    os.mknod(volume / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    status, body = pack_request(source, ctx)
    assert status == 400 and "device node" in body["error"], body
    got = empty_dir(target, TARGET_UID, "data")
    target.store.receive("mig1-vol-data", io.BytesIO(tar_of([(member("null", tarfile.CHRTYPE), b"")])))
    status, body = unpack(target, {"podUID": TARGET_UID, "volume": "data", "id": "mig1-vol-data"}, ctx)
    assert status == 400 and "device node" in body["error"], body
    assert list(got.iterdir()) == []


def test_fifos_travel_and_sockets_are_skipped(
    helpers: tuple[RunningHelper, RunningHelper], ctx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fifo_and_socket(volume: Path) -> None:
        os.mkfifo(volume / "pipe")
        (volume / "pipe").chmod(0o620)
        monkeypatch.chdir(volume)  # a socket's path is limited to 107 bytes
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind("sock")

    source, target = helpers
    assert pack_and_send(source, target, ctx, fifo_and_socket)["files"] == 1
    got = empty_dir(target, TARGET_UID, "data")
    status, body = unpack(target, {"podUID": TARGET_UID, "volume": "data", "id": "mig1-vol-data"}, ctx)
    assert status == 200, body
    assert [p.name for p in got.iterdir()] == ["pipe"]
    assert stat.S_ISFIFO((got / "pipe").lstat().st_mode) and stat.S_IMODE((got / "pipe").lstat().st_mode) == 0o620


def test_an_unpack_run_again_replaces_what_the_first_one_made(tmp_path: Path) -> None:
    """A helper that died mid-unpack: the operator asks again and gets the same volume, not an error."""
    (tmp_path / "source").mkdir()
    fill_volume(tmp_path / "source")
    archive = tmp_path / "volume.tar"
    with archive.open("wb") as out:
        assert volumes.pack(tmp_path / "source", out) == 7
    (tmp_path / "target").mkdir()
    for _ in range(2):
        assert volumes.unpack(archive, tmp_path / "target", DiskSpace(0, 0)).entries == 7
    got = tmp_path / "target"
    assert (got / "sub/owned").read_text() == "owned\n" and os.readlink(got / "link") == "sub/owned"
    assert (got / "hard").stat().st_ino == (got / "sub/owned").stat().st_ino
