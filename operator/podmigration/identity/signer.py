"""The signer of node-helper certificates: approves or denies each CertificateSigningRequest of our signerName
(csrcheck.py decides) and signs the approved ones with the CA, for at most the configured validity.

A kopf event handler, not a create handler: it keeps no progress on the CSR (the operator needs no write access
to CSRs beyond their approval and status), and the state it needs is on the CSR itself, so it is idempotent and
picks up pending requests at start. Only the leading replica runs it (kopf peering).
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import kopf

from ..api import helper_cn
from .ca import CertificateAuthority
from .csrcheck import HelperPods, decide, decided

log = logging.getLogger(__name__)


class HelperSigner:
    def __init__(
        self, kube: Any, ca: CertificateAuthority, helpers: HelperPods, signer_name: str, validity_seconds: int
    ) -> None:
        self.kube = kube  # get_csr, patch_csr, get_pod (kube.Kube)
        self.ca = ca
        self.helpers = helpers
        self.signer_name = signer_name
        self.validity_seconds = validity_seconds

    def handle(self, name: str) -> str:
        """Decides, approves and signs as far as still needed; returns what it did (for the log and tests).
        The CSR is read afresh: an event may predate our own approval or signature."""
        csr = self.kube.get_csr(name)
        if csr is None:
            return "gone"
        spec, status = csr.get("spec") or {}, csr.get("status") or {}
        if spec.get("signerName") != self.signer_name or status.get("certificate"):
            return "nothing to do"
        state = decided(csr)
        if state in ("Denied", "Failed"):
            return f"already {state.lower()}"
        decision = decide(csr, self.helpers, self.kube.get_pod)
        if not decision.approved:
            if state is None:
                self._condition(name, "Denied", "NotTheNodesHelper", decision.reason)
                log.warning("denied CertificateSigningRequest %s: %s", name, decision.reason)
            return f"denied: {decision.reason}"
        if state is None:
            self._condition(name, "Approved", "NodeHelperOnItsNode", decision.reason)
        seconds = min(self.validity_seconds, int(spec.get("expirationSeconds") or self.validity_seconds))
        assert decision.request is not None
        chain = self.ca.sign(decision.request.public_key(), helper_cn(decision.node), seconds, server=True)
        self.kube.patch_csr(name, "status", {"certificate": base64.b64encode(chain).decode()})
        log.info(
            "signed CertificateSigningRequest %s for the node-helper of %s, valid %d s", name, decision.node, seconds
        )
        return f"signed for {decision.node}"

    def _condition(self, name: str, kind: str, reason: str, message: str) -> None:
        self.kube.patch_csr(
            name, "approval", {"conditions": [{"type": kind, "status": "True", "reason": reason, "message": message}]}
        )


def _ours(spec: kopf.Spec, status: kopf.Status, memo: kopf.Memo, **_: Any) -> bool:
    """Requests of our signer still open: an issued or denied one needs nothing (and no log line per event)."""
    signer = getattr(memo, "signer", None)
    return (
        signer is not None
        and spec.get("signerName") == signer.signer_name
        and not status.get("certificate")
        and decided({"status": dict(status)}) not in ("Denied", "Failed")
    )


@kopf.on.event("certificates.k8s.io", "v1", "certificatesigningrequests", when=_ours)
def sign_helper_certificates(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
    if type == "DELETED":
        return
    try:
        memo.signer.handle(body["metadata"]["name"])
    except Exception as exc:  # a conflict or a hiccup: the next event (or the resync at start) tries again
        log.error("CertificateSigningRequest %s: %s", body["metadata"]["name"], exc)
