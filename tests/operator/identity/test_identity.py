"""Identities: which CertificateSigningRequests the operator signs (only a helper pod's, for its own node), what it
signs, and the operator's own certificate with its renewal."""

from __future__ import annotations

import base64
import datetime
import os
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pmpki import make_ca

from nodehelper.identity import NodeIdentity, new_key_and_request
from pmcontract.names import common_name
from podmigration.api import OPERATOR_CN, helper_cn
from podmigration.identity.ca import CertificateAuthority
from podmigration.identity.csrcheck import HelperPods, decide
from podmigration.identity.own import OperatorIdentity
from podmigration.identity.signer import HelperSigner

HELPERS = HelperPods("podmigration-system", "podmigration-node-helper", "podmigration-node-helper")
SIGNER = "podmigration.dev/node-helper"


def helper_pod(node: str = "worker-1", uid: str = "uid-1", **overrides: Any) -> dict[str, Any]:
    pod = {
        "metadata": {
            "name": "podmigration-node-helper-abcde",
            "namespace": HELPERS.namespace,
            "uid": uid,
            "ownerReferences": [{"kind": "DaemonSet", "name": HELPERS.daemonset, "controller": True}],
        },
        "spec": {"nodeName": node, "serviceAccountName": HELPERS.service_account},
    }
    for key, value in overrides.items():
        section, field = key.split("__")
        pod[section][field] = value
    return pod


def csr(
    cn_node: str = "worker-1", *, username: str = HELPERS.username, extra: dict | None = None, name: str = "req-1"
) -> dict[str, Any]:
    _, request = new_key_and_request(cn_node)
    if extra is None:
        extra = {
            "authentication.kubernetes.io/pod-name": ["podmigration-node-helper-abcde"],
            "authentication.kubernetes.io/pod-uid": ["uid-1"],
            "authentication.kubernetes.io/node-name": ["worker-1"],
        }
    return {
        "metadata": {"name": name},
        "spec": {
            "request": base64.b64encode(request).decode(),
            "signerName": SIGNER,
            "username": username,
            "extra": extra,
            "expirationSeconds": 3600,
        },
        "status": {},
    }


def reader(pod: dict | None):
    return lambda namespace, name: pod if name == "podmigration-node-helper-abcde" else None


def test_the_helper_pod_on_its_own_node_is_approved() -> None:
    decision = decide(csr(), HELPERS, reader(helper_pod()))
    assert decision.approved and decision.node == "worker-1", decision.reason


@pytest.mark.parametrize(
    "request_obj, pod, reason",
    [
        (csr("worker-2"), helper_pod(), "token was issued on node worker-1, not on worker-2"),
        (
            csr(
                "worker-2",
                extra={
                    "authentication.kubernetes.io/pod-name": ["podmigration-node-helper-abcde"],
                    "authentication.kubernetes.io/pod-uid": ["uid-1"],
                },
            ),
            helper_pod(),
            "runs on node worker-1, not on worker-2",
        ),
        (csr(username="system:serviceaccount:default:default"), helper_pod(), "not by the node-helper service account"),
        (csr(extra={}), helper_pod(), "not bound to a pod"),
        (csr(), None, "does not exist"),
        (csr(), helper_pod(uid="uid-2"), "uid differs"),
        (
            csr(),
            helper_pod(metadata__ownerReferences=[{"kind": "DaemonSet", "name": "evil", "controller": True}]),
            "is not a pod of DaemonSet",
        ),
        (csr(), helper_pod(spec__serviceAccountName="other"), "does not run as"),
    ],
)
def test_anything_else_is_denied_with_its_reason(request_obj: dict, pod: dict | None, reason: str) -> None:
    decision = decide(request_obj, HELPERS, reader(pod))
    assert not decision.approved and reason in decision.reason, decision.reason


def test_a_subject_other_than_a_helper_name_is_denied() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    for name in (OPERATOR_CN, "system:podmigration:node-helper:"):
        request = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .sign(key, hashes.SHA256())
        )
        obj = csr()
        obj["spec"]["request"] = base64.b64encode(request.public_bytes(serialization.Encoding.PEM)).decode()
        decision = decide(obj, HELPERS, reader(helper_pod()))
        assert not decision.approved and "the subject must be exactly" in decision.reason


