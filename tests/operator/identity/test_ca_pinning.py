"""The podmigration CA is pinned: when it is an intermediate of a shared issuer (a company CA, a cert-manager
ClusterIssuer), a certificate that issuer signed for someone else, with a podmigration CN, is no identity at all.
Real TLS handshakes over a socket pair, with the contexts the helpers and the operator build."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pmpki import make_ca
from test_identity import handshake, node_identity

from nodehelper.identity import tlsconfig
from podmigration.api import OPERATOR_CN, helper_cn
from podmigration.identity.ca import CertificateAuthority
from podmigration.identity.own import OperatorIdentity


def intermediate(root: Path, directory: Path, name: str) -> CertificateAuthority:
    """A CA that the shared root signed, laid out as cert-manager writes it (tls.crt, tls.key, ca.crt: the root)."""
    root_cert = x509.load_pem_x509_certificate((root / "tls.crt").read_bytes())
    root_key = serialization.load_pem_private_key((root / "tls.key").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(root_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(root_key, hashes.SHA256())
    )  # type: ignore[arg-type]
    directory.mkdir(parents=True)
    (directory / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "tls.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (directory / "ca.crt").write_bytes((root / "tls.crt").read_bytes())
    return CertificateAuthority(directory)


@pytest.fixture
def cas(tmp_path: Path) -> tuple[CertificateAuthority, CertificateAuthority]:
    """(podmigration's CA, another team's CA), both signed by one shared root."""
    make_ca(tmp_path / "root", "shared-root")
    return (
        intermediate(tmp_path / "root", tmp_path / "podmigration", "podmigration-ca"),
        intermediate(tmp_path / "root", tmp_path / "other", "other-team-ca"),
    )


def operator_context(ca: CertificateAuthority, directory: Path) -> ssl.SSLContext:
    """The operator's client side: its own certificate and the ca.crt it verifies helpers with."""
    own = OperatorIdentity(ca, directory, validity_seconds=3600)
    own.issue()
    return tlsconfig.client_context(own.current.resolve())


def test_the_pinned_intermediate_still_verifies_our_own_identities(cas, tmp_path: Path) -> None:
    ours, _ = cas
    helper = node_identity(ours, "worker-1", tmp_path / "scratch")
    helper.renew()
    assert handshake(helper.server_context, operator_context(ours, tmp_path / "op")) == (
        OPERATOR_CN,
        helper_cn("worker-1"),
    )
    assert ours.bundle() == (tmp_path / "podmigration" / "tls.crt").read_bytes()  # not the root


def test_the_operators_cn_from_another_ca_of_the_shared_root_is_refused_by_a_helper(cas, tmp_path: Path) -> None:
    ours, other = cas
    helper = node_identity(ours, "worker-1", tmp_path / "scratch")
    helper.renew()
    with pytest.raises((ssl.SSLError, ConnectionError)):
        handshake(helper.server_context, operator_context(other, tmp_path / "rogue"))


def test_a_helpers_cn_from_another_ca_of_the_shared_root_is_refused_by_the_operator_and_the_helpers(
    cas, tmp_path: Path
) -> None:
    ours, other = cas
    helper = node_identity(ours, "worker-2", tmp_path / "scratch")
    helper.renew()
    rogue = node_identity(other, "worker-1", tmp_path / "scratch")
    rogue.renew()
    for client in (operator_context(ours, tmp_path / "op"), helper.client_context):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            handshake(rogue.server_context, client)
