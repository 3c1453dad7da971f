"""The install a platform team gets (make install: the image built from the Containerfile, the packaged chart): the
certificates the operator issued at its first start are shared by its replicas and trusted by every webhook, the
hand-over webhook is the operator's object and goes with the release, and the image carries the chart's version."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tarfile
from pathlib import Path

import yaml
from e2elib import OPERATOR_NAMESPACE, REPO, operator_pods
from kubernetes import client

RELEASE = "podmigration"


def secret(core: client.CoreV1Api, name: str) -> dict[str, bytes]:
    data = core.read_namespaced_secret(name, OPERATOR_NAMESPACE).data
    return {k: base64.b64decode(v) for k, v in data.items()}


def read_in(pod: str, path: str) -> bytes:
    done = subprocess.run(
        ["kubectl", "exec", "-n", OPERATOR_NAMESPACE, pod, "--", "cat", path], capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_operator_replicas_share_the_ca_and_the_webhook_certificate(core):
    ca, webhook = secret(core, f"{RELEASE}-ca"), secret(core, f"{RELEASE}-webhook-tls")
    replicas = [p.metadata.name for p in operator_pods(core)]
    assert len(replicas) == 2, replicas
    for pod in replicas:
        assert read_in(pod, "/run/podmigration/ca/tls.crt") == ca["tls.crt"], pod
        assert read_in(pod, "/run/podmigration/webhook-tls/tls.crt") == webhook["tls.crt"], pod


def test_every_webhook_trusts_the_operators_serving_ca(api):
    admission = client.AdmissionregistrationV1Api(api)
    ca = base64.b64encode(secret(client.CoreV1Api(api), f"{RELEASE}-webhook-tls")["ca.crt"]).decode()
    configurations = [
        *admission.list_validating_webhook_configuration().items,
        *admission.list_mutating_webhook_configuration().items,
    ]
    ours = [c for c in configurations if c.metadata.name.startswith(f"{RELEASE}-")]
    names = {c.metadata.name for c in ours}
    assert {f"{RELEASE}-{n}" for n in ("eviction", "statefulset-handover", "handover-guard", "preflight")} <= names
    for configuration in ours:
        for webhook in configuration.webhooks:
            assert webhook.client_config.ca_bundle == ca, (configuration.metadata.name, webhook.name)


def test_the_handover_webhook_belongs_to_the_release(api):
    handover = client.AdmissionregistrationV1Api(api).read_mutating_webhook_configuration(
        f"{RELEASE}-statefulset-handover"
    )
    role = client.RbacAuthorizationV1Api(api).read_cluster_role(f"{RELEASE}-operator")
    assert [(r.kind, r.uid) for r in handover.metadata.owner_references] == [("ClusterRole", role.metadata.uid)]


def test_the_operator_runs_unprivileged_and_the_image_carries_the_chart_version(core):
    chart = yaml.safe_load((REPO / "charts/podmigration/Chart.yaml").read_text())
    for pod in operator_pods(core):
        assert pod.metadata.labels["app.kubernetes.io/version"] == chart["appVersion"]
        assert read_in(pod.metadata.name, "/proc/self/status").count(b"Uid:\t65532") == 1
    ref = (REPO / ".e2e/project-image").read_text().strip()
    cache = Path(os.environ.get("PM_CACHE") or Path.home() / ".cache/podmigration")
    assert (
        image_labels(cache / f"images/podmigration-{ref.rsplit(':', 1)[1]}.tar")["org.opencontainers.image.version"]
        == (chart["appVersion"])
    )


def image_labels(archive: Path) -> dict[str, str]:
    """The labels in the config of the OCI archive e2e/cluster/project-image.sh built from the Containerfile."""
    with tarfile.open(archive) as tar:

        def blob(digest: str) -> dict:
            return json.load(tar.extractfile(f"blobs/sha256/{digest.split(':', 1)[1]}"))

        index = json.load(tar.extractfile("index.json"))
        manifest = blob(index["manifests"][0]["digest"])
        return blob(manifest["config"]["digest"])["config"]["Labels"]


def test_the_node_check_finds_every_node_ready(core):
    """Ready, and read from each node's helper through the API server's pod proxy (GET /v1/node): CRI-O restores,
    and the free space is there."""
    done = subprocess.run(["kubectl", "migrate", "check"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    for node in core.list_node().items:
        assert any(
            line.split()[:1] == [node.metadata.name] and line.endswith("ready") and " yes " in line and " GiB " in line
            for line in done.stdout.splitlines()
        ), done.stdout
