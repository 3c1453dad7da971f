"""The helper's own identity: a key made in memory, a certificate naming this node that the operator signs through
a Kubernetes CertificateSigningRequest, renewed at 2/3 of its life while the server keeps serving.

The operator signs only for the helper pod that runs on the node the certificate names (it checks the pod bound to
the service-account token that created the request), so root on one node gets that node's identity, nothing more.
The key never lands on a disk: it passes through a tmpfs directory only while ssl loads it.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from nodehelper.identity import tlsconfig
from pmcontract.names import helper_cn

log = logging.getLogger("nodehelper")

USAGES = ["digital signature", "client auth", "server auth"]
#: After a failed renewal, the next attempt comes this much later (the certificate is still valid for a while).
RETRY_SECONDS = 30.0
PEM_END = b"-----END CERTIFICATE-----"

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def new_key_and_request(node: str) -> tuple[bytes, bytes]:
    """(private key PEM, CSR PEM) for the helper of ``node``."""
    key = ec.generate_private_key(ec.SECP256R1())
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, helper_cn(node))]))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, request.public_bytes(serialization.Encoding.PEM)


def split_chain(pem: bytes) -> list[bytes]:
    return [part.strip() + b"\n" + PEM_END + b"\n" for part in pem.split(PEM_END) if part.strip()]


class CsrIssuer:
    """Asks the API server for a certificate: creates the CSR with the pod's service-account token (read anew each
    time: the kubelet rotates it) and waits until the operator signed (or denied) it."""

    PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"

    def __init__(self, node: str, signer: str, validity_seconds: int, timeout: float,
                 service_account: Path = SERVICE_ACCOUNT_DIR, poll: float = 1.0) -> None:  # fmt: skip
        self.node = node
        self.signer = signer
        self.validity_seconds = validity_seconds
        self.timeout = timeout
        self.service_account = service_account
        self.poll = poll

    def _api(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
        port = int(os.environ.get("KUBERNETES_SERVICE_PORT", "443"))
        if not host:
            raise RuntimeError("KUBERNETES_SERVICE_HOST is not set: not running in a pod?")
        ctx = ssl.create_default_context(cafile=str(self.service_account / "ca.crt"))
        token = (self.service_account / "token").read_text().strip()
        conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=30)
        try:
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            data = None
            if body is not None:
                data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            answer = json.loads(resp.read() or b"{}")
        finally:
            conn.close()
        if resp.status >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {answer.get('message', answer)}")
        return answer

    def __call__(self) -> tuple[bytes, bytes]:
        """(key PEM, certificate chain PEM: the leaf then the CA)."""
        key_pem, request_pem = new_key_and_request(self.node)
        body = {
            "apiVersion": "certificates.k8s.io/v1",
            "kind": "CertificateSigningRequest",
            "metadata": {"generateName": f"podmigration-node-helper-{self.node}-"},
            "spec": {
                "request": base64.b64encode(request_pem).decode(),
                "signerName": self.signer,
                "expirationSeconds": self.validity_seconds,
                "usages": USAGES,
            },
        }
        name = self._api("POST", self.PATH, body)["metadata"]["name"]
        log.info("requested a certificate for node %s: CertificateSigningRequest %s", self.node, name)
        deadline = time.monotonic() + self.timeout
        while True:
            status = self._api("GET", f"{self.PATH}/{name}").get("status") or {}
            for condition in status.get("conditions") or []:
                if condition.get("type") in ("Denied", "Failed") and condition.get("status") == "True":
                    raise RuntimeError(
                        f"CertificateSigningRequest {name} {condition['type']}: {condition.get('message')}"
                    )
            if status.get("certificate"):
                return key_pem, base64.b64decode(status["certificate"])
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"CertificateSigningRequest {name} not signed within {self.timeout:.0f} s"
                    " (is the operator running?)"
                )
            time.sleep(self.poll)


class NodeIdentity:
    """The current certificate as TLS contexts (server and client); ``renew`` swaps them, and listeners registered
    with ``on_renew`` move new connections onto them (connections already open keep theirs)."""

    def __init__(self, issue: Callable[[], tuple[bytes, bytes]], scratch: Path) -> None:
        self._issue = issue
        self._scratch = scratch
        self._cas: list[bytes] = []
        self._listeners: list[Callable[[NodeIdentity], None]] = []
        self.server_context: ssl.SSLContext | None = None
        self.client_context: ssl.SSLContext | None = None
        self.not_before = self.not_after = datetime.now(UTC)

    def on_renew(self, listener: Callable[[NodeIdentity], None]) -> None:
        self._listeners.append(listener)

    def renew(self) -> None:
        key_pem, chain_pem = self._issue()
        chain = split_chain(chain_pem)
        if len(chain) < 2:
            raise RuntimeError("the signed certificate came without its CA")
        leaf = x509.load_pem_x509_certificate(chain[0])
        # Trust the CA that signed this certificate and the one before (during a CA rotation peers renew one by
        # one), pinned: never a root above it, which may sign certificates with a podmigration CN for others too.
        self._cas = list(dict.fromkeys([chain[1]] + self._cas))[:4]
        self._scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self._scratch))
        try:
            for name, data in ((tlsconfig.CERT_FILE, chain_pem), (tlsconfig.KEY_FILE, key_pem),
                               (tlsconfig.CA_FILE, b"".join(self._cas))):  # fmt: skip
                path = tmp / name
                path.touch(mode=0o600)
                path.write_bytes(data)
            self.server_context = tlsconfig.server_context(tmp)
            self.client_context = tlsconfig.client_context(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.not_before, self.not_after = leaf.not_valid_before_utc, leaf.not_valid_after_utc
        log.info("identity %s, serial %x, valid until %s", _subject_cn(leaf), leaf.serial_number, self.not_after)
        for listener in self._listeners:
            listener(self)

    def renew_at(self) -> datetime:
        return self.not_before + (self.not_after - self.not_before) * 2 / 3

    def keep_renewed(self, stop: threading.Event) -> None:
        """Renews at 2/3 of the validity; a failure is retried until the certificate runs out."""
        wait = (self.renew_at() - datetime.now(UTC)).total_seconds()
        while not stop.wait(max(1.0, wait)):
            try:
                self.renew()
                wait = (self.renew_at() - datetime.now(UTC)).total_seconds()
            except Exception as exc:  # the API server or the operator may be away for a while: try again
                left = (self.not_after - datetime.now(UTC)).total_seconds()
                log.error("renewing the certificate failed (%.0f s of validity left): %s", left, exc)
                wait = RETRY_SECONDS


def _subject_cn(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else "?"
