"""Who may call what, through real TLS servers: the operator's identity for control calls, a helper's identity
only for the transfer the operator granted it, and a send only to the helper of the node it names."""

from __future__ import annotations

import hashlib
import io
import ssl
from pathlib import Path

import pytest
from nhcalls import call
from nhtestlib import RunningHelper, grant

from nodehelper.http import authz, routes
from nodehelper.identity import tlsconfig
from nodehelper.store.grants import Grants
from pmcontract import names
from pmcontract.names import DECODED_LENGTH_HEADER

DATA = b"process memory" * 1000
SHA = hashlib.sha256(DATA).hexdigest()
HEADERS = {"X-Content-Sha256": SHA, "Content-Encoding": "identity", DECODED_LENGTH_HEADER: str(len(DATA))}


@pytest.mark.parametrize("who", ["source", "target", "other"])
@pytest.mark.parametrize(
    "method, path, body",
    [
        ("POST", "/v1/checkpoint", {"id": "m-a", "namespace": "kube-system", "pod": "etcd", "container": "etcd"}),
        ("POST", "/v1/freeze", {"podUID": "abc"}),
        ("POST", "/v1/kill", {"podUID": "abc", "thaw": True}),
        ("POST", "/v1/send", {"id": "m-a", "target": "https://10.0.0.9:9443", "targetNode": "x"}),
        ("POST", "/v1/grants", {"id": "m-a", "peer": "source", "sha256": SHA, "bytes": 1}),
        ("DELETE", "/v1/migrations/m", None),
        ("GET", "/v1/pods/abc/memory", None),
    ],
)
def test_control_calls_answer_the_operator_only(
    helpers: tuple[RunningHelper, RunningHelper], pki: dict[str, Path], who: str, method: str, path: str, body: object
) -> None:
    _, target = helpers
    status, answer = call(target, method, path, body, ctx=tlsconfig.client_context(pki[who]))
    assert status == 403 and "control endpoints answer the operator only" in answer["error"], answer


def test_an_upload_needs_the_operators_grant_for_that_peer_sha256_and_size(
    helpers: tuple[RunningHelper, RunningHelper], pki: dict[str, Path], ctx: ssl.SSLContext
) -> None:
    _, target = helpers
    source_ctx = tlsconfig.client_context(pki["source"])

    def upload(client: ssl.SSLContext, headers: dict[str, str] = HEADERS) -> tuple[int, dict]:
        return call(target, "PUT", "/v1/archives/m-a", body=DATA, headers=headers, ctx=client)

    status, answer = upload(source_ctx)
    assert status == 403 and "no transfer of archive m-a was granted" in answer["error"]
    grant_body = {"id": "m-a", "peer": "source", "sha256": SHA, "bytes": len(DATA)}
    assert call(target, "POST", "/v1/grants", grant_body, ctx=ctx)[0] == 200
    assert upload(ctx)[0] == 403  # the operator itself does not upload
    status, answer = upload(tlsconfig.client_context(pki["other"]))
    assert status == 403 and "is not a node-helper" in answer["error"]
    status, answer = upload(source_ctx, {**HEADERS, "X-Content-Sha256": "0" * 64})
    assert status == 403 and "is not what was granted" in answer["error"]
    status, answer = upload(source_ctx, {k: v for k, v in HEADERS.items() if k != DECODED_LENGTH_HEADER} | {
        "Content-Encoding": "zstd"})  # fmt: skip
    assert status == 403, answer  # a size it does not announce cannot match the grant
    assert list(target.store.root.iterdir()) == []
    assert upload(source_ctx) == (200, {"bytes": len(DATA), "sha256": SHA})
    status, answer = upload(source_ctx)  # the grant was used up; the archive is write-once anyway
    assert status == 403
    grant(target, "m-a", DATA)
    assert upload(source_ctx)[0] == 409


def test_a_grant_for_another_node_lets_no_one_else_upload(
    helpers: tuple[RunningHelper, RunningHelper], pki: dict[str, Path]
) -> None:
    source, _ = helpers
    grant(source, "m-a", DATA, peer="worker-9")
    status, answer = call(source, "PUT", "/v1/archives/m-a", body=DATA, headers=HEADERS,
                          ctx=tlsconfig.client_context(pki["target"]))  # fmt: skip
    assert status == 403 and "granted to the helper of worker-9, not of target" in answer["error"]


def test_send_goes_only_to_the_helper_of_the_node_it_names(
    helpers: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext
) -> None:
    source, target = helpers
    source.store.receive("m-a", io.BytesIO(DATA))
    grant(target, "m-a", DATA)
    request = {"id": "m-a", "target": target.url, "targetNode": "worker-2"}
    status, answer = call(source, "POST", "/v1/send", request, ctx=ctx)
    assert status == 502 and "is not system:podmigration:node-helper:worker-2" in answer["error"], answer
    assert "its certificate names system:podmigration:node-helper:target" in answer["error"]
    assert list(target.store.root.iterdir()) == []
    assert call(source, "POST", "/v1/send", {**request, "targetNode": "target"}, ctx=ctx)[0] == 200


def test_an_image_is_exported_only_to_the_peer_granted_it(
    helpers: tuple[RunningHelper, RunningHelper], pki: dict[str, Path], ctx: ssl.SSLContext
) -> None:
    source, _ = helpers
    source.images.images = {"localhost/app:dev"}
    target_ctx = tlsconfig.client_context(pki["target"])
    path = "/v1/images/export?image=localhost%2Fapp%3Adev"
    assert call(source, "GET", path, ctx=target_ctx)[0] == 403
    assert call(source, "GET", path, ctx=ctx)[0] == 403
    assert call(source, "POST", "/v1/grants", {"image": "localhost/app:dev", "peer": "target"}, ctx=ctx)[0] == 200
    assert call(source, "GET", path, ctx=tlsconfig.client_context(pki["other"]))[0] == 403


def test_grants_expire_and_are_validated() -> None:
    now = [100.0]
    grants = Grants(clock=lambda: now[0])
    grants.add({"id": "m-a", "peer": "worker-2", "sha256": SHA, "bytes": 5, "expiresSeconds": 60})
    grants.check_archive("worker-2", "m-a", SHA, 5)
    now[0] += 61
    with pytest.raises(Exception, match="no transfer of archive m-a was granted"):
        grants.check_archive("worker-2", "m-a", SHA, 5)
    bad_grants = (
        {"peer": "worker-2"},
        {"id": "m-a", "image": "x", "peer": "w"},
        {"id": "m-a", "peer": "Bad Node"},
        {"id": "m-a", "peer": "w", "sha256": SHA},
        {"image": "x", "peer": "w", "expiresSeconds": 0},
    )
    for bad in bad_grants:
        with pytest.raises(Exception) as info:
            grants.add(bad)
        assert getattr(info.value, "status", None) == 400, bad


def test_caller_names() -> None:
    assert authz.Caller(names.OPERATOR_CN).is_operator
    assert authz.Caller(names.helper_cn("worker-1")).node == "worker-1"
    assert authz.Caller(names.HELPER_CN_PREFIX).node is None
    assert authz.Caller("podmigration-peer").node is None and not authz.Caller("").is_operator
    authz.authorize(authz.Caller(""), routes.resolve("GET", "/healthz")[0].access)
