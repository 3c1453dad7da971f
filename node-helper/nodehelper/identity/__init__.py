"""This node's identity: its certificate from the cluster's CSR API, kept renewed (certificate.py), and the TLS
contexts built from it (tlsconfig.py): who we are to callers and peers."""

from nodehelper.identity.certificate import CsrIssuer, NodeIdentity, new_key_and_request

__all__ = ["CsrIssuer", "NodeIdentity", "new_key_and_request"]
