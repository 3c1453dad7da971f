"""webhooks.clientAuth: the operator gets the CA and the names its webhooks answer (webhooks/server.py), from the
namespace's kube-root-ca.crt or a bundle the chart renders; off, the install notes say the webhooks answer anyone."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

CHART = Path(__file__).resolve().parents[2] / "charts/podmigration"

# A cold machine builds helm first (minutes, once: it is cached; tests/chart/conftest.py).
pytestmark = pytest.mark.timeout(900)


def render(helm: str, *values: str, chart: Path = CHART, show: str = "") -> subprocess.CompletedProcess[str]:
    args = [helm, "template", "pm", str(chart), "-n", "pm-system", "--kube-version", "1.36.0"]
    args += [a for v in values for a in ("--set", v)] + (["--show-only", show] if show else [])
    return subprocess.run(args, capture_output=True, text=True)


def notes(helm: str, tmp_path: Path, *values: str) -> str:
    """The install notes: `helm template` leaves NOTES.txt out, so a copy of the chart renders them as one YAML
    string (a field) through tpl."""
    copy = tmp_path / "chart"
    shutil.copytree(CHART, copy)
    (copy / "templates/NOTES.txt").rename(copy / "notes.txt")
    (copy / "templates/notes.yaml").write_text('notes: {{ tpl (.Files.Get "notes.txt") . | toJson }}\n')
    done = render(helm, *values, chart=copy, show="templates/notes.yaml")
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)["notes"]


def operator_pod(helm: str, *values: str) -> dict:
    done = render(helm, *values)
    assert done.returncode == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    return next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"], docs


def test_off_by_default_and_the_notes_say_what_that_leaves_open(helm, tmp_path):
    pod, docs = operator_pod(helm)
    env = {e["name"] for e in pod["containers"][0]["env"]}
    assert not {"PM_WEBHOOK_CLIENT_CA", "PM_WEBHOOK_CLIENT_NAMES"} & env
    assert "webhook-client-ca" not in {v["name"] for v in pod["volumes"]}
    said = notes(helm, tmp_path)
    assert "WARNING: the admission webhooks answer any caller" in said and "forged eviction review" in said


def test_on_the_operator_answers_the_named_certificates_of_the_namespaces_cluster_ca(helm, tmp_path):
    pod, docs = operator_pod(helm, "webhooks.clientAuth.enabled=true", "webhooks.clientAuth.allowedNames={a,b}")
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PM_WEBHOOK_CLIENT_NAMES"] == "a,b"
    mount = next(m for m in container["volumeMounts"] if m["name"] == "webhook-client-ca")
    assert env["PM_WEBHOOK_CLIENT_CA"] == mount["mountPath"] + "/ca.crt" and mount["readOnly"]
    volume = next(v for v in pod["volumes"] if v["name"] == "webhook-client-ca")
    assert volume["configMap"] == {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}
    assert not [d for d in docs if d["kind"] == "ConfigMap"]
    said = notes(helm, tmp_path, "webhooks.clientAuth.enabled=true")
    assert "WARNING" not in said and "only a client certificate with CN kube-apiserver-admission" in said


def test_a_ca_bundle_is_rendered_and_wins(helm):
    pod, docs = operator_pod(helm, "webhooks.clientAuth.enabled=true", "webhooks.clientAuth.caBundle=PEM")
    [config_map] = [d for d in docs if d["kind"] == "ConfigMap"]
    assert (config_map["metadata"]["name"], config_map["data"]) == ("pm-webhook-client-ca", {"ca.crt": "PEM"})
    volume = next(v for v in pod["volumes"] if v["name"] == "webhook-client-ca")
    assert volume["configMap"]["name"] == "pm-webhook-client-ca"


@pytest.mark.parametrize(
    "names", ["allowedNames=null", "allowedNames={}", "allowedNames={a\\,b}"], ids=["unset", "empty", "comma"]
)
def test_the_schema_refuses_no_name_or_a_name_with_a_comma(helm, names):
    done = render(helm, "webhooks.clientAuth.enabled=true", f"webhooks.clientAuth.{names}")
    assert done.returncode != 0 and "allowedNames" in done.stderr, done.stderr
