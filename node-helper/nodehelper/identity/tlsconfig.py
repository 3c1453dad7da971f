"""TLS contexts for helper-to-helper and operator-to-helper traffic (mutual TLS against one dedicated CA).

The CA exists only for pod migration and signs one identity per component (the operator, each node's helper), so
a certificate it signed says who is calling (http/authz.py); host names are not checked, the peer's identity is
(peers/client.py). ca.crt holds that CA's own certificate only (pinned, certificate.py), never a root it chains to:
with partial-chain verification it is the trust anchor even when it is an intermediate.
"""

from __future__ import annotations

import ssl
from pathlib import Path

CA_FILE, CERT_FILE, KEY_FILE = "ca.crt", "tls.crt", "tls.key"


def _existing(path: Path) -> str:
    """A missing mount should say which file, not surface as a bare FileNotFoundError from ssl."""
    if not path.is_file():
        raise FileNotFoundError(f"TLS file {path} does not exist (is the secret or service account mounted?)")
    return str(path)


def server_context(tls_dir: Path) -> ssl.SSLContext:
    """Server side: present our cert; a client cert not signed by the CA fails the handshake. A client without
    one gets through to /healthz only (http/routes.py), so the readiness probe needs no key."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(_existing(tls_dir / CERT_FILE), _existing(tls_dir / KEY_FILE))
    ctx.load_verify_locations(cafile=_existing(tls_dir / CA_FILE))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # the pinned CA may be an intermediate
    return ctx


def client_context(tls_dir: Path) -> ssl.SSLContext:
    """Client side: present our cert, accept only servers whose cert the CA signed (their identity: connect())."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cafile=_existing(tls_dir / CA_FILE))
    ctx.load_cert_chain(_existing(tls_dir / CERT_FILE), _existing(tls_dir / KEY_FILE))
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return ctx


def probe_context() -> ssl.SSLContext:
    """The readiness probe asks its own helper's /healthz: no client cert, and no CA on disk to check against."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def kubelet_context(ca_file: Path, insecure: bool) -> ssl.SSLContext:
    """The kubelet serves a cert from the cluster CA; `insecure` exists for kubelets with self-signed certs."""
    if insecure:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context(cafile=_existing(ca_file))
