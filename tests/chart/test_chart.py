"""The packaged chart as a platform team and a GitOps tool see it: lint-clean, the same output at every render (no
key generated in a template), a schema that refuses what the operator would refuse at start, CRDs that strict
loaders and kustomize accept, and the image's version label following the chart's appVersion."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts/podmigration"
KUBE = ["--kube-version", "1.36.0"]

# A cold machine builds helm first (minutes, once: it is cached; tests/chart/conftest.py).
pytestmark = pytest.mark.timeout(900)


def render(helm: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm, "template", "pm", str(CHART), "-n", "pm-system", *KUBE, *args],
        capture_output=True,
        text=True,
        check=check,
    )


def objects(helm: str, *args: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(render(helm, *args).stdout) if d]


def find(docs: list[dict], kind: str, name: str) -> dict:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


class StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses a mapping with the same key twice (as kustomize and Flux do)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
        duplicates = {k for k in keys if keys.count(k) > 1}
        if duplicates:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate keys {duplicates}", node.start_mark)
        return super().construct_mapping(node, deep=deep)


def test_helm_lint_strict_is_clean(helm):
    done = subprocess.run([helm, "lint", "--strict", str(CHART), *KUBE], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[WARNING]" not in done.stdout and "[ERROR]" not in done.stdout, done.stdout


@pytest.mark.parametrize("values", [[], ["--set", "tls.certManager.enabled=true"], ["--set", "tls.existingCASecret=x"]])
def test_two_renders_are_byte_identical(helm, values):
    assert render(helm, *values).stdout == render(helm, *values).stdout


def test_no_template_generates_keys_or_reads_the_cluster():
    for template in (CHART / "templates").iterdir():
        code = re.sub(r"{{-? */\*.*?\*/ *-?}}", "", template.read_text(), flags=re.S)
        assert not re.search(r"\b(genCA|genSignedCert|genSelfSignedCert|genPrivateKey|lookup|rand\w+)\b", code), (
            template.name
        )


def test_the_chart_renders_no_field_the_operator_rewrites(helm):
    """caBundle is set at run time (identity/bootstrap.py), and the hand-over webhook whose matchConditions the
    operator rewrites is the operator's own object (handoverwebhook.py): the chart renders neither."""
    docs = objects(helm)
    for doc in docs:
        for webhook in doc.get("webhooks") or []:
            assert "caBundle" not in webhook["clientConfig"], doc["metadata"]["name"]
    assert not [d for d in docs if d["kind"] == "MutatingWebhookConfiguration"]
    operator = find(docs, "Deployment", "pm-operator")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in operator["env"]}
    assert env["PM_HANDOVER_WEBHOOK"] == "pm-statefulset-handover" and env["PM_OPERATOR_CLUSTERROLE"] == "pm-operator"
    find(docs, "ClusterRole", "pm-operator")


@pytest.mark.parametrize(("values", "mode"), [((), "pull"), (("--set", "operator.baseImages=copy"), "copy")])
def test_base_images_are_pulled_by_the_targets_kubelet_unless_copy_is_set(helm, values, mode):
    operator = find(objects(helm, *values), "Deployment", "pm-operator")["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"]: e.get("value") for e in operator["env"]}["PM_BASE_IMAGES"] == mode


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("operator.replica=3", "additional properties 'replica'"),
        ("eviction.default=Migrate", "/eviction/default"),
        ("operator.baseImages=preload", "/operator/baseImages"),
    ],
)
def test_the_schema_refuses_a_misspelled_value_and_a_wrong_enum(helm, value, complaint):
    done = render(helm, "--set", value, check=False)
    assert done.returncode != 0 and complaint in done.stderr, done.stderr


def _leaves(values: dict, schema: dict, path: str = "") -> list[str]:
    """Paths of values.yaml that the schema does not describe."""
    missing = []
    for key, value in values.items():
        sub = (schema.get("properties") or {}).get(key)
        if sub is None:
            missing.append(f"{path}{key}")
        elif isinstance(value, dict) and "properties" in sub:
            missing += _leaves(value, sub, f"{path}{key}.")
    return missing


