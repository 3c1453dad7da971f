"""TLS contexts for helper-to-helper and operator-to-helper traffic (mutual TLS against one dedicated CA).

The CA exists only for pod migration, so a certificate it signed is the identity check; host names are not
checked because one DaemonSet certificate cannot name every node IP.
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
    """Server side: present our cert, refuse any client without a cert signed by the CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(_existing(tls_dir / CERT_FILE), _existing(tls_dir / KEY_FILE))
    ctx.load_verify_locations(cafile=_existing(tls_dir / CA_FILE))
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(tls_dir: Path) -> ssl.SSLContext:
    """Client side: present our cert, accept only servers whose cert the CA signed."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cafile=_existing(tls_dir / CA_FILE))
    ctx.load_cert_chain(_existing(tls_dir / CERT_FILE), _existing(tls_dir / KEY_FILE))
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def kubelet_context(ca_file: Path, insecure: bool) -> ssl.SSLContext:
    """The kubelet serves a cert from the cluster CA; `insecure` exists for kubelets with self-signed certs."""
    if insecure:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context(cafile=_existing(ca_file))
