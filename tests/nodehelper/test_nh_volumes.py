"""emptyDir copy: pack on the source, send, unpack into the replacement's volume, truncate, release."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from nhtestlib import RunningHelper, grant
from nodehelper import tlsconfig, volumes
from test_nh_server import call

SOURCE_UID = "3f2a9c1e-0b7d-4c1a-9e2f-1234567890ab"
TARGET_UID = "11111111-2222-3333-4444-555555555555"
MTIME = 1_700_000_000


def empty_dir(helper: RunningHelper, uid: str, volume: str, ready: bool = True) -> Path:
    """What the kubelet makes: the volume directory, then the plugin's ready marker."""
    directory = helper.pods_dir / uid / "volumes/kubernetes.io~empty-dir" / volume
    directory.mkdir(parents=True, mode=0o777)
    if ready:
        mark_ready(helper, uid, volume)
    return directory


def mark_ready(helper: RunningHelper, uid: str, volume: str) -> None:
    marker = helper.pods_dir / uid / "plugins/kubernetes.io~empty-dir" / volume / "ready"
    marker.parent.mkdir(parents=True)
    marker.touch()


def fill_volume(root: Path) -> None:
    (root / "sub/empty").mkdir(parents=True)
    (root / "sub/empty").chmod(0o700)
    (root / "sub/owned").write_text("owned\n")
    (root / "sub/owned").chmod(0o640)
    (root / "tool").write_text("#!/bin/sh\n")
    (root / "tool").chmod(0o4755)
    (root / "link").symlink_to("sub/owned")
    os.link(root / "sub/owned", root / "hard")
    (root / "seq").write_bytes(b"".join(b"%d\n" % i for i in range(1, 101)))
    for path in [root / "link", root / "sub/owned", root / "tool", root / "seq", root / "sub/empty", root / "sub"]:
        os.utime(path, (MTIME, MTIME), follow_symlinks=False)
    if os.geteuid() == 0:
        os.chown(root / "sub/owned", 1234, 2345)


@pytest.fixture
def ctx(pki: dict[str, Path]) -> Any:
    return tlsconfig.client_context(pki["node"])


def pack_and_send(source: RunningHelper, target: RunningHelper, ctx: Any) -> dict[str, Any]:
    fill_volume(empty_dir(source, SOURCE_UID, "data"))
    status, packed = call(
        source, "POST", "/v1/volumes/pack", {"podUID": SOURCE_UID, "volume": "data", "id": "mig1-vol-data"}, ctx=ctx
    )
    assert status == 200, packed
    grant(target, "mig1-vol-data", sha256=packed["sha256"], size=packed["bytes"])
    request = {"id": "mig1-vol-data", "target": target.url, "targetNode": "target"}
    status, sent = call(source, "POST", "/v1/send", request, ctx=ctx)
    assert status == 200 and sent["sha256"] == packed["sha256"]
    return packed


def unpack(target: RunningHelper, request: dict[str, Any], ctx: Any) -> tuple[int, dict[str, Any]]:
    """POST /v1/volumes/unpack with the sha256 and size recorded when the archive was stored, as the operator
    sends what the pack answered."""
    info = target.store.info(request["id"])
    return call(target, "POST", "/v1/volumes/unpack", {"sha256": info.sha256, "bytes": info.bytes, **request}, ctx=ctx)


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

    got = target.pods_dir / TARGET_UID / "volumes/kubernetes.io~empty-dir/data"
    assert (got / "seq").read_bytes() == b"1\n2\n3\n4\n5\n6\n"
    assert (got / "sub/owned").read_text() == "owned\n"
    assert stat.S_IMODE((got / "sub/owned").stat().st_mode) == 0o640
    assert stat.S_IMODE((got / "tool").stat().st_mode) == 0o4755  # kept, unlike tarfile's "tar" filter
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


def test_truncate_never_follows_a_link_out_of_the_volume(tmp_path: Path) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    (tmp_path / "host-file").write_text("host file")
    (volume / "escape").symlink_to(tmp_path / "host-file")
    (volume / "data").write_text("0123456789")
    (volume / "alias").symlink_to("data")
    assert volumes.truncate(volume, {"escape": 1, "alias": 4}) == ["alias"]
    assert (tmp_path / "host-file").read_text() == "host file"
    assert (volume / "data").read_text() == "0123"


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
    assert status == 400 and "outside the destination" in body["error"], body
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


@pytest.mark.parametrize(
    "request_body, status",
    [
        ({"podUID": SOURCE_UID, "volume": "nope", "id": "mig1-vol-nope"}, 404),
        ({"podUID": SOURCE_UID, "volume": "../data", "id": "mig1-vol-data"}, 400),
        ({"podUID": SOURCE_UID, "volume": "Data", "id": "mig1-vol-data"}, 400),
        ({"podUID": "../x", "volume": "data", "id": "mig1-vol-data"}, 400),
        ({"podUID": SOURCE_UID, "volume": "data", "id": "../x"}, 400),
        ({"podUID": SOURCE_UID, "volume": "data"}, 400),
    ],
)
def test_pack_refusals(
    helpers: tuple[RunningHelper, RunningHelper], ctx: Any, request_body: dict[str, str], status: int
) -> None:
    source, _ = helpers
    empty_dir(source, SOURCE_UID, "data")
    assert call(source, "POST", "/v1/volumes/pack", request_body, ctx=ctx)[0] == status
    assert list(source.store.root.iterdir()) == []
