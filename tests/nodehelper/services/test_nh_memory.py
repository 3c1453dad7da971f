"""GET /v1/pods/<uid>/memory: the memory charged to the pod's cgroup, on cgroup v1 and v2."""

from __future__ import annotations

from pathlib import Path

import pytest
from nhcalls import call
from nhtestlib import RunningHelper

from nodehelper.errors import NotFound
from nodehelper.identity import tlsconfig
from nodehelper.node.cgroups import pod_memory_bytes

UID = "3f2a9c1e-0b7d-4c1a-9e2f-1234567890ab"


def test_v1_pod_cgroup_usage_through_the_api(
    helpers: tuple[RunningHelper, RunningHelper], pki: dict[str, Path]
) -> None:
    source, _ = helpers
    root = source.pods.cgroup_root
    pod = root / "memory/pm-worker-1/kubepods/besteffort" / f"pod{UID}"
    (pod / "crio-abc").mkdir(parents=True)
    (pod / "memory.usage_in_bytes").write_text("4976640\n")
    (pod / "crio-abc/memory.usage_in_bytes").write_text("4000000\n")
    (root / "unified").mkdir()  # hybrid host: the v1 memory controller wins
    ctx = tlsconfig.client_context(pki["node"])
    assert call(source, "GET", f"/v1/pods/{UID}/memory", ctx=ctx) == (200, {"bytes": 4976640})
    status, body = call(source, "GET", "/v1/pods/11111111-2222-3333-4444-555555555555/memory", ctx=ctx)
    assert status == 404 and "no memory cgroup" in body["error"]
    assert call(source, "GET", "/v1/pods/..%2Fetc/memory", ctx=ctx)[0] == 400
    assert call(source, "POST", f"/v1/pods/{UID}/memory", ctx=ctx)[0] == 405


def test_v2_systemd_slice_memory_current(tmp_path: Path) -> None:
    pod = tmp_path / "kubepods.slice/kubepods-burstable.slice" / f"kubepods-burstable-pod{UID.replace('-', '_')}.slice"
    pod.mkdir(parents=True)
    (pod / "memory.current").write_text("123456789\n")
    assert pod_memory_bytes(tmp_path, UID) == 123456789
    with pytest.raises(NotFound):
        pod_memory_bytes(tmp_path, "11111111-2222-3333-4444-555555555555")
