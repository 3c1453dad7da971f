"""Archives are write-once, and what is built or unpacked is the archive the checkpoint recorded, byte for byte."""

from __future__ import annotations

import hashlib
import io
import os
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nhcalls import FakeKubelet, call
from nhtestlib import RunningHelper, grant
from nhvolumes import SOURCE_UID, TARGET_UID, empty_dir, frozen_container

DATA = os.urandom(3 << 20)
SHA = hashlib.sha256(DATA).hexdigest()


def test_a_second_upload_is_refused_and_the_first_kept(
    helpers: tuple[RunningHelper, RunningHelper], peer_ctx: ssl.SSLContext
) -> None:
    _, target = helpers
    target.store.receive("mig1-app", io.BytesIO(DATA))
    forged = b"forged memory"
    grant(target, "mig1-app", forged)  # even a granted upload cannot replace an archive
    headers = {"X-Content-Sha256": hashlib.sha256(forged).hexdigest(), "Content-Encoding": "identity"}
    status, body = call(target, "PUT", "/v1/archives/mig1-app", body=forged, headers=headers, ctx=peer_ctx)
    assert status == 409 and "archive mig1-app already exists" in body["error"]
    assert target.store.path("mig1-app").read_bytes() == DATA and target.store.info("mig1-app").sha256 == SHA


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_send_to_a_target_that_holds_the_archive_is_a_conflict(
    helpers: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext, compression: str
) -> None:
    """The target refuses before it reads the body (32 MiB here); the source passes its 409 on."""
    source, target = helpers
    source.store.receive("mig1-app", io.BytesIO(os.urandom(32 << 20)))
    target.store.receive("mig1-app", io.BytesIO(DATA))
    grant(target, "mig1-app", sha256=source.store.info("mig1-app").sha256, size=32 << 20)
    request = {"id": "mig1-app", "target": target.url, "targetNode": "target", "compression": compression}
    status, body = call(source, "POST", "/v1/send", request, ctx=ctx)
    assert status == 409 and "answered 409" in body["error"] and "already exists" in body["error"], body
    assert target.store.path("mig1-app").read_bytes() == DATA


def test_a_checkpoint_of_an_existing_id_is_refused_before_the_kubelet_dumps(
    helpers: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext, tmp_path: Path
) -> None:
    source, _ = helpers
    kubelet = FakeKubelet(tmp_path)
    source.helper.kubelet = kubelet  # type: ignore[assignment]
    source.store.receive("mig1-app", io.BytesIO(DATA))
    request = {"namespace": "default", "pod": "web", "container": "app", "id": "mig1-app"}
    status, body = call(source, "POST", "/v1/checkpoint", request, ctx=ctx)
    assert status == 409 and "already exists" in body["error"]
    assert kubelet.calls == [] and source.store.path("mig1-app").read_bytes() == DATA


def test_a_pack_of_an_existing_id_is_refused(helpers: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext) -> None:
    source, _ = helpers
    (empty_dir(source, SOURCE_UID, "data") / "file").write_text("new")
    frozen_container(source, SOURCE_UID)
    source.store.receive("mig1-vol-data", io.BytesIO(DATA))
    request = {"podUID": SOURCE_UID, "volume": "data", "id": "mig1-vol-data"}
    status, body = call(source, "POST", "/v1/volumes/pack", request, ctx=ctx)
    assert status == 409 and "exists" in body["error"], body
    assert source.store.path("mig1-vol-data").read_bytes() == DATA


@pytest.fixture(params=["image", "archive"])
def builders(
    request: pytest.FixtureRequest, tmp_path: Path, pki: dict[str, Path]
) -> Iterator[tuple[RunningHelper, RunningHelper]]:
    """A source and a target helper; the target restores from checkpoint images, or straight from archives."""
    runtime = tmp_path / "runtime" if request.param == "archive" else None
    if runtime:
        runtime.mkdir()
    source, target = (
        RunningHelper(tmp_path / "source", pki["source"]),
        RunningHelper(tmp_path / "target", pki["target"], runtime_dir=runtime),
    )
    yield source, target
    source.stop()
    target.stop()


def build(target: RunningHelper, ctx: ssl.SSLContext, **fields: Any) -> tuple[int, dict[str, Any]]:
    request = {"id": "mig1-app", "container": "app", "sha256": SHA, "bytes": len(DATA), **fields}
    return call(target, "POST", "/v1/images/checkpoint", {k: v for k, v in request.items() if v is not None}, ctx=ctx)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"sha256": None}, "missing field 'sha256'"),
        ({"bytes": None}, "missing field 'bytes'"),
        ({"sha256": "abc"}, "invalid sha256"),
        ({"bytes": -1}, "invalid bytes"),
        ({"bytes": "3"}, "invalid bytes"),
        ({"bytes": True}, "invalid bytes"),
    ],
)
def test_the_build_requires_the_recorded_sha256_and_size(
    builders: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext, fields: dict[str, Any], message: str
) -> None:
    _, target = builders
    target.store.receive("mig1-app", io.BytesIO(DATA))
    status, body = build(target, ctx, **fields)
    assert status == 400 and message in body["error"]
    assert target.images.built == []


def test_the_build_refuses_an_archive_that_is_not_the_recorded_one(
    builders: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext
) -> None:
    _, target = builders
    assert build(target, ctx)[0] == 404
    target.store.receive("mig1-app", io.BytesIO(DATA))
    status, body = build(target, ctx, bytes=len(DATA) + 1)
    assert status == 422 and f"{len(DATA)} bytes on disk, but {len(DATA) + 1} were recorded" in body["error"]
    status, body = build(target, ctx, sha256="0" * 64)
    assert status == 422 and f"on disk does not match sha256 {'0' * 64} recorded at the checkpoint" in body["error"]
    assert target.images.built == []


def test_an_archive_changed_on_disk_after_the_transfer_is_not_built(
    builders: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext
) -> None:
    source, target = builders
    source.store.receive("mig1-app", io.BytesIO(DATA))
    grant(target, "mig1-app", DATA)
    request = {"id": "mig1-app", "target": target.url, "targetNode": "target"}
    status, sent = call(source, "POST", "/v1/send", request, ctx=ctx)
    assert status == 200 and sent["sha256"] == SHA
    path = target.store.path("mig1-app")
    changed = bytearray(path.read_bytes())
    changed[1000] ^= 0xFF  # same size; the digest record kept at the transfer is left as it was
    path.write_bytes(bytes(changed))
    status, body = build(target, ctx)
    assert status == 422 and "on disk does not match" in body["error"] and "recorded at the checkpoint" in body["error"]
    assert target.images.built == []
    path.write_bytes(DATA)
    assert build(target, ctx) == (200, {"image": "localhost/podmigration-checkpoint/mig1-app:latest"})


@pytest.mark.parametrize("fields, status", [({"sha256": None}, 400), ({"bytes": 1}, 422), ({"sha256": "0" * 64}, 422)])
def test_unpack_requires_and_checks_the_recorded_sha256_and_size(
    helpers: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext, fields: dict[str, Any], status: int
) -> None:
    _, target = helpers
    got = empty_dir(target, TARGET_UID, "data")
    info = target.store.receive("mig1-vol-data", io.BytesIO(DATA))
    request = {"podUID": TARGET_UID, "volume": "data", "id": "mig1-vol-data", "sha256": info.sha256,
               "bytes": info.bytes, **fields}  # fmt: skip
    answer = call(target, "POST", "/v1/volumes/unpack", {k: v for k, v in request.items() if v is not None}, ctx=ctx)
    assert answer[0] == status, answer
    assert list(got.iterdir()) == []
