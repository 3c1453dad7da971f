"""Certificates the operator issues at its start, so that the chart renders none and ``helm template`` gives the
same output every time (GitOps tools compare it; a template that generated keys would rotate them at each sync):

- the CA of pod migration's identities (Secret ``PM_CA_SECRET``: tls.crt, tls.key), unless the chart mounts one
  (tls.existingCASecret, or cert-manager's: then PM_CA_SECRET is unset);
- the admission webhooks' serving certificate and its own CA (Secret ``PM_WEBHOOK_SECRET``: ca.crt, tls.crt,
  tls.key), whose CA this puts into the caBundle of every webhook of the configurations PM_WEBHOOK_CONFIGURATIONS
  names (``validating/NAME,mutating/NAME,...``), after creating the StatefulSet hand-over webhook's configuration
  when it is missing (handoverwebhook.py: the operator rewrites it, so the chart does not render it).

A Secret is created when it is missing and never replaced: replicas starting together race to create it, and the
loser's create answers 409 and it reads the winner's, so every replica serves and signs with the same keys. They are
not chart resources, so ``helm upgrade`` never deletes them; an upgrade from a chart that rendered them keeps them
(``keep`` below, its pre-upgrade hook). The files go to PM_CA_DIR and PM_WEBHOOK_TLS_DIR (a tmpfs), where the
signer and the webhook server read them.
"""

from __future__ import annotations

import base64
import datetime
import functools
import logging
import os
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from . import handoverwebhook

log = logging.getLogger(__name__)

Pem = dict[str, bytes]
#: What Helm reads on the live object before deleting one that a new chart no longer renders.
KEEP = {"helm.sh/resource-policy": "keep"}


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    days: int,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    dns_names: list[str] | None = None,
) -> x509.Certificate:
    """A self-signed CA certificate (no issuer), or a server certificate for ``dns_names`` signed by ``issuer``."""
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        return builder.sign(key, hashes.SHA256())
    ca_cert, ca_key = issuer
    builder = (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names or []]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    return builder.sign(ca_key, hashes.SHA256())


def new_ca(days: int) -> Pem:
    """The identities' CA: tls.crt and tls.key of a self-signed CA made for pod migration alone."""
    key = _key()
    cert = _certificate("podmigration-ca", key, days)
    return {"tls.crt": cert.public_bytes(serialization.Encoding.PEM), "tls.key": _pem_key(key)}


def new_webhook_tls(service_dns: str, days: int) -> Pem:
    """ca.crt (the webhooks' own CA, what the API server trusts) and tls.crt / tls.key for ``service_dns``."""
    ca_key, key = _key(), _key()
    ca = _certificate("podmigration-webhook-ca", ca_key, days)
    cert = _certificate(service_dns, key, days, (ca, ca_key), [service_dns, f"{service_dns}.cluster.local"])
    return {
        "ca.crt": ca.public_bytes(serialization.Encoding.PEM),
        "tls.crt": cert.public_bytes(serialization.Encoding.PEM),
        "tls.key": _pem_key(key),
    }


def ensure_secret(core: k8s_client.CoreV1Api, namespace: str, name: str, make: Callable[[], Pem]) -> Pem:
    """The Secret's data, created from ``make()`` when it does not exist; a concurrent creator wins (409)."""
    for _ in range(3):
        try:
            secret = core.read_namespaced_secret(name, namespace)
            return {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}
        except ApiException as exc:
            if exc.status != 404:
                raise
        body = k8s_client.V1Secret(
            metadata=k8s_client.V1ObjectMeta(
                name=name, namespace=namespace, labels={"app.kubernetes.io/part-of": "podmigration"}
            ),
            type="kubernetes.io/tls",
            data={k: base64.b64encode(v).decode() for k, v in make().items()},
        )
        try:
            core.create_namespaced_secret(namespace, body)
            log.info("created Secret %s/%s", namespace, name)
        except ApiException as exc:
            if exc.status != 409:
                raise
            log.info("Secret %s/%s was created by another replica: using it", namespace, name)
    raise RuntimeError(f"Secret {namespace}/{name} neither readable nor creatable")


def write_files(directory: Path, data: Pem) -> None:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name, content in data.items():
        path = directory / name
        path.write_bytes(content)
        path.chmod(0o600)


