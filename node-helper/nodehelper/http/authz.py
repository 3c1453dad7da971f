"""Who is calling, from the client certificate the TLS handshake verified, and whether a route's access lets them.

The CA signs two kinds of identity (pmcontract.names): the operator and one per node-helper (issued by the operator
only to the helper pod running on that node). Control calls act on pods and archives of this node, so only the
operator may make them; another helper may only upload an archive, or fetch an image, that the operator granted it
(store/grants.py). /healthz answers anyone, even a client without a certificate (the readiness probe). Each route
says which of these it is (routes.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from nodehelper.errors import Forbidden
from pmcontract import names


class Access(enum.Enum):
    #: Every client, with or without a certificate.
    PUBLIC = "public"
    #: A node-helper identity (the endpoint then checks the operator's grant for it).
    PEER = "peer"
    #: The operator only.
    OPERATOR = "operator"


@dataclass(frozen=True)
class Caller:
    """The verified identity behind a connection: ``name`` is the certificate's CN ("" without a certificate)."""

    name: str

    @property
    def is_operator(self) -> bool:
        return self.name == names.OPERATOR_CN

    @property
    def node(self) -> str | None:
        """The node whose helper this is, or None for any other identity."""
        return names.helper_node(self.name)

    def __str__(self) -> str:
        return self.name or "a client without a certificate"


def authorize(caller: Caller, access: Access) -> None:
    """Raises Forbidden unless ``caller`` has ``access``."""
    if access is Access.PUBLIC:
        return
    if access is Access.PEER:
        if caller.node is None:
            raise Forbidden(
                f"{caller} is not a node-helper: only helpers the operator granted a transfer may call this"
            )
        return
    if not caller.is_operator:
        raise Forbidden(f"{caller} may not call this: control endpoints answer the operator only")
