"""Identities of pod migration: the CA (its key only in the operator), the operator's own client certificate, and
the node-helpers' certificates the operator signs through CertificateSigningRequests (one node each).

The names here are the contract with node-helper/nodehelper/authz.py, which decides from them who may call what.
"""

OPERATOR_CN = "system:podmigration:operator"
HELPER_CN_PREFIX = "system:podmigration:node-helper:"
DEFAULT_SIGNER = "podmigration.dev/node-helper"


def helper_cn(node: str) -> str:
    return HELPER_CN_PREFIX + node
