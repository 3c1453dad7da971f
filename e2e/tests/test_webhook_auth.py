"""The admission webhooks answer the API server alone (webhooks.clientAuth, which e2e/install.sh turns on; the local
API server presents its admission client certificate, e2e/cluster/node-config.sh; docs/security.md "Webhook
callers"). A tenant pod posts a forged AdmissionReview to every webhook through the operator's Service: without a
client certificate its TLS handshake is refused; with a certificate the cluster CA signed for another name (as a
node's kubelet certificate or a user's would be) each review is refused with 403 naming nothing of the cluster.
Either way no PodMigration is created, while a real eviction of the same opted-in pod, sent by the API server,
still starts its migration."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from e2elib import (
    COUNTER_IMAGE,
    GROUP,
    NAMESPACE,
    OPERATOR_NAMESPACE,
    PLURAL,
    TARGET_NODE,
    VERSION,
    finished_migration,
    wait_for,
)
from kubernetes import client
from kubernetes.client.exceptions import ApiException

OPT_IN = {"podmigration.dev/eviction": "migrate"}
WEBHOOK_SERVICE = "podmigration-operator"

# Runs in the forging pod (the workload image: python3 without http.client): posts each review of $REVIEWS
# (path -> AdmissionReview) to $WEBHOOK_IP:443, once without a client certificate and once with /forger/tls.*,
# and prints {"none" | "forger": {path: {"stage": "connect" | "tls" | "http", ...}}}.
FORGE = r"""
import json, os, socket, ssl

def post(path, review, cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain("/forger/tls.crt", "/forger/tls.key")
    try:
        raw = socket.create_connection((os.environ["WEBHOOK_IP"], 443), timeout=15)
    except OSError as exc:
        return {"stage": "connect", "error": repr(exc)}
    body = json.dumps(review).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    data = b""
    try:
        with ctx.wrap_socket(raw) as tls:
            tls.sendall(head.encode() + body)
            while chunk := tls.recv(65536):
                data += chunk
    except OSError as exc:  # ssl.SSLError included
        return {"stage": "tls", "error": repr(exc), "received": len(data)}
    if not data:
        return {"stage": "tls", "error": "closed without an answer"}
    status, _, rest = data.partition(b"\r\n\r\n")
    return {"stage": "http", "status": int(status.split()[1]), "body": rest.decode(errors="replace")}

reviews = json.loads(os.environ["REVIEWS"])
print(json.dumps({who: {p: post(p, r, who == "forger") for p, r in reviews.items()} for who in ("none", "forger")}))
"""


PODS = ("", "v1", "pods")
MIGRATIONS = (GROUP, VERSION, PLURAL)


def review(
    resource: tuple[str, str, str], operation: str, obj: dict[str, Any], sub: str = "", old: Any = None
) -> dict[str, Any]:
    """An AdmissionReview as the API server would send it, from a user of the forger's choosing."""
    group, version, plural = resource
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "00000000-0000-0000-0000-000000000001",
            "kind": {"group": group, "version": version, "kind": obj["kind"]},
            "resource": {"group": group, "version": version, "resource": plural},
            **({"subResource": sub} if sub else {}),
            "name": obj["metadata"]["name"],
            "namespace": NAMESPACE,
            "operation": operation,
            "userInfo": {"username": "system:admin", "groups": ["system:masters", "system:authenticated"]},
            "object": obj,
            "oldObject": old,
            "dryRun": False,
        },
    }


