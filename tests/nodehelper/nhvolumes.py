"""An emptyDir as the kubelet makes it, a frozen container, and the pack, send and unpack calls of a volume copy."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nhcalls import call
from nhtestlib import RunningHelper, grant

SOURCE_UID = "3f2a9c1e-0b7d-4c1a-9e2f-1234567890ab"
TARGET_UID = "11111111-2222-3333-4444-555555555555"
MTIME = 1_700_000_000


def empty_dir(helper: RunningHelper, uid: str, volume: str, ready: bool = True) -> Path:
    """What the kubelet makes: the volume directory, then the plugin's ready marker."""
    directory = helper.pods_dir / uid / "volumes/kubernetes.io~empty-dir" / volume
    directory.mkdir(parents=True, mode=0o777)
    if ready:
        mark_ready(helper, uid, volume)
    return directory


def mark_ready(helper: RunningHelper, uid: str, volume: str) -> None:
    marker = helper.pods_dir / uid / "plugins/kubernetes.io~empty-dir" / volume / "ready"
    marker.parent.mkdir(parents=True)
    marker.touch()


def fill_volume(root: Path) -> None:
    (root / "sub/empty").mkdir(parents=True)
    (root / "sub/empty").chmod(0o700)
    (root / "sub/owned").write_text("owned\n")
    (root / "sub/owned").chmod(0o640)
    (root / "tool").write_text("#!/bin/sh\n")
    (root / "tool").chmod(0o4755)
    (root / "sub").chmod(0o2755)  # fsGroup's setgid directory
    (root / "link").symlink_to("sub/owned")
    os.link(root / "sub/owned", root / "hard")
    (root / "seq").write_bytes(b"".join(b"%d\n" % i for i in range(1, 101)))
    for path in [root / "link", root / "sub/owned", root / "tool", root / "seq", root / "sub/empty", root / "sub"]:
        os.utime(path, (MTIME, MTIME), follow_symlinks=False)
    if os.geteuid() == 0:
        os.chown(root / "sub/owned", 1234, 2345)


def frozen_container(helper: RunningHelper, uid: str, name: str = "app1", state: str = "FROZEN") -> Path:
    """A cgroup v1 container cgroup of the pod as the freezer left it (the operator freezes before it packs)."""
    cgroup = helper.pods_dir.parent / "cgroup/freezer/kubepods/burstable" / f"pod{uid}" / name
    cgroup.mkdir(parents=True)
    (cgroup / "freezer.state").write_text(state)
    return cgroup


def pack_and_send(
    source: RunningHelper, target: RunningHelper, ctx: Any, fill: Callable[[Path], None] = fill_volume
) -> dict[str, Any]:
    fill(empty_dir(source, SOURCE_UID, "data"))
    frozen_container(source, SOURCE_UID)
    status, packed = call(
        source, "POST", "/v1/volumes/pack", {"podUID": SOURCE_UID, "volume": "data", "id": "mig1-vol-data"}, ctx=ctx
    )
    assert status == 200, packed
    grant(target, "mig1-vol-data", sha256=packed["sha256"], size=packed["bytes"])
    request = {"id": "mig1-vol-data", "target": target.url, "targetNode": "target"}
    status, sent = call(source, "POST", "/v1/send", request, ctx=ctx)
    assert status == 200 and sent["sha256"] == packed["sha256"]
    return packed


def unpack(target: RunningHelper, request: dict[str, Any], ctx: Any) -> tuple[int, dict[str, Any]]:
    """POST /v1/volumes/unpack with the sha256 and size recorded when the archive was stored, as the operator
    sends what the pack answered."""
    info = target.store.info(request["id"])
    return call(target, "POST", "/v1/volumes/unpack", {"sha256": info.sha256, "bytes": info.bytes, **request}, ctx=ctx)


def pack_request(helper: RunningHelper, ctx: Any) -> tuple[int, dict[str, Any]]:
    return call(
        helper, "POST", "/v1/volumes/pack", {"podUID": SOURCE_UID, "volume": "data", "id": "mig1-vol-data"}, ctx=ctx
    )
