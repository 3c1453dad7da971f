"""Identities on the real cluster: who may call a node-helper, and what a node's own identity is worth.

Root on a node can read what its helper pod holds, so the attacker here is that pod: it asks for a certificate
through the CSR flow exactly as the helper does at start, and uses it. The operator's calls are made from an
operator pod with the operator's certificate. The last test tampers with an archive on the target node between
its transfer and the image build of a real migration.
"""

from __future__ import annotations

import datetime
import http.client
import json
import ssl
import subprocess
import tempfile
import threading
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from e2elib import (
    ARCHIVES,
    NAMESPACE,
    OPERATOR_NAMESPACE,
    SOURCE_NODE,
    TARGET_NODE,
    assert_rolled_back,
    counter_pod,
    finished_migration,
    node_exec,
    operator_pods,
    read_counter,
    running_pod,
    start_migration,
)
from kubernetes import client

HELPER_SELECTOR = "app.kubernetes.io/name=podmigration-node-helper"
OPERATOR_CN = "system:podmigration:operator"

# Runs in a pod: makes the calls in argv[1] ([method, url, body, headers]) with an identity and prints
# [[status, answer], ...]; status 0: the connection failed (the answer says why).
CALLS = r"""
import http.client, json, ssl, sys
from urllib.parse import urlsplit

def calls(ctx, requests):
    out = []
    for method, url, body, headers in requests:
        parts = urlsplit(url)
        try:
            conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=ctx, timeout=60)
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode() if body is not None else None
            conn.request(method, parts.path, body=data, headers=headers or {})
            resp = conn.getresponse()
            out.append([resp.status, json.loads(resp.read() or b"{}")])
        except Exception as exc:
            out.append([0, {"error": f"{type(exc).__name__}: {exc}"}])
    print(json.dumps(out))
"""

# In the operator pod: its own certificate, as its helper client uses it.
AS_OPERATOR = (
    CALLS
    + r"""
tls = "/run/podmigration/identity/current"
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.load_verify_locations(f"{tls}/ca.crt")
ctx.load_cert_chain(f"{tls}/tls.crt", f"{tls}/tls.key")
calls(ctx, json.loads(sys.argv[1]))
"""
)

# In a helper pod: a certificate for the node named in argv[2], asked for as the helper asks at start.
AS_HELPER = (
    CALLS
    + r"""
from pathlib import Path
from nodehelper.identity import CsrIssuer, NodeIdentity
identity = NodeIdentity(CsrIssuer(sys.argv[2], "podmigration.dev/node-helper", 600, 60), Path("/run/podmigration/x"))
try:
    identity.renew()
except Exception as exc:
    print(json.dumps({"refused": str(exc)}))
    sys.exit(0)
calls(identity.client_context, json.loads(sys.argv[1]))
"""
)


def pod_on(core: client.CoreV1Api, selector: str, node: str | None = None) -> str:
    pods = [
        p
        for p in core.list_namespaced_pod(OPERATOR_NAMESPACE, label_selector=selector).items
        if p.status.phase == "Running"
        and not p.metadata.deletion_timestamp
        and (node is None or p.spec.node_name == node)
    ]
    assert pods, f"no running pod {selector} on {node or 'any node'}"
    return pods[0].metadata.name