def forged_reviews(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One review per webhook of the chart (templates/webhooks.yaml), each about the opted-in pod."""
    name = pod["metadata"]["name"]
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": NAMESPACE}}
    migration = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "PodMigration", "metadata": {"name": f"{name}-x"}}
    migration["spec"] = {"podName": name}
    debugged = json.loads(json.dumps(pod))
    debugged["spec"]["ephemeralContainers"] = [{"name": "dbg", "image": COUNTER_IMAGE}]
    return {
        "/eviction": review(PODS, "CREATE", eviction, sub="eviction"),
        "/statefulset-handover": review(PODS, "CREATE", pod),
        "/handover-guard": review(PODS, "CREATE", pod),
        "/ephemeral-guard": review(PODS, "UPDATE", debugged, sub="ephemeralcontainers", old=pod),
        "/preflight": review(MIGRATIONS, "CREATE", migration),
    }


@pytest.fixture
def forger(api: client.ApiClient, core: client.CoreV1Api, unique: str) -> Iterator[str]:
    """A Secret (tls.crt, tls.key) of a client certificate the cluster CA signed for a name of the forger's own,
    through an approved CertificateSigningRequest (signer kubernetes.io/kube-apiserver-client)."""
    certificates = client.CertificatesV1Api(api)
    name = f"pm-e2e-forger-{unique}"
    key = ec.generate_private_key(ec.SECP256R1())
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .sign(key, hashes.SHA256())
    )
    certificates.create_certificate_signing_request(
        {
            "metadata": {"name": name},
            "spec": {
                "request": base64.b64encode(request.public_bytes(serialization.Encoding.PEM)).decode(),
                "signerName": "kubernetes.io/kube-apiserver-client",
                "usages": ["client auth"],
                "expirationSeconds": 600,
            },
        }
    )
    try:
        csr = certificates.read_certificate_signing_request(name)
        csr.status.conditions = [
            client.V1CertificateSigningRequestCondition(
                type="Approved", status="True", reason="E2E", message="a forger's certificate"
            )
        ]
        certificates.replace_certificate_signing_request_approval(name, csr)
        cert = wait_for(
            f"certificate of CSR {name}",
            lambda: certificates.read_certificate_signing_request(name).status.certificate,
            timeout=60,
        )
        pem_key = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        core.create_namespaced_secret(
            NAMESPACE,
            {
                "metadata": {"name": name},
                "data": {"tls.crt": cert, "tls.key": base64.b64encode(pem_key).decode()},
            },
        )
        yield name
    finally:
        certificates.delete_certificate_signing_request(name)
        try:
            core.delete_namespaced_secret(name, NAMESPACE)
        except ApiException as exc:
            if exc.status != 404:
                raise


def forge(core: client.CoreV1Api, pods: list[str], secret: str, reviews: dict[str, Any]) -> dict[str, Any]:
    """Runs FORGE in a tenant pod (no service account token, the forger's certificate mounted) and returns its
    results."""
    name = f"forge-{secret[-6:]}"
    webhook_ip = core.read_namespaced_service(WEBHOOK_SERVICE, OPERATOR_NAMESPACE).spec.cluster_ip
    core.create_namespaced_pod(
        NAMESPACE,
        {
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {
                "nodeName": TARGET_NODE,
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {
                        "name": "forge",
                        "image": COUNTER_IMAGE,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["python3", "-c", FORGE],
                        "env": [
                            {"name": "WEBHOOK_IP", "value": webhook_ip},
                            {"name": "REVIEWS", "value": json.dumps(reviews)},
                        ],
                        "volumeMounts": [{"name": "forger", "mountPath": "/forger", "readOnly": True}],
                    }
                ],
                "volumes": [{"name": "forger", "secret": {"secretName": secret}}],
            },
        },
    )
    pods.append(name)
    phase = wait_for(
        f"pod {name} to finish",
        lambda: (p := core.read_namespaced_pod(name, NAMESPACE).status.phase) in ("Succeeded", "Failed") and p,
        timeout=180,
    )
    log = core.read_namespaced_pod_log(name, NAMESPACE)
    assert phase == "Succeeded", log
    return json.loads(log.strip().splitlines()[-1])


def migrations_of(custom: client.CustomObjectsApi, pod: str) -> list[str]:
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)["items"]
    return [m["metadata"]["name"] for m in listed if m["spec"].get("podName") == pod]


def test_forged_reviews_are_refused_and_start_nothing_while_a_real_eviction_migrates(
    api, core, custom, running_counter, pods, forger, unique
):
    name = f"webhook-auth-{unique}"
    running_counter(name)
    core.patch_namespaced_pod(name, NAMESPACE, {"metadata": {"labels": OPT_IN}})
    pod = api.sanitize_for_serialization(core.read_namespaced_pod(name, NAMESPACE))
    reviews = forged_reviews({k: pod[k] for k in ("apiVersion", "kind", "metadata", "spec")})

    answers = forge(core, pods, forger, reviews)

    for path, answer in answers["none"].items():
        # Connected to the Service, refused in the TLS handshake: no HTTP answer at all.
        assert answer["stage"] == "tls", (path, answer)
    for path, answer in answers["forger"].items():
        # A certificate of the cluster CA passes TLS; its name does not: refused before any handler.
        assert (answer["stage"], answer.get("status")) == ("http", 200), (path, answer)
        response = json.loads(answer["body"])["response"]
        assert response["allowed"] is False and response["status"]["code"] == 403, (path, response)
        assert "answer only the API server" in response["status"]["message"], (path, response)
        assert name not in answer["body"] and TARGET_NODE not in answer["body"], (path, answer["body"])
    time.sleep(2)  # a review that got through would have created it before answering; margin for the list
    assert migrations_of(custom, name) == []

    # The API server's own call passes: a real eviction of the opted-in pod starts its migration (429, retry).
    with pytest.raises(ApiException) as evicted:
        core.create_namespaced_pod_eviction(
            name, NAMESPACE, {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}}
        )
    assert evicted.value.status == 429, evicted.value.body
    [migration] = migrations_of(custom, name)
    done = finished_migration(custom, migration)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, migration)
