"""The webhooks answer the API server alone when a client CA is configured: a real kopf webhook server on a local
port, real TLS handshakes. A caller without a certificate of that CA never gets a review read; one whose verified
certificate has another CN (a kubelet's: the cluster CA signs those too) is refused before any handler runs."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import ssl
import urllib.parse
from pathlib import Path
from typing import Any

import kopf
import pytest
from pmfakes import CONFIG
from pmpki import issue, make_ca

from podmigration.webhooks import server as webhook_server

REVIEW = {
    "apiVersion": "admission.k8s.io/v1",
    "kind": "AdmissionReview",
    "request": {"uid": "u-1", "namespace": "default", "object": {"metadata": {"name": "counter"}}},
}
ADMISSION_CN = "kube-apiserver-admission"


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Any]:
    """The webhooks' serving certificate, the CA of the API server's client certificate, and client certificates:
    the API server's, a node's from the same CA, and one with the API server's name from another CA."""
    cluster = make_ca(tmp_path / "cluster-ca", "cluster-ca")
    serving = make_ca(tmp_path / "webhook-ca", "webhook-ca")
    issue(serving, tmp_path / "serving", "podmigration-operator.podmigration-system.svc", server=True)
    return {
        "serving": tmp_path / "serving",
        "client_ca": str(tmp_path / "cluster-ca" / "tls.crt"),
        "apiserver": issue(cluster, tmp_path / "apiserver", ADMISSION_CN),
        "kubelet": issue(cluster, tmp_path / "kubelet", "system:node:worker-1"),
        "foreign": issue(make_ca(tmp_path / "other-ca", "other-ca"), tmp_path / "foreign", ADMISSION_CN),
    }


def configured(pki: dict[str, Any], client_ca: str = "") -> kopf.WebhookServer:
    config = CONFIG.__class__(
        **{
            **CONFIG.__dict__,
            "webhook_tls_dir": str(pki["serving"]),
            "webhook_client_ca": client_ca,
            "webhook_client_names": (ADMISSION_CN,) if client_ca else (),
        }
    )
    server = webhook_server.webhook_server(config)
    server.addr, server.port = "127.0.0.1", None  # a free local port instead of the chart's
    return server


def post(port: int, client_cert: tuple[Path, Path] | None) -> tuple[int, dict[str, Any]]:
    """One review posted as any client would: the server's certificate is not checked, ``client_cert`` offered."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    if client_cert:
        context.load_cert_chain(*client_cert)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        conn.request("POST", "/eviction", json.dumps(REVIEW), {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def serve(server: kopf.WebhookServer, *clients: tuple[Path, Path] | None) -> tuple[list[Any], list[str]]:
    """Each client's answer (or the exception it got) and the webhooks whose review reached kopf."""
    reached: list[str] = []

    async def review_fn(request: Any, *, webhook: str | None = None, **_: Any) -> Any:
        reached.append(webhook or "")
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"allowed": True}}

    async def main() -> list[Any]:
        configs = server(review_fn)
        port = urllib.parse.urlsplit((await anext(configs))["url"] or "").port or 0
        answers: list[Any] = []
        try:
            for client in clients:
                try:
                    answers.append(await asyncio.to_thread(post, port, client))
                except (ssl.SSLError, OSError, http.client.HTTPException) as exc:
                    answers.append(exc)
        finally:
            await configs.aclose()
        return answers

    return asyncio.run(main()), reached


def test_without_a_client_ca_every_caller_is_answered_and_the_operator_warns(pki, caplog):
    with caplog.at_level(logging.WARNING):
        server = configured(pki)
    assert type(server) is kopf.WebhookServer and "accept any caller" in caplog.text
    answers, reached = serve(server, None)
    assert answers == [
        (200, {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"allowed": True}})
    ]
    assert reached == ["eviction"]


def test_a_caller_without_a_certificate_of_the_client_ca_never_reaches_a_handler(pki):
    answers, reached = serve(configured(pki, pki["client_ca"]), None, pki["foreign"])
    assert all(isinstance(answer, Exception) for answer in answers), answers  # refused in the TLS handshake
    assert reached == []


def test_a_verified_certificate_with_another_name_is_refused_before_any_handler(pki):
    """A node's kubelet certificate (same CA as the API server's) gets a refusal that names nothing else."""
    answers, reached = serve(configured(pki, pki["client_ca"]), pki["kubelet"])
    [(status, review)] = answers
    assert status == 200 and review["response"] == {
        "uid": "u-1",
        "allowed": False,
        "status": {
            "code": 403,
            "message": "the admission webhooks answer only the API server, not 'system:node:worker-1'",
        },
    }
    assert reached == []


def test_the_api_servers_admission_certificate_is_answered(pki):
    answers, reached = serve(configured(pki, pki["client_ca"]), pki["apiserver"])
    assert answers == [
        (200, {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"allowed": True}})
    ]
    assert reached == ["eviction"]


def test_the_operator_serves_its_webhooks_when_their_certificate_is_mounted(monkeypatch, tmp_path):
    monkeypatch.setenv("PM_WEBHOOK_TLS_DIR", str(tmp_path))
    monkeypatch.setenv("PM_WEBHOOK_CLIENT_CA", str(tmp_path / "client-ca.crt"))
    monkeypatch.setenv("PM_WEBHOOK_CLIENT_NAMES", "kube-apiserver-admission, other")
    settings = kopf.OperatorSettings()
    webhook_server.serve(settings=settings)
    server = settings.admission.server
    assert isinstance(server, webhook_server.ApiServerOnly) and server.port == webhook_server.WEBHOOK_PORT
    assert (server.certfile, server.verify_mode) == (str(tmp_path / "tls.crt"), ssl.CERT_REQUIRED)
    assert server.allowed_names == {"kube-apiserver-admission", "other"}


def test_a_client_ca_without_a_name_to_allow_stops_the_operator(monkeypatch, tmp_path):
    monkeypatch.setenv("PM_WEBHOOK_TLS_DIR", str(tmp_path))
    monkeypatch.setenv("PM_WEBHOOK_CLIENT_CA", str(tmp_path / "client-ca.crt"))
    monkeypatch.setenv("PM_WEBHOOK_CLIENT_NAMES", " , ")
    with pytest.raises(SystemExit, match="PM_WEBHOOK_CLIENT_NAMES"):
        webhook_server.serve(settings=kopf.OperatorSettings())
