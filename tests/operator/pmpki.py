"""Throwaway CAs for the operator's tests (cryptography), laid out as the operator reads its CA (tls.crt, tls.key)."""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from podmigration.identity.ca import CertificateAuthority


def make_ca(directory: Path, name: str = "test-ca", issuer: Path | None = None) -> CertificateAuthority:
    """A CA named ``name``: self-signed, or an intermediate of the CA in ``issuer`` laid out as cert-manager writes
    it (its ca.crt: the issuer's certificate)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    signer_cert, signer_key = subject, key
    if issuer is not None:
        signer_cert = x509.load_pem_x509_certificate((issuer / "tls.crt").read_bytes()).subject
        signer_key = serialization.load_pem_private_key((issuer / "tls.key").read_bytes(), None)
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer_cert)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(signer_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "tls.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    if issuer is not None:
        (directory / "ca.crt").write_bytes((issuer / "tls.crt").read_bytes())
    return CertificateAuthority(directory)


def issue(ca: CertificateAuthority, directory: Path, common_name: str, server: bool = False) -> tuple[Path, Path]:
    """A key and a certificate for ``common_name`` signed by ``ca``, written into ``directory``: (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / "tls.crt", directory / "tls.key"
    cert_file.write_bytes(ca.sign(key.public_key(), common_name, 600, server=server))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file
