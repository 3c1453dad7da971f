"""Who is calling, from the client certificate the TLS handshake verified, and what that identity may call.

The CA signs two kinds of identity: the operator (CN system:podmigration:operator) and one per node-helper
(CN system:podmigration:node-helper:<node>, issued by the operator only to the helper pod running on that node).
Control calls act on pods and archives of this node, so only the operator may make them; another helper may only
upload an archive, or fetch an image, that the operator granted it (grants.py). /healthz answers anyone, even a
client without a certificate (the readiness probe).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import Forbidden

OPERATOR_CN = "system:podmigration:operator"
HELPER_CN_PREFIX = "system:podmigration:node-helper:"

#: Routes open to every client, with or without a certificate.
PUBLIC = frozenset({"healthz"})
#: Routes a node-helper identity calls (each then checks the operator's grant); everything else is operator-only.
PEER = frozenset({"put_archive", "image_export"})


def helper_cn(node: str) -> str:
    return HELPER_CN_PREFIX + node


@dataclass(frozen=True)
class Caller:
    """The verified identity behind a connection: ``name`` is the certificate's CN ("" without a certificate)."""

    name: str

    @property
    def is_operator(self) -> bool:
        return self.name == OPERATOR_CN

    @property
    def node(self) -> str | None:
        """The node whose helper this is, or None for any other identity."""
        if self.name.startswith(HELPER_CN_PREFIX) and len(self.name) > len(HELPER_CN_PREFIX):
            return self.name[len(HELPER_CN_PREFIX) :]
        return None

    def __str__(self) -> str:
        return self.name or "a client without a certificate"


def common_name(cert: Mapping[str, Any] | None) -> str:
    """The subject CN of a certificate as ``SSLSocket.getpeercert()`` returns it ("" if none)."""
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""


def authorize(caller: Caller, route: str) -> None:
    """Raises Forbidden unless ``caller`` may call ``route`` (a route name of the server; JSON POSTs: "json_post")."""
    if route in PUBLIC:
        return
    if route in PEER:
        if caller.node is None:
            raise Forbidden(f"{caller} is not a node-helper: only helpers the operator granted a transfer may call this")
        return
    if not caller.is_operator:
        raise Forbidden(f"{caller} may not call this: control endpoints answer the operator only")
