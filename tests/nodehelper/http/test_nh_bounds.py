"""Archive sizes are bounded (announced, maximum, decoded while streaming) and free space is checked first."""

from __future__ import annotations

import hashlib
import io
import os
import ssl
from pathlib import Path
from typing import Any

import pytest
import zstandard
from nhcalls import FakeKubelet, call
from nhtestlib import RunningHelper, grant
from nhvolumes import SOURCE_UID, empty_dir, fill_volume, frozen_container

from nodehelper.errors import ArchiveTooLarge, InsufficientStorage
from nodehelper.node import volumes
from nodehelper.store.archives import ArchiveStore
from nodehelper.streams import codec, diskspace

DATA = os.urandom(3 << 20)
SHA = hashlib.sha256(DATA).hexdigest()
GIB = 1 << 30


def put(target: RunningHelper, ctx: ssl.SSLContext, body: Any, **headers: str) -> tuple[int, dict[str, Any]]:
    """An upload by the source's helper, granted for the size it announces (the checks here come after)."""
    headers = {"X-Content-Sha256": SHA, "Content-Encoding": "identity", **headers}
    size = headers.get("X-Content-Length-Decoded") or (
        headers.get("Content-Length") if headers["Content-Encoding"] == "identity" else None
    )
    if size is not None and size.isdigit():
        grant(target, "mig1-app", sha256=SHA, size=int(size))
    return call(target, "PUT", "/v1/archives/mig1-app", body=body, headers=headers, ctx=ctx)


def zstd_of_zeros(size: int) -> bytes:
    compressor = zstandard.ZstdCompressor().compressobj()
    return b"".join(compressor.compress(bytes(1 << 20)) for _ in range(size >> 20)) + compressor.flush()


def test_an_upload_larger_than_the_maximum_is_refused_before_it_is_read(
    helpers: tuple[RunningHelper, RunningHelper], peer_ctx: ssl.SSLContext
) -> None:
    _, target = helpers
    target.store.max_bytes = 1 << 20
    big = bytes((1 << 20) + 1)
    status, body = put(target, peer_ctx, big[:1], **{"Content-Length": str(len(big))})
    assert status == 413 and f"the announced size of {len(big)} bytes exceeds the maximum of 1048576" in body["error"]
    # zstd may expand incompressible data a little, not twice.
    status, body = put(target, peer_ctx, big[:1], **{"Content-Length": str(2 * len(big)), "Content-Encoding": "zstd"})
    assert status == 413 and f"a body of {2 * len(big)} bytes, more than" in body["error"]
    status, body = put(target, peer_ctx, iter([b"x"]), **{"X-Content-Length-Decoded": str(len(big))})
    assert status == 413 and "the announced size" in body["error"]
    assert list(target.store.root.iterdir()) == []


@pytest.mark.parametrize(
    "announced, message",
    [({"X-Content-Length-Decoded": "1000"}, "the 1000 bytes announced")],
)
def test_a_zstd_bomb_is_cut_off_while_it_streams(
    helpers: tuple[RunningHelper, RunningHelper], peer_ctx: ssl.SSLContext, announced: dict[str, str], message: str
) -> None:
    """256 MiB of zeros in a few KiB: stopped at the bound, not after the disk took them."""
    _, target = helpers
    target.store.max_bytes = 8 << 20
    bomb = zstd_of_zeros(256 << 20)
    assert len(bomb) < 100_000
    status, body = put(target, peer_ctx, iter([bomb]), **{"Content-Encoding": "zstd", **announced})
    assert status == 413 and message in body["error"] and "nothing kept" in body["error"]
    assert list(target.store.root.iterdir()) == []


def test_a_body_shorter_than_announced_is_refused(
    helpers: tuple[RunningHelper, RunningHelper], peer_ctx: ssl.SSLContext
) -> None:
    _, target = helpers
    status, body = put(target, peer_ctx, iter([DATA]), **{"X-Content-Length-Decoded": str(len(DATA) + 1)})
    assert status == 422 and f"received {len(DATA)} bytes, {len(DATA) + 1} were announced" in body["error"]
    status, body = put(target, peer_ctx, iter([b"x"]), **{"X-Content-Length-Decoded": "-1"})
    assert status == 400 and "X-Content-Length-Decoded" in body["error"]
    assert list(target.store.root.iterdir()) == []


def test_the_sender_announces_the_size(helpers: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext) -> None:
    """Our own sender says how large the archive is, so the receiver bounds it by that."""
    source, target = helpers
    source.store.receive("mig1-app", io.BytesIO(DATA))
    target.store.max_bytes = len(DATA)
    grant(target, "mig1-app", DATA)
    request = {"id": "mig1-app", "target": target.url, "targetNode": "target"}
    assert call(source, "POST", "/v1/send", request, ctx=ctx)[0] == 200
    source.store.receive("mig2-app", io.BytesIO(DATA + b"x"))
    grant(target, "mig2-app", DATA + b"x")
    status, body = call(source, "POST", "/v1/send", {**request, "id": "mig2-app"}, ctx=ctx)
    assert status == 502 and "answered 413" in body["error"] and "the announced size" in body["error"]


