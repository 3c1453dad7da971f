"""The node-helper's work directory shares the kubelet checkpoint mount when it lies inside it: only then does the
kubelet's archive move into the store by link(2) instead of a copy (docs/benchmarks-profile.md)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

CHART = Path(__file__).resolve().parents[2] / "charts/podmigration"
HELM = shutil.which("helm") or next(iter(sorted(glob.glob(os.path.expanduser(
    "~/.cache/podmigration/bin/helm-*/helm")))), None)

pytestmark = pytest.mark.skipif(HELM is None, reason="no helm client (e2e/cluster/build-helm.sh builds one)")


def helper_pod(*values: str) -> dict:
    args = [HELM, "template", "pm", str(CHART)] + [a for v in values for a in ("--set", v)]
    docs = yaml.safe_load_all(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    daemonset = next(d for d in docs if d and d["kind"] == "DaemonSet")
    return daemonset["spec"]["template"]["spec"]


def mounts(pod: dict) -> dict[str, str]:
    return {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}


def work_dir(pod: dict) -> str:
    return next(e["value"] for e in pod["containers"][0]["env"] if e["name"] == "PM_WORK_DIR")


def test_the_default_work_dir_is_inside_the_checkpoint_mount():
    pod = helper_pod()
    assert work_dir(pod).startswith(mounts(pod)["checkpoints"] + "/")
    assert "work" not in mounts(pod) and "work" not in {v["name"] for v in pod["volumes"]}


@pytest.mark.parametrize("elsewhere", ["/var/lib/podmigration", "/var/lib/kubelet/checkpoints-other"])
def test_a_work_dir_elsewhere_gets_a_mount_of_its_own(elsewhere):
    pod = helper_pod(f"nodeHelper.workDir={elsewhere}")
    assert work_dir(pod) == elsewhere and mounts(pod)["work"] == elsewhere
    volume = next(v for v in pod["volumes"] if v["name"] == "work")
    assert volume["hostPath"]["path"] == elsewhere