def run_in(pod: str, script: str, *args: str) -> Any:
    done = subprocess.run(
        ["kubectl", "exec", "-n", OPERATOR_NAMESPACE, pod, "--", "python3", "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def helper_urls(core: client.CoreV1Api) -> dict[str, str]:
    pods = core.list_namespaced_pod(OPERATOR_NAMESPACE, label_selector=HELPER_SELECTOR).items
    return {p.spec.node_name: f"https://{p.status.host_ip}:9443" for p in pods if p.status.host_ip}


@pytest.fixture(scope="module")
def as_operator(core: client.CoreV1Api):
    pod = operator_pods(core)[0].metadata.name
    return lambda *requests: run_in(pod, AS_OPERATOR, json.dumps(list(requests)))


@pytest.fixture(scope="module")
def as_source_helper(core: client.CoreV1Api):
    """Calls with a certificate the source node's helper pod obtained for `node`."""
    pod = pod_on(core, HELPER_SELECTOR, SOURCE_NODE)
    return lambda node, *requests: run_in(pod, AS_HELPER, json.dumps(list(requests)), node)


def rogue_context() -> ssl.SSLContext:
    """A client certificate that claims to be the operator, from a CA of its own."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, OPERATOR_CN)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    with tempfile.TemporaryDirectory() as tmp:
        with open(f"{tmp}/c.pem", "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
            f.write(
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        ctx.load_cert_chain(f"{tmp}/c.pem")
    return ctx


def test_a_client_certificate_the_ca_did_not_sign_is_refused(helper_urls):
    host = helper_urls[TARGET_NODE].removeprefix("https://").rsplit(":", 1)[0]
    conn = http.client.HTTPSConnection(host, 9443, context=rogue_context(), timeout=30)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        conn.request("POST", "/v1/freeze", body=b'{"podUID": "x"}')
        conn.getresponse().read()
    conn.close()


def test_a_helpers_own_certificate_calls_no_control_endpoint_and_uploads_nothing_ungranted(
    helper_urls, as_source_helper
):
    target = helper_urls[TARGET_NODE]
    answers = as_source_helper(
        SOURCE_NODE,
        [
            "POST",
            f"{target}/v1/checkpoint",
            {"id": "x-etcd", "namespace": "kube-system", "pod": "etcd", "container": "etcd"},
            None,
        ],
        ["POST", f"{target}/v1/freeze", {"podUID": "abc"}, None],
        [
            "POST",
            f"{target}/v1/send",
            {"id": "x-a", "target": helper_urls[SOURCE_NODE], "targetNode": SOURCE_NODE},
            None,
        ],
        ["POST", f"{target}/v1/grants", {"id": "x-a", "peer": SOURCE_NODE, "sha256": "0" * 64, "bytes": 1}, None],
        ["PUT", f"{target}/v1/archives/x-a", "forged", {"X-Content-Sha256": "0" * 64, "X-Content-Length-Decoded": "6"}],
    )
    statuses = [status for status, _ in answers]
    assert statuses == [403] * 5, answers
    assert all("control endpoints answer the operator only" in a["error"] for _, a in answers[:4]), answers
    assert "no transfer of archive x-a was granted" in answers[4][1]["error"]


def test_a_certificate_for_another_nodes_name_is_denied(as_source_helper):
    answer = as_source_helper(TARGET_NODE)
    assert "Denied" in answer["refused"] and f"not on {TARGET_NODE}" in answer["refused"], answer


def test_send_reaches_only_the_named_nodes_helper_and_an_archive_id_is_written_once(
    api, helper_urls, as_operator, unique
):
    """An archive put on the source node directly (as a checkpoint would be): sending it to the API server, or to
    a helper other than the node named, is refused; the granted send goes through once."""
    archive = f"pm-identity-{unique}-a"
    node_exec(SOURCE_NODE, "sh", "-c", f"umask 077 && head -c 100000 /dev/urandom > {ARCHIVES}/{archive}.tar")
    source, target = helper_urls[SOURCE_NODE], helper_urls[TARGET_NODE]
    send = {"id": archive, "target": target, "targetNode": TARGET_NODE, "compression": "zstd"}
    try:
        api_server = api.configuration.host
        answers = as_operator(
            ["POST", f"{source}/v1/send", {**send, "target": api_server}, None],
            ["POST", f"{source}/v1/send", {**send, "targetNode": "control-plane"}, None],
        )
        assert [status for status, _ in answers] == [502, 502], answers
        assert "certificate verify failed" in answers[0][1]["error"], answers
        assert "is not system:podmigration:node-helper:control-plane" in answers[1][1]["error"], answers
        digest = node_exec(SOURCE_NODE, "sha256sum", f"{ARCHIVES}/{archive}.tar").decode().split()[0]
        grant = {"id": archive, "peer": SOURCE_NODE, "sha256": digest, "bytes": 100000}
        answers = as_operator(
            ["POST", f"{source}/v1/send", send, None],  # no grant yet
            ["POST", f"{target}/v1/grants", grant, None],
            ["POST", f"{source}/v1/send", send, None],
            ["POST", f"{target}/v1/grants", grant, None],
            ["POST", f"{source}/v1/send", send, None],  # a second upload of the same id
        )
        assert [status for status, _ in answers] == [502, 200, 200, 200, 409], answers
        assert "answered 403" in answers[0][1]["error"] and answers[2][1]["sha256"] == digest
        assert "already exists" in answers[4][1]["error"]
    finally:
        for node in (SOURCE_NODE, TARGET_NODE):
            node_exec(node, "sh", "-c", f"rm -f {ARCHIVES}/{archive}.tar {ARCHIVES}/{archive}.tar.sha256")


def test_an_archive_changed_on_the_target_after_its_transfer_rolls_the_migration_back(core, custom, pods, unique):
    """Container `a`'s archive is flipped on the target while `b`'s (with ballast) is still on the wire; the
    image build finds it and the migration rolls back with the source serving."""
    name = f"tamper-{unique}"
    spec = counter_pod(name, SOURCE_NODE, containers={"a": 8080, "b": 8081})
    spec["spec"]["containers"][1]["env"][2]["value"] = "192"
    core.create_namespaced_pod(NAMESPACE, spec)
    pods.append(name)
    pod = running_pod(core, name)
    before = read_counter(pod.status.pod_ip)
    migration = start_migration(custom, name, TARGET_NODE)
    uid = custom.get_namespaced_custom_object("podmigration.dev", "v1alpha1", NAMESPACE, "podmigrations", migration)[
        "metadata"
    ]["uid"]
    path = f"{ARCHIVES}/{uid}-a.tar"
    flipped: list[bytes] = []
    tamper = threading.Thread(
        target=lambda: flipped.append(
            node_exec(
                TARGET_NODE,
                "sh",
                "-c",
                (
                    f"for i in $(seq 3000); do [ -e {path} ] && break; sleep 0.02; done; "
                    f"printf X | dd of={path} bs=1 seek=2000 conv=notrunc status=none && echo flipped"
                ),
            )
        )
    )
    tamper.start()
    status = finished_migration(custom, migration)["status"]
    tamper.join(60)
    assert flipped == [b"flipped\n"], "the archive never reached the target"
    assert "on disk does not match" in status["message"], status
    assert_rolled_back(core, status, pod, before, outcome=("Failed", "RestoringFailed"))