def test_the_wire_is_bounded_too() -> None:
    reader = codec.CappedReader(io.BytesIO(DATA), len(DATA) - 1, "archive a: the body on the wire")
    with pytest.raises(ArchiveTooLarge, match=f"the body on the wire: more than {len(DATA) - 1} bytes"):
        while reader.read(1 << 20):
            pass


def free(space: int) -> Any:
    return lambda directory: diskspace.Usage(space, 0)


def test_an_upload_that_does_not_fit_is_refused_before_it_is_read(
    helpers: tuple[RunningHelper, RunningHelper], peer_ctx: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, target = helpers
    monkeypatch.setattr(diskspace, "usage", free(10 * GIB))
    status, body = put(target, peer_ctx, iter([b"x"]), **{"X-Content-Length-Decoded": str(9 * GIB + 1)})
    assert status == 507
    assert f"{9 * GIB + 1} bytes do not fit" in body["error"] and "PM_MIN_FREE_BYTES" in body["error"]
    target.store.space.min_free = 10 * GIB + 1  # nothing fits, not even one byte
    assert put(target, peer_ctx, iter([b"x"]), **{"X-Content-Length-Decoded": "1"})[0] == 507
    target.store.space.min_free = GIB
    assert put(target, peer_ctx, iter([DATA]), **{"X-Content-Length-Decoded": str(len(DATA))})[0] == 200


def test_a_stream_stops_when_the_disk_runs_short(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Other writes share the disk: the free space is read again as the stream grows."""
    spaces = iter([10 * GIB, 10 * GIB, GIB - 1])
    monkeypatch.setattr(diskspace, "usage", lambda directory: diskspace.Usage(next(spaces), 0))
    monkeypatch.setattr(diskspace, "CHECK_EVERY", 1 << 20)
    store = ArchiveStore(tmp_path)
    with pytest.raises(InsufficientStorage, match="0 bytes do not fit"):
        store.receive("uid-c", io.BytesIO(DATA))
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_needs_room_in_both_directories_before_the_kubelet_dumps(
    helpers: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, _ = helpers
    kubelet = FakeKubelet(tmp_path)
    source.helper.kubelet = kubelet  # type: ignore[assignment]
    request = {"namespace": "default", "pod": "web", "container": "app", "id": "mig1-app", "expectedBytes": GIB}
    monkeypatch.setattr(
        diskspace, "usage", lambda directory: diskspace.Usage(GIB if directory == tmp_path else 10 * GIB, 0)
    )
    status, body = call(source, "POST", "/v1/checkpoint", request, ctx=ctx)
    assert (
        status == 507 and f"checkpoint mig1-app by the kubelet: {GIB} bytes do not fit in {tmp_path}" in body["error"]
    )
    monkeypatch.setattr(
        diskspace, "usage", lambda directory: diskspace.Usage(GIB if directory != tmp_path else 10 * GIB, 0)
    )
    status, body = call(source, "POST", "/v1/checkpoint", request, ctx=ctx)
    assert status == 507 and "archive mig1-app" in body["error"]
    source.store.max_bytes = GIB - 1
    status, body = call(source, "POST", "/v1/checkpoint", request, ctx=ctx)
    assert status == 413 and "the expected checkpoint" in body["error"]
    assert kubelet.calls == []
    status, body = call(source, "POST", "/v1/checkpoint", {**request, "expectedBytes": "1"}, ctx=ctx)
    assert status == 400 and "expectedBytes" in body["error"]


def test_a_checkpoint_larger_than_the_maximum_is_not_kept(
    helpers: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext, tmp_path: Path
) -> None:
    """No target would take it, and it holds process memory."""
    source, _ = helpers
    (tmp_path / "kubelet").mkdir()
    source.helper.kubelet = FakeKubelet(tmp_path / "kubelet")  # type: ignore[assignment]
    source.store.max_bytes = 1000
    request = {"namespace": "default", "pod": "web", "container": "app", "id": "mig1-app"}
    status, body = call(source, "POST", "/v1/checkpoint", request, ctx=ctx)
    assert status == 413 and "the checkpoint of" in body["error"]
    assert list((tmp_path / "kubelet").iterdir()) == [] and list(source.store.root.iterdir()) == []


def test_a_pack_is_bounded_and_needs_room(
    helpers: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, _ = helpers
    directory = empty_dir(source, SOURCE_UID, "data")
    fill_volume(directory)
    frozen_container(source, SOURCE_UID)
    (directory / "big").write_bytes(DATA)
    request = {"podUID": SOURCE_UID, "volume": "data", "id": "mig1-vol-data"}
    with monkeypatch.context() as patched:  # undoes only its own patch, not conftest's
        patched.setattr(diskspace, "usage", free(GIB + len(DATA)))
        status, body = call(source, "POST", "/v1/volumes/pack", request, ctx=ctx)
    assert status == 507 and "archive mig1-vol-data" in body["error"]
    source.store.max_bytes = len(DATA)
    status, body = call(source, "POST", "/v1/volumes/pack", request, ctx=ctx)
    assert status == 413 and "estimated size" in body["error"]
    assert list(source.store.root.iterdir()) == []
    source.store.max_bytes = 2 * len(DATA)
    status, body = call(source, "POST", "/v1/volumes/pack", request, ctx=ctx)
    assert status == 200 and len(DATA) < body["bytes"] <= volumes.packed_size(directory)
