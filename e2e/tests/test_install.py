"""The install a platform team gets (make install: the image built from the Containerfile, the packaged chart): the
certificates the operator issued at its first start are shared by its replicas and trusted by every webhook, the
hand-over webhook is the operator's object and goes with the release, the image carries the chart's version, and
`kubectl migrate check` judges the nodes."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tarfile
from pathlib import Path

import yaml
from e2elib import OPERATOR_NAMESPACE, REPO, SOURCE_NODE, node_exec, operator_pods, wait_for
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


def node_check() -> tuple[subprocess.CompletedProcess[str], dict[str, dict[str, str]]]:
    """`kubectl migrate check` and its table: node -> column -> cell (cut at the header's column starts)."""
    done = subprocess.run(["kubectl", "migrate", "check"], capture_output=True, text=True, timeout=120)
    assert done.stdout, done.stderr
    header, *lines = done.stdout.splitlines()
    columns = ["NODE", "RUNTIME", "KUBELET", "HELPER", "CRI-O RESTORES", "CRIU", "FREE", "VERDICT"]
    starts = [header.index(c) for c in columns] + [None]
    rows = {}
    for line in lines:
        if line.startswith(("  fix ", "CRIU's version")):  # the table ends
            break
        cells = [line[a:b].strip() for a, b in zip(starts, starts[1:], strict=False)]
        rows[cells[0]] = dict(zip(columns, cells, strict=True))
    return done, rows


def test_the_node_check_finds_every_node_ready(core):
    """Ready, and read from each node's helper through the API server's pod proxy (GET /v1/node): CRI-O restores,
    runc would find criu, and the free space is there."""
    done, rows = node_check()
    assert done.returncode == 0, done.stdout + done.stderr
    for node in core.list_node().items:
        row = rows.get(node.metadata.name)
        assert row and row["VERDICT"] == "ready" and row["CRI-O RESTORES"] == "yes", done.stdout
        assert row["CRIU"].endswith("/criu") and row["FREE"].endswith(" GiB"), done.stdout


def test_the_node_check_names_a_node_without_criu_and_the_fix(core):
    """criu renamed inside one node: the check names that node NOT READY with the fix, the others stay ready; the
    binary is put back afterwards (the helper answers from a cache of 5 s, so both are waited for)."""
    _, rows = node_check()
    criu = rows[SOURCE_NODE]["CRIU"]
    assert criu.endswith("/criu"), rows
    hidden = f"{criu}.pm-e2e-hidden"

    def criu_on_source(expected: str) -> tuple[subprocess.CompletedProcess[str], dict] | None:
        done, rows = node_check()
        return (done, rows) if rows.get(SOURCE_NODE, {}).get("CRIU") == expected else None

    node_exec(SOURCE_NODE, "mv", "--", criu, hidden)
    try:
        done, rows = wait_for(f"the check to miss criu on {SOURCE_NODE}", lambda: criu_on_source("missing"), 60, 2)
        assert done.returncode == 1, done.stdout + done.stderr
        assert rows[SOURCE_NODE]["VERDICT"] == "NOT READY", done.stdout
        searched = "/usr/local/sbin, /usr/local/bin, /usr/sbin, /usr/bin"
        assert f"fix {SOURCE_NODE}: CRIU not found in {searched} on the node: install CRIU 4.0 or later" in done.stdout
        assert "or set nodeHelper.criuSearchPath to where it is" in done.stdout
        others = {name: row for name, row in rows.items() if name != SOURCE_NODE}
        assert others and all(row["VERDICT"] == "ready" for row in others.values()), done.stdout
    finally:
        node_exec(SOURCE_NODE, "mv", "--", hidden, criu)
    wait_for(f"the check to find criu on {SOURCE_NODE} again", lambda: criu_on_source(criu), 60, 2)
