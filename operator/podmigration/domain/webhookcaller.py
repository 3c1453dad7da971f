"""Who may call the admission webhooks: the API server alone (docs/security.md, issue 19 F7).

With ``webhooks.clientAuth`` on, the webhook server requires a client certificate from the CA that signs the API
server's admission client certificate (TLS refuses every other caller before a review is read). That CA is often
the cluster CA, which also signs the kubelets', kube-proxy's and users' client certificates; so a verified
certificate is not enough: its CN must be one the chart allows (by default ``kube-apiserver-admission``), or the
review is refused here, before any handler reads the cluster or acts. The refusal names no migration, pod or
node: the caller is not the API server, and nothing it asked about is its business.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from ..api import common_name

#: The HTTP-style code of the refusal, as Kubernetes' own admission denials.
REFUSED_CODE = 403


def caller_denial(peercert: Mapping[str, Any] | None, allowed_names: Collection[str]) -> str | None:
    """Why the caller that presented ``peercert`` (``SSLSocket.getpeercert()``; empty without a certificate) may
    not be answered, or None when its CN is one of ``allowed_names``."""
    name = common_name(peercert)
    if not name:
        return "the admission webhooks answer only the API server: no client certificate"
    if name not in allowed_names:
        return f"the admission webhooks answer only the API server, not {name!r}"
    return None


def refused_review(review: Mapping[str, Any], message: str) -> dict[str, Any]:
    """An AdmissionReview answer refusing ``review``: the API server relays it as a denial (whatever the webhook's
    failurePolicy), so a misconfigured name shows up as a refused request, not as a webhook silently skipped."""
    request = review.get("request")
    uid = request.get("uid") if isinstance(request, Mapping) else ""
    return {
        "apiVersion": review.get("apiVersion") or "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {
            "uid": str(uid or ""),
            "allowed": False,
            "status": {"code": REFUSED_CODE, "message": message},
        },
    }