def patch_ca_bundles(configurations: str, ca: bytes) -> None:
    """Put ``ca`` into every webhook of the configurations (``validating/NAME,mutating/NAME``)."""
    admission = k8s_client.AdmissionregistrationV1Api()
    bundle = base64.b64encode(ca).decode()
    for entry in filter(None, configurations.split(",")):
        kind, name = entry.split("/", 1)
        read, patch = (
            (admission.read_validating_webhook_configuration, admission.patch_validating_webhook_configuration)
            if kind == "validating"
            else (admission.read_mutating_webhook_configuration, admission.patch_mutating_webhook_configuration)
        )
        webhooks = read(name).webhooks or []
        if all(w.client_config.ca_bundle == bundle for w in webhooks):
            continue
        patch(
            name,
            [
                {"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": bundle}
                for i in range(len(webhooks))
            ],
        )
        log.info("caBundle of %s webhook configuration %s set", kind, name)


def run(env: dict[str, str] | None = None) -> None:
    """What the chart asks for through the environment (nothing when PM_CA_SECRET and PM_WEBHOOK_SECRET are unset)."""
    env = dict(os.environ) if env is None else env
    namespace, days = env.get("POD_NAMESPACE", ""), int(env.get("PM_CA_VALIDITY_DAYS", "3650"))
    core = k8s_client.CoreV1Api()
    if env.get("PM_CA_SECRET"):
        write_files(Path(env["PM_CA_DIR"]), ensure_secret(core, namespace, env["PM_CA_SECRET"], lambda: new_ca(days)))
    if env.get("PM_WEBHOOK_SECRET"):
        dns = f"{env['PM_WEBHOOK_SERVICE']}.{namespace}.svc"
        tls = ensure_secret(core, namespace, env["PM_WEBHOOK_SECRET"], lambda: new_webhook_tls(dns, days))
        write_files(Path(env["PM_WEBHOOK_TLS_DIR"]), {k: v for k, v in tls.items() if k != "ca.crt"})
        if env.get("PM_HANDOVER_WEBHOOK") and env.get("PM_OPERATOR_CLUSTERROLE"):
            handoverwebhook.ensure(
                env["PM_HANDOVER_WEBHOOK"],
                env["PM_WEBHOOK_SERVICE"],
                namespace,
                tls["ca.crt"],
                env["PM_OPERATOR_CLUSTERROLE"],
            )
        patch_ca_bundles(env.get("PM_WEBHOOK_CONFIGURATIONS", ""), tls["ca.crt"])


def keep(namespace: str, secrets: list[str], handover_webhook: str) -> None:
    """Annotate these Secrets and the hand-over webhook configuration ``helm.sh/resource-policy: keep`` (those that
    exist): a chart that rendered them is upgraded to one that does not without Helm deleting them (it reads the
    annotation on the live object); the operator adopts them (``run``, handoverwebhook.ensure)."""
    core, admission = k8s_client.CoreV1Api(), k8s_client.AdmissionregistrationV1Api()
    patch = {"metadata": {"annotations": KEEP}}
    targets: list[tuple[str, Callable[[], object]]] = [
        (f"Secret {namespace}/{n}", functools.partial(core.patch_namespaced_secret, n, namespace, patch))
        for n in secrets
    ]
    if handover_webhook:
        targets.append(
            (
                f"MutatingWebhookConfiguration {handover_webhook}",
                functools.partial(admission.patch_mutating_webhook_configuration, handover_webhook, patch),
            )
        )
    for what, apply in targets:
        try:
            apply()
            log.info("%s kept across the upgrade", what)
        except ApiException as exc:
            if exc.status != 404:
                raise


def main() -> None:
    """``python -m podmigration.identity.bootstrap keep SECRET...`` (the chart's pre-upgrade hook; the hand-over
    webhook configuration from PM_HANDOVER_WEBHOOK)."""
    import sys

    from ..clients.kube import load_config

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    load_config()
    if sys.argv[1:2] != ["keep"]:
        raise SystemExit("usage: python -m podmigration.identity.bootstrap keep SECRET...")
    keep(os.environ["POD_NAMESPACE"], sys.argv[2:], os.environ.get("PM_HANDOVER_WEBHOOK", ""))


if __name__ == "__main__":
    main()
