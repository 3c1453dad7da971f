"""The node-helper's host mounts. Its work directory shares the kubelet checkpoint mount when it lies inside it: only
then does the kubelet's archive move into the store by link(2) instead of a copy (docs/benchmarks-profile.md). The
node's binary directories are mounted read-only, only to see where CRIU is."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts/podmigration"

# A cold machine builds helm first (minutes, once: it is cached; tests/chart/conftest.py).
pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def helper_pod(helm: str):
    """helper_pod(*values): the node-helper pod spec the chart renders with these --set values."""
    return functools.partial(render_helper_pod, helm)


def render_helper_pod(helm: str, *values: str) -> dict:
    args = [helm, "template", "pm", str(CHART), "--kube-version", "1.36.0"] + [a for v in values for a in ("--set", v)]
    docs = yaml.safe_load_all(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    daemonset = next(d for d in docs if d and d["kind"] == "DaemonSet")
    return daemonset["spec"]["template"]["spec"]


def mounts(pod: dict) -> dict[str, str]:
    return {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}


def work_dir(pod: dict) -> str:
    return next(e["value"] for e in pod["containers"][0]["env"] if e["name"] == "PM_WORK_DIR")


def test_the_default_work_dir_is_inside_the_checkpoint_mount(helper_pod):
    pod = helper_pod()
    assert work_dir(pod).startswith(mounts(pod)["checkpoints"] + "/")
    assert "work" not in mounts(pod) and "work" not in {v["name"] for v in pod["volumes"]}


@pytest.mark.parametrize("elsewhere", ["/var/lib/podmigration", "/var/lib/kubelet/checkpoints-other"])
def test_a_work_dir_elsewhere_gets_a_mount_of_its_own(helper_pod, elsewhere):
    pod = helper_pod(f"nodeHelper.workDir={elsewhere}")
    assert work_dir(pod) == elsewhere and mounts(pod)["work"] == elsewhere
    volume = next(v for v in pod["volumes"] if v["name"] == "work")
    assert volume["hostPath"]["path"] == elsewhere


def test_the_archive_links_directory_is_crios_own_not_the_nodes_root(helper_pod):
    """Only CRI-O's working directory is mounted for the links: by default a directory of its own, never the whole
    root file system unless asked for (the documented fallback)."""
    pod = helper_pod()
    volume = next(v for v in pod["volumes"] if v["name"] == "runtime-cwd")
    assert volume["hostPath"] == {"path": "/var/lib/podmigration/runtime-cwd", "type": "Directory"}
    assert all(v.get("hostPath", {}).get("path") != "/" for v in pod["volumes"])
    fallback = helper_pod("nodeHelper.runtimeWorkingDir=/")
    assert next(v for v in fallback["volumes"] if v["name"] == "runtime-cwd")["hostPath"]["path"] == "/"
    assert "runtime-cwd" not in mounts(helper_pod("nodeHelper.restoreFrom=image"))


def test_the_criu_search_path_is_mounted_read_only_each_directory_at_its_index(helper_pod):
    pod = helper_pod()
    searched = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["PM_CRIU_SEARCH_PATH"] == ":".join(searched)
    volumes = {v["name"]: v for v in pod["volumes"]}
    by_name = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    for i, node_dir in enumerate(searched):
        assert volumes[f"criu-search-{i}"]["hostPath"] == {"path": node_dir, "type": "DirectoryOrCreate"}
        assert by_name[f"criu-search-{i}"] == {
            "name": f"criu-search-{i}",
            "mountPath": f"/host/criu-search/{i}",
            "readOnly": True,
            "mountPropagation": "HostToContainer",
        }
    other = helper_pod("nodeHelper.criuSearchPath={/opt/criu/bin}")
    assert [m for m in mounts(other) if m.startswith("criu-search")] == ["criu-search-0"]
    assert next(v for v in other["volumes"] if v["name"] == "criu-search-0")["hostPath"]["path"] == "/opt/criu/bin"


def test_the_schema_takes_only_absolute_directories_for_the_criu_search_path(helm):
    done = subprocess.run(
        [helm, "template", "pm", str(CHART), "--set", "nodeHelper.criuSearchPath={usr/bin}"],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "/nodeHelper/criuSearchPath/0" in done.stderr, done.stderr
