"""The CA that signs every identity: read from its mounted Secret (tls.crt, tls.key) each time it signs, so a CA
that cert-manager or an operator-side rotation renewed is used without a restart.

Pinned: peers trust this CA's own certificate and nothing above it. Identities are authorized by their CN alone
(system:podmigration:...), so trusting the root of an issuer the CA was chained to would let any certificate that
issuer signs with such a CN call a helper as the operator. A ``ca.crt`` in the Secret (a root) is not used."""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes, CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: Backdating covers clocks a little behind ours.
BACKDATE = datetime.timedelta(minutes=5)


def _authority_key_id(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    """The CA's own subject key id: verifiers match it byte for byte, and CAs differ in how they derive it (Go's
    newer releases, which Helm's genCA uses, hash the key with SHA-256, not SHA-1)."""
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


class CertificateAuthority:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _read(self) -> tuple[bytes, bytes]:
        cert, key = self.directory / "tls.crt", self.directory / "tls.key"
        if not cert.is_file() or not key.is_file():
            raise FileNotFoundError(f"CA files {cert} and {key} missing (is the CA Secret mounted?)")
        return cert.read_bytes(), key.read_bytes()

    def fingerprint(self) -> str:
        """Changes when the CA (its certificate) changed on disk."""
        return hashlib.sha256(self._read()[0]).hexdigest()

    def bundle(self) -> bytes:
        """PEM of what verifies our certificates: the signing CA's own certificate, pinned (an intermediate is
        trusted as the anchor: the peers verify with X509_V_FLAG_PARTIAL_CHAIN)."""
        return self._read()[0]

    def sign(self, public_key: CertificatePublicKeyTypes, common_name: str, seconds: int, server: bool) -> bytes:
        """A certificate for ``common_name`` (client auth; server auth too when ``server``), followed by the CA."""
        cert_pem, key_pem = self._read()
        ca_cert = x509.load_pem_x509_certificate(cert_pem)
        ca_key: CertificateIssuerPrivateKeyTypes = serialization.load_pem_private_key(key_pem, None)  # type: ignore[assignment]
        now = datetime.datetime.now(datetime.UTC)
        not_after = min(now + datetime.timedelta(seconds=seconds), ca_cert.not_valid_after_utc)
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if server else [])
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(_authority_key_id(ca_cert), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM) + self.bundle()
