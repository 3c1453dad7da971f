"""The CA and the webhooks' certificate the operator creates at its first start (identity/bootstrap.py): the replicas
racing to create them end with the same keys, and what it makes verifies as the signer and the API server need."""

from __future__ import annotations

import base64
from pathlib import Path
from types import SimpleNamespace

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from kubernetes.client.exceptions import ApiException

from podmigration.identity import bootstrap
from podmigration.identity.ca import CertificateAuthority


class Core:
    """A CoreV1Api holding Secrets; ``rival`` is a replica's Secret that lands between our read and our create."""

    def __init__(self, rival: dict[str, bytes] | None = None) -> None:
        self.secrets: dict[str, dict[str, str]] = {}
        self.rival = rival
        self.creates = 0

    def read_namespaced_secret(self, name: str, namespace: str) -> SimpleNamespace:
        if name not in self.secrets:
            raise ApiException(status=404)
        return SimpleNamespace(data=self.secrets[name])

    def create_namespaced_secret(self, namespace: str, body) -> None:
        self.creates += 1
        if self.rival is not None:
            self.secrets[body.metadata.name] = {k: base64.b64encode(v).decode() for k, v in self.rival.items()}
            raise ApiException(status=409)
        self.secrets[body.metadata.name] = body.data


def test_a_missing_secret_is_created_once_and_then_read():
    core = Core()
    first = bootstrap.ensure_secret(core, "ns", "pm-ca", lambda: {"tls.crt": b"a", "tls.key": b"b"})
    again = bootstrap.ensure_secret(core, "ns", "pm-ca", lambda: {"tls.crt": b"other", "tls.key": b"other"})
    assert first == again == {"tls.crt": b"a", "tls.key": b"b"} and core.creates == 1


def test_the_replica_that_loses_the_race_uses_the_winners_keys():
    winner = {"tls.crt": b"winner", "tls.key": b"winner"}
    core = Core(rival=winner)
    assert bootstrap.ensure_secret(core, "ns", "pm-ca", lambda: {"tls.crt": b"mine", "tls.key": b"mine"}) == winner


def test_the_generated_ca_signs_identities(tmp_path: Path):
    bootstrap.write_files(tmp_path, bootstrap.new_ca(1))
    assert oct((tmp_path / "tls.key").stat().st_mode & 0o777) == "0o600"
    chain = CertificateAuthority(tmp_path).sign(
        ec.generate_private_key(ec.SECP256R1()).public_key(), "system:podmigration:operator", 600, server=False
    )
    leaf, ca = x509.load_pem_x509_certificates(chain)
    leaf.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_the_webhook_certificate_is_issued_by_its_bundle_for_the_service():
    tls = bootstrap.new_webhook_tls("pm-operator.pm-system.svc", 1)
    ca, cert = x509.load_pem_x509_certificate(tls["ca.crt"]), x509.load_pem_x509_certificate(tls["tls.crt"])
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert names == ["pm-operator.pm-system.svc", "pm-operator.pm-system.svc.cluster.local"]
