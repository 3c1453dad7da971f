"""Whether a node-helper's CertificateSigningRequest may be signed: the decision alone, on plain dicts.

A helper's certificate lets it upload archives the operator granted to its node, so it must name the node the
requesting pod really runs on. The API server records who created the request (``spec.username``) and, for a
pod-bound service-account token, which pod (``spec.extra``); the pod itself, read from the API, says its node and
that the helper DaemonSet owns it. Nothing the requester wrote into the CSR is trusted beyond the CN it asks for.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from pmcontract.names import HELPER_CN_PREFIX, helper_node

from ..api.types import Obj

POD_NAME, POD_UID, NODE_NAME = (f"authentication.kubernetes.io/{k}" for k in ("pod-name", "pod-uid", "node-name"))


@dataclass(frozen=True)
class HelperPods:
    """What a legitimate requester is: the helper DaemonSet's service account and pods."""

    namespace: str
    service_account: str
    daemonset: str

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


@dataclass(frozen=True)
class Decision:
    approved: bool
    reason: str
    node: str = ""
    request: x509.CertificateSigningRequest | None = None


def _deny(reason: str) -> Decision:
    return Decision(False, reason)


def _one(extra: Obj, key: str) -> str | None:
    values = extra.get(key) or []
    return values[0] if len(values) == 1 else None


def parse_request(encoded: str) -> x509.CertificateSigningRequest:
    return x509.load_pem_x509_csr(base64.b64decode(encoded))


def decide(csr: Obj, helpers: HelperPods, read_pod: Callable[[str, str], Obj | None]) -> Decision:
    """Approve only a request from the helper service account, by a helper pod, for the node that pod runs on."""
    spec = csr.get("spec") or {}
    if spec.get("username") != helpers.username:
        return _deny(
            f"requested by {spec.get('username')!r}, not by the node-helper service account {helpers.username}"
        )
    try:
        request = parse_request(spec.get("request") or "")
    except ValueError as exc:
        return _deny(f"the request is not a PEM certificate request: {exc}")
    if not request.is_signature_valid:
        return _deny("the request's signature does not match its key")
    key = request.public_key()
    if not (isinstance(key, ec.EllipticCurvePublicKey) or (isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048)):
        return _deny("the key must be an elliptic-curve key or RSA of 2048 bits or more")
    names = request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = str(names[0].value) if len(names) == 1 else ""
    node = helper_node(cn)
    if not node or len(request.subject) != 1:
        return _deny(
            f"the subject must be exactly CN={HELPER_CN_PREFIX}<node>, not {request.subject.rfc4514_string()!r}"
        )
    extra = spec.get("extra") or {}
    pod_name, pod_uid = _one(extra, POD_NAME), _one(extra, POD_UID)
    if not pod_name or not pod_uid:
        return _deny("the requester's token is not bound to a pod (no pod-name/pod-uid in spec.extra)")
    token_node = _one(extra, NODE_NAME)
    if token_node is not None and token_node != node:
        return _deny(f"the requesting pod's token was issued on node {token_node}, not on {node}")
    pod = read_pod(helpers.namespace, pod_name)
    if pod is None:
        return _deny(f"the requesting pod {helpers.namespace}/{pod_name} does not exist")
    meta, pod_spec = pod.get("metadata") or {}, pod.get("spec") or {}
    if meta.get("uid") != pod_uid:
        return _deny(f"pod {helpers.namespace}/{pod_name} is not the one that requested it (uid differs)")
    owners = [o for o in meta.get("ownerReferences") or [] if o.get("controller")]
    if [(o.get("kind"), o.get("name")) for o in owners] != [("DaemonSet", helpers.daemonset)]:
        return _deny(f"pod {helpers.namespace}/{pod_name} is not a pod of DaemonSet {helpers.daemonset}")
    if pod_spec.get("serviceAccountName") != helpers.service_account:
        return _deny(f"pod {helpers.namespace}/{pod_name} does not run as {helpers.service_account}")
    if pod_spec.get("nodeName") != node:
        return _deny(
            f"pod {helpers.namespace}/{pod_name} runs on node {pod_spec.get('nodeName')}, "
            f"not on {node} that the certificate would name"
        )
    return Decision(True, f"node-helper pod {pod_name} on node {node}", node, request)


def decided(csr: Obj) -> str | None:
    """ "Approved", "Denied" or "Failed" once someone decided, else None."""
    for condition in (csr.get("status") or {}).get("conditions") or []:
        if condition.get("status", "True") == "True" and condition.get("type") in ("Approved", "Denied", "Failed"):
            return str(condition["type"])
    return None