def test_the_schema_covers_every_value_and_allows_no_other():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert _leaves(values, schema) == []

    def closed(node: dict, path: str) -> None:
        if "properties" in node:
            assert node.get("additionalProperties") is False, path
            for key, sub in node["properties"].items():
                closed(sub, f"{path}.{key}")

    closed(schema, "values")


def test_operator_replicas_spread_and_keep_one_through_a_drain(helm):
    docs = objects(helm)
    budget = find(docs, "PodDisruptionBudget", "pm-operator")
    assert budget["spec"]["maxUnavailable"] == 1
    pod = find(docs, "Deployment", "pm-operator")["spec"]["template"]["spec"]
    term = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_pull_secrets_names_labels_and_priority(helm):
    docs = objects(
        helm,
        *("--set", "imagePullSecrets[0].name=registry", "--set", "fullnameOverride=mig"),
        *("--set", "podLabels.team=platform", "--set", "podAnnotations.note=x"),
    )
    for kind, name in [("Deployment", "mig-operator"), ("DaemonSet", "mig-node-helper")]:
        template = find(docs, kind, name)["spec"]["template"]
        assert template["spec"]["imagePullSecrets"] == [{"name": "registry"}]
        assert template["metadata"]["labels"]["team"] == "platform"
        assert template["metadata"]["annotations"]["note"] == "x"
        assert template["metadata"]["labels"]["app.kubernetes.io/version"] == chart_yaml()["appVersion"]
    helper = find(docs, "DaemonSet", "mig-node-helper")["spec"]["template"]["spec"]
    assert helper["priorityClassName"] == "system-node-critical"
    assert all(d["metadata"]["labels"]["app.kubernetes.io/instance"] == "pm" for d in docs if d["kind"] != "Job")


def chart_yaml() -> dict:
    return yaml.safe_load((CHART / "Chart.yaml").read_text())


def test_chart_declares_the_kubernetes_it_needs():
    assert chart_yaml()["kubeVersion"] == ">=1.30.0-0"


def test_the_package_holds_the_crds_as_files(helm, tmp_path):
    subprocess.run([helm, "package", str(CHART), "-d", str(tmp_path)], check=True, capture_output=True)
    with tarfile.open(next(tmp_path.glob("podmigration-*.tgz"))) as archive:
        members = {m.name: m for m in archive.getmembers()}
    for name in ("crds/podmigration.yaml", "crds/kopf-peering.yaml", "values.schema.json"):
        assert members[f"podmigration/{name}"].isfile(), name


@pytest.mark.parametrize("crd", sorted((CHART / "crds").glob("*.yaml")), ids=lambda p: p.name)
def test_crds_load_strictly_and_the_top_level_copy_is_the_same(crd):
    assert list(yaml.load_all(crd.read_text(), Loader=StrictLoader))
    assert (ROOT / "crds" / crd.name).read_bytes() == crd.read_bytes()


def test_crds_build_with_kustomize(tmp_path):
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl (its kustomize) is not installed here; lib.sh's host packages install it")
    for crd in (CHART / "crds").glob("*.yaml"):
        shutil.copy(crd, tmp_path / crd.name)
    names = sorted(p.name for p in tmp_path.glob("*.yaml"))
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({"resources": names}))
    done = subprocess.run([kubectl, "kustomize", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert {d["metadata"]["name"] for d in yaml.safe_load_all(done.stdout)} >= {"podmigrations.podmigration.dev"}


def test_the_containerfile_labels_the_charts_app_version_and_names_no_registry():
    containerfile = (ROOT / "Containerfile").read_text()
    assert f"ARG APP_VERSION={chart_yaml()['appVersion']}\n" in containerfile
    base = re.search(r"^ARG BASE=(\S+)$", containerfile, re.M)
    assert base and "/" not in base.group(1) and re.search(r":\d", base.group(1)), "a pinned short name"