class FakeKube:
    """The Kube calls the signer makes, on one stored CSR and one pod."""

    def __init__(self, obj: dict, pod: dict | None) -> None:
        self.obj = obj
        self.get_pod = reader(pod)
        self.patches: list[tuple[str, dict]] = []

    def get_csr(self, name: str) -> dict | None:
        return self.obj if name == self.obj["metadata"]["name"] else None

    def patch_csr(self, name: str, subresource: str, status: dict) -> None:
        self.patches.append((subresource, {"status": status}))
        if subresource == "approval":
            self.obj["status"].setdefault("conditions", []).extend(status["conditions"])
        else:
            self.obj["status"]["certificate"] = status["certificate"]


def test_the_signer_approves_signs_for_at_most_the_validity_and_then_leaves_it(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    api = FakeKube(csr(), helper_pod())
    signer = HelperSigner(api, ca, HELPERS, SIGNER, validity_seconds=1800)
    assert signer.handle("req-1") == "signed for worker-1"
    assert [kind for kind, _ in api.patches] == ["approval", "status"]
    assert api.obj["status"]["conditions"][0]["type"] == "Approved"
    chain = base64.b64decode(api.obj["status"]["certificate"])
    leaf = x509.load_pem_x509_certificate(chain)
    assert leaf.subject.rfc4514_string() == f"CN={helper_cn('worker-1')}"
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= datetime.timedelta(seconds=1800 + 300)
    usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
    assert chain.endswith((tmp_path / "ca" / "tls.crt").read_bytes())
    assert signer.handle("req-1") == "nothing to do" and len(api.patches) == 2


def test_the_signer_denies_once_and_signs_nothing(tmp_path: Path) -> None:
    api = FakeKube(csr("worker-2"), helper_pod())
    signer = HelperSigner(api, make_ca(tmp_path / "ca"), HELPERS, SIGNER, 1800)
    assert signer.handle("req-1").startswith("denied: ")
    [(kind, body)] = api.patches
    condition = body["status"]["conditions"][0]
    assert (kind, condition["type"], condition["reason"]) == ("approval", "Denied", "NotTheNodesHelper")
    assert "not on worker-2" in condition["message"]
    assert signer.handle("req-1") == "already denied" and len(api.patches) == 1
    assert signer.handle("req-2") == "gone"


def test_the_operator_renews_its_certificate_when_the_ca_changes(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    own = OperatorIdentity(ca, tmp_path / "identity", validity_seconds=3600)
    own.issue()
    first = own.current.resolve()
    leaf = x509.load_pem_x509_certificate((first / "tls.crt").read_bytes())
    assert leaf.subject.rfc4514_string() == f"CN={OPERATOR_CN}"
    assert oct(os.stat(first / "tls.key").st_mode & 0o777) == "0o600"
    assert not own.due()
    make_ca(tmp_path / "ca", "rotated-ca")
    assert own.due()
    own.issue()
    second = own.current.resolve()
    assert second != first
    assert (second / "ca.crt").read_bytes() == (tmp_path / "ca" / "tls.crt").read_bytes()
    own.issue()  # the one before the current stays for requests in flight; older ones go
    assert sorted(p.name for p in (tmp_path / "identity").iterdir() if not p.is_symlink()) == sorted(
        [second.name, own.current.resolve().name]
    )


def node_identity(ca: CertificateAuthority, node: str, scratch: Path, seconds: int = 3600) -> NodeIdentity:
    """A helper's identity whose CSR the operator's CA signs at once (the API server's part left out)."""

    def issue() -> tuple[bytes, bytes]:
        key_pem, request_pem = new_key_and_request(node)
        request = x509.load_pem_x509_csr(request_pem)
        return key_pem, ca.sign(request.public_key(), helper_cn(node), seconds, server=True)

    return NodeIdentity(issue, scratch)


def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> tuple[str, str]:
    """(CN the server saw, CN the client saw) over a socket pair."""
    a, b = socket.socketpair()
    seen: dict[str, str] = {}

    def serve() -> None:
        try:
            with server.wrap_socket(a, server_side=True) as tls:
                seen["server"] = common_name(tls.getpeercert())
        except (ssl.SSLError, OSError) as exc:
            seen["server"] = f"refused: {exc}"

    thread = threading.Thread(target=serve)
    thread.start()
    with client.wrap_socket(b) as tls:
        seen["client"] = common_name(tls.getpeercert())
        tls.recv(1)
    thread.join(5)
    return seen["server"], seen["client"]


def test_helpers_authenticate_each_other_by_node_and_renew_in_place(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    one = node_identity(ca, "worker-1", tmp_path / "scratch")
    two = node_identity(ca, "worker-2", tmp_path / "scratch", seconds=900)
    renewed: list[str] = []
    two.on_renew(lambda identity: renewed.append(str(identity.not_after)))
    one.renew()
    two.renew()
    assert renewed and list((tmp_path / "scratch").iterdir()) == []  # the key is gone from the tmpfs
    assert handshake(one.server_context, two.client_context) == (helper_cn("worker-2"), helper_cn("worker-1"))
    assert two.renew_at() - two.not_before == (two.not_after - two.not_before) * 2 / 3
    old_server = one.server_context
    one.renew()
    assert one.server_context is not old_server
    assert handshake(one.server_context, two.client_context)[1] == helper_cn("worker-1")
    # A peer whose certificate another CA signed is no helper at all.
    rogue = node_identity(make_ca(tmp_path / "rogue"), "worker-1", tmp_path / "scratch")
    rogue.renew()
    with pytest.raises((ssl.SSLError, ConnectionError)):
        handshake(one.server_context, rogue.client_context)


def test_the_authority_key_id_is_the_cas_own_subject_key_id(tmp_path: Path) -> None:
    """Helm's genCA (Go) derives the CA's key id with SHA-256: a SHA-1 one of our own would not chain."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "go-style-ca")])
    now = datetime.datetime.now(datetime.UTC)
    ski = x509.SubjectKeyIdentifier(b"\x01" * 20)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "tls.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    one = node_identity(CertificateAuthority(tmp_path), "worker-1", tmp_path / "scratch")
    one.renew()
    leaf = x509.load_pem_x509_certificate(CertificateAuthority(tmp_path).sign(key.public_key(), "x", 600, server=False))
    assert leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == b"\x01" * 20
    assert handshake(one.server_context, one.client_context) == (helper_cn("worker-1"), helper_cn("worker-1"))


def test_the_kopf_filter_skips_other_signers_and_finished_requests() -> None:
    from podmigration.identity.signer import _ours

    class Memo:
        signer = HelperSigner(None, None, HELPERS, SIGNER, 600)  # type: ignore[arg-type]

    spec = {"signerName": SIGNER}
    assert _ours(spec=spec, status={}, memo=Memo())
    assert _ours(spec=spec, status={"conditions": [{"type": "Approved", "status": "True"}]}, memo=Memo())
    assert not _ours(spec={"signerName": "kubernetes.io/kube-apiserver-client"}, status={}, memo=Memo())
    assert not _ours(spec=spec, status={"certificate": "Y2VydA=="}, memo=Memo())
    assert not _ours(spec=spec, status={"conditions": [{"type": "Denied", "status": "True"}]}, memo=Memo())
    assert not _ours(spec=spec, status={}, memo=object())  # before the operator configured its signer


def test_the_helper_waits_for_its_certificate_or_says_why_it_was_denied(monkeypatch: pytest.MonkeyPatch) -> None:
    from nodehelper.identity import CsrIssuer

    answers: list[dict] = [
        {"metadata": {"name": "req-1"}},
        {"status": {}},
        {"status": {"certificate": base64.b64encode(b"CHAIN").decode()}},
    ]
    sent: list[tuple[str, str, dict | None]] = []

    def api(method: str, path: str, body: dict | None = None) -> dict:
        sent.append((method, path, body))
        return answers.pop(0)

    issuer = CsrIssuer("worker-1", SIGNER, 900, timeout=10, poll=0.01)
    monkeypatch.setattr(issuer, "_api", api)
    key_pem, chain = issuer()
    assert chain == b"CHAIN" and b"PRIVATE KEY" in key_pem
    created = sent[0][2]
    assert created["spec"]["signerName"] == SIGNER and created["spec"]["expirationSeconds"] == 900
    request = x509.load_pem_x509_csr(base64.b64decode(created["spec"]["request"]))
    assert request.subject.rfc4514_string() == f"CN={helper_cn('worker-1')}"
    assert [m for m, _, _ in sent] == ["POST", "GET", "GET"]
    answers[:] = [
        {"metadata": {"name": "req-2"}},
        {
            "status": {
                "conditions": [
                    {"type": "Denied", "status": "True", "message": "runs on node worker-1, not on worker-2"}
                ]
            }
        },
    ]
    with pytest.raises(RuntimeError, match="req-2 Denied: runs on node worker-1, not on worker-2"):
        issuer()
