"""End-to-end through real TLS servers on 127.0.0.1: two helpers, mutual TLS, streaming transfer."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import ssl
import tarfile
from pathlib import Path

import pytest
from nhcalls import FakeKubelet, call
from nhtestlib import RunningHelper, grant

from nodehelper.errors import UpstreamError
from nodehelper.identity import tlsconfig
from pmcontract import names
from pmcontract.names import DECODED_LENGTH_HEADER

# Compressible but not trivial: text with random bytes mixed in, several MiB.
DATA = os.urandom(64) + b"".join(b"line %d of the process memory\n" % i for i in range(150_000))


def test_healthz_and_unknown_routes(helpers: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext) -> None:
    source, _ = helpers
    assert call(source, "GET", "/healthz", ctx=ctx) == (200, {"ok": True, "node": "source"})
    status, body = call(source, "GET", "/v1/nope", ctx=ctx)
    assert status == 404 and "no such endpoint" in body["error"]
    status, body = call(source, "GET", "/v1/send", ctx=ctx)
    assert status == 405
    status, body = call(source, "POST", "/v1/send", body=b"{not json", ctx=ctx)
    assert status == 400 and "invalid JSON" in body["error"]


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_send_streams_archive_to_target(
    helpers: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext, compression: str
) -> None:
    source, target = helpers
    source.store.receive("mig1-app", io.BytesIO(DATA))
    grant(target, "mig1-app", DATA)
    request = {"id": "mig1-app", "target": target.url, "targetNode": "target", "compression": compression}
    status, body = call(source, "POST", "/v1/send", request, ctx=ctx)
    assert status == 200, body
    sha = hashlib.sha256(DATA).hexdigest()
    assert body["bytes"] == len(DATA) and body["sha256"] == sha
    if compression == "zstd":
        assert body["wireBytes"] < len(DATA) / 4
    else:
        assert body["wireBytes"] == len(DATA)
    assert target.store.path("mig1-app").read_bytes() == DATA
    assert target.store.info("mig1-app").sha256 == sha


def test_put_with_wrong_sha256_is_refused_and_deleted(
    helpers: tuple[RunningHelper, RunningHelper], peer_ctx: ssl.SSLContext
) -> None:
    _, target = helpers
    grant(target, "mig1-app", sha256="ab" * 32, size=6)
    headers = {"X-Content-Sha256": "ab" * 32, "Content-Encoding": "identity", DECODED_LENGTH_HEADER: "6"}
    status, body = call(
        target, "PUT", "/v1/archives/mig1-app", body=iter([b"abc", b"def"]), headers=headers, ctx=peer_ctx
    )
    assert status == 422 and "does not match" in body["error"]
    assert list(target.store.root.iterdir()) == []


def test_put_rejects_bad_ids_and_missing_checksum(
    helpers: tuple[RunningHelper, RunningHelper], peer_ctx: ssl.SSLContext
) -> None:
    _, target = helpers
    status, body = call(
        target, "PUT", "/v1/archives/..%2F..%2Fetc", body=b"x", headers={"X-Content-Sha256": "0" * 64}, ctx=peer_ctx
    )
    assert status == 400 and "invalid id" in body["error"]
    status, body = call(target, "PUT", "/v1/archives/mig1-app", body=b"x", ctx=peer_ctx)
    assert status == 400 and "X-Content-Sha256" in body["error"]
    assert list(target.store.root.iterdir()) == []


def test_send_of_missing_archive_and_bad_target(
    helpers: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext
) -> None:
    source, target = helpers
    request = {"id": "mig1-app", "target": target.url, "targetNode": "target"}
    assert call(source, "POST", "/v1/send", request, ctx=ctx)[0] == 404
    source.store.receive("mig1-app", io.BytesIO(b"x"))
    status, body = call(source, "POST", "/v1/send", {**request, "target": "https://127.0.0.1:1/x"}, ctx=ctx)
    assert status == 400 and "HOST:PORT" in body["error"]
    status, body = call(source, "POST", "/v1/send", {"id": "mig1-app", "target": target.url}, ctx=ctx)
    assert status == 400 and "targetNode" in body["error"]


def test_mutual_tls_refuses_clients_without_a_valid_cert(
    helpers: tuple[RunningHelper, RunningHelper], pki: dict[str, Path]
) -> None:
    source, _ = helpers
    rogue = tlsconfig.client_context(pki["rogue"])
    rogue.load_verify_locations(pki["node"] / "ca.crt")  # rogue trusts the server; the server must not trust rogue
    with pytest.raises((ssl.SSLError, ConnectionError)):
        call(source, "GET", "/healthz", ctx=rogue)
    # Without a certificate: the readiness probe's /healthz, and nothing else.
    no_cert = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    no_cert.load_verify_locations(pki["node"] / "ca.crt")
    no_cert.check_hostname = False
    assert call(source, "GET", "/healthz", ctx=no_cert)[0] == 200
    status, body = call(source, "POST", "/v1/freeze", {"podUID": "abc"}, ctx=no_cert)
    assert status == 403 and "without a certificate" in body["error"]


def test_client_refuses_a_server_from_another_ca(
    helpers: tuple[RunningHelper, RunningHelper], pki: dict[str, Path]
) -> None:
    source, _ = helpers
    with pytest.raises(ssl.SSLCertVerificationError):
        call(source, "GET", "/healthz", ctx=tlsconfig.client_context(pki["rogue"]))


def test_send_to_peer_that_refuses_reports_its_error(
    helpers: tuple[RunningHelper, RunningHelper], pki: dict[str, Path]
) -> None:
    from nodehelper.peers.client import send_file

    _, target = helpers
    grant(target, "m-a", sha256="0" * 64, size=len(DATA))
    with pytest.raises(UpstreamError, match="answered 422"):
        send_file(
            io.BytesIO(DATA), len(DATA), "0" * 64, ("127.0.0.1", target.port), "/v1/archives/m-a",
            compression="zstd", ctx=tlsconfig.client_context(pki["source"]), timeout=10,
            identity=names.helper_cn("target"),
        )  # fmt: skip


def test_checkpoint_moves_kubelet_archive_and_reports_stats(
    helpers: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext, tmp_path: Path
) -> None:
    source, _ = helpers
    (tmp_path / "kubelet").mkdir()
    kubelet = FakeKubelet(tmp_path / "kubelet")
    kubelet.progress = (source.helper.progress, "mig1-app")
    source.helper.kubelet = kubelet  # type: ignore[assignment]
    request = {"namespace": "default", "pod": "web", "container": "app", "id": "mig1-app", "timeoutSeconds": 30}
    status, body = call(source, "POST", "/v1/checkpoint", request, ctx=ctx)
    assert status == 200, body
    # While the kubelet's call ran, the progress of the step was the archive written so far.
    assert [(p["step"], p["bytesDone"], p["bytesExpected"]) for p in kubelet.seen] == [("checkpoint", body["bytes"], 0)]
    assert kubelet.calls == [("default", "web", "app", 30)]
    assert list((tmp_path / "kubelet").iterdir()) == []  # the kubelet's copy is gone
    archive = source.store.path("mig1-app")
    assert (
        body["bytes"] == archive.stat().st_size and body["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    )
    assert body["stats"]["frozen_time"] == 56789 and body["stats"]["pages_written"] == 2**33 + 5
    assert {"path": "/mem/blob", "size": 12345} in body["openFiles"] and "openFilesError" not in body
    assert tarfile.is_tarfile(archive)


def test_checkpoint_without_readable_open_files_still_succeeds(
    helpers: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext, tmp_path: Path
) -> None:
    source, _ = helpers
    (tmp_path / "kubelet").mkdir()
    source.helper.kubelet = FakeKubelet(tmp_path / "kubelet", files_img=b"garbage")  # type: ignore[assignment]
    request = {"namespace": "default", "pod": "web", "container": "app", "id": "mig1-app"}
    status, body = call(source, "POST", "/v1/checkpoint", request, ctx=ctx)
    assert status == 200, body
    assert body["openFiles"] == [] and "files.img" in body["openFilesError"]
    assert body["stats"]["frozen_time"] == 56789


def test_freeze_and_thaw_through_the_api(helpers: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext) -> None:
    source, _ = helpers
    uid = "3f2a9c1e-0b7d-4c1a-9e2f-1234567890ab"
    ctr = source.helper.freezer.cgroup_root / "freezer/kubepods" / f"pod{uid}" / "abc"
    ctr.mkdir(parents=True)
    (ctr / "freezer.state").write_text("THAWED")
    assert call(source, "POST", "/v1/freeze", {"podUID": uid}, ctx=ctx) == (200, {"frozen": [str(ctr)]})
    assert (ctr / "freezer.state").read_text() == "FROZEN"
    assert call(source, "POST", "/v1/thaw", {"podUID": uid}, ctx=ctx) == (200, {"frozen": [], "thawed": [str(ctr)]})
    status, body = call(source, "POST", "/v1/freeze", {"podUID": "../x"}, ctx=ctx)
    assert status == 400


def test_delete_migration_removes_archives_and_images(
    helpers: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext
) -> None:
    _, target = helpers
    target.store.receive("mig1-app", io.BytesIO(b"x"))
    target.store.receive("mig2-app", io.BytesIO(b"y"))
    busy = "localhost/podmigration-checkpoint/mig1-side:latest"
    target.images.images = {
        "localhost/podmigration-checkpoint/mig1-app:latest",
        busy,
        "localhost/podmigration-checkpoint/mig2-app:latest",
    }
    target.images.in_use = {busy}
    status, body = call(target, "DELETE", "/v1/migrations/mig1", ctx=ctx)
    assert status == 200
    assert body["deleted"] == ["mig1-app", "localhost/podmigration-checkpoint/mig1-app:latest"]
    assert [k["image"] for k in body["kept"]] == [busy] and "in use" in body["kept"][0]["reason"]
    assert target.store.info("mig2-app").bytes == 1
    assert call(target, "DELETE", "/v1/migrations/mig1", ctx=ctx)[1]["deleted"] == []
    assert call(target, "DELETE", "/v1/migrations/MIG", ctx=ctx)[0] == 400


def test_ensure_copies_missing_images_from_the_source(
    helpers: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext
) -> None:
    source, target = helpers
    source.images.images = {"example.org/library/busybox:1.36", "localhost/app:dev"}
    target.images.images = {"example.org/library/busybox:1.36"}
    request = {"images": ["example.org/library/busybox:1.36", "localhost/app:dev"], "source": source.url,
               "sourceNode": "source"}  # fmt: skip
    assert call(source, "POST", "/v1/grants", {"image": "localhost/app:dev", "peer": "target"}, ctx=ctx)[0] == 200
    status, body = call(target, "POST", "/v1/images/ensure", request, ctx=ctx)
    assert status == 200, body
    assert body == {"present": ["example.org/library/busybox:1.36"], "copied": ["localhost/app:dev"]}
    assert target.images.loaded == ["localhost/app:dev"]
    assert list((target.helper.scratch_dir).iterdir()) == [] and list(source.helper.scratch_dir.iterdir()) == []


def test_ensure_reports_what_is_missing_everywhere(
    helpers: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext, peer_ctx: ssl.SSLContext
) -> None:
    source, target = helpers
    source.helper.grants.add({"image": "localhost/gone:1", "peer": "target"})
    request = {"images": ["localhost/gone:1"], "source": source.url, "sourceNode": "source"}
    status, body = call(target, "POST", "/v1/images/ensure", request, ctx=ctx)
    assert status == 502 and "answered 404" in body["error"] and "localhost/gone:1" in body["error"]
    status, body = call(target, "POST", "/v1/images/ensure", {"images": ["localhost/gone:1"]}, ctx=ctx)
    assert status == 400 and "no source" in body["error"]
    status, body = call(target, "GET", "/v1/images/export?image=--help", ctx=peer_ctx)
    assert status == 400


def test_request_log_says_what_happened(
    helpers: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    source, _ = helpers
    caplog.set_level(logging.INFO, logger="nodehelper")
    call(source, "POST", "/v1/freeze", {"podUID": "abc"}, ctx=ctx)
    lines = [r.getMessage() for r in caplog.records if "/v1/freeze" in r.getMessage()]
    assert len(lines) == 1
    assert "POST /v1/freeze -> 404" in lines[0] and f"client {names.OPERATOR_CN}" in lines[0]
    assert "no container cgroups of pod abc" in lines[0]


def test_chunked_json_body_split_over_chunks(helpers: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext) -> None:
    source, _ = helpers
    status, body = call(source, "POST", "/v1/freeze", body=iter([b'{"podUID":', b' "abc"', b"}"]), ctx=ctx)
    assert status == 404 and "no container cgroups of pod abc" in body["error"]
    too_big = iter([b'{"podUID": "', b"a" * (1 << 20), b'"}'])
    status, body = call(source, "POST", "/v1/freeze", body=too_big, ctx=ctx)
    assert status == 400 and "larger than" in body["error"]


def test_a_checkpoint_image_asked_for_again_is_kept_or_rebuilt_by_its_layer(
    helpers: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext
) -> None:
    _, target = helpers
    info = target.store.receive("mig1-app", io.BytesIO(b"x"))
    image = "localhost/podmigration-checkpoint/mig1-app:latest"
    request = {"id": "mig1-app", "container": "app", "sha256": info.sha256, "bytes": info.bytes}
    assert call(target, "POST", "/v1/images/checkpoint", request, ctx=ctx) == (200, {"image": image})
    # Another operator replica, or one restarted before it recorded the image, asks again: the image that holds this
    # archive stays (a replacement may be starting from it).
    assert call(target, "POST", "/v1/images/checkpoint", request, ctx=ctx) == (200, {"image": image, "reused": True})
    assert target.images.built == [("app", image)] and target.images.removed == []
    # An image of that name with another layer is removed before the build, so no untagged copy escapes cleanup.
    target.images.layers[image] = "0" * 64
    assert call(target, "POST", "/v1/images/checkpoint", request, ctx=ctx) == (200, {"image": image})
    assert target.images.built == [("app", image), ("app", image)]
    assert target.images.removed == [image] and target.images.dangling == []
