"""Finds a pod's cgroups whatever the cgroup version and driver (cgroupfs `pod<uid>`, systemd
`*-pod<uid_with_underscores>.slice`), so the freezer, the killer and the memory figure agree on what a pod is."""

from __future__ import annotations

import os
import re
from pathlib import Path

from nodehelper import validation
from nodehelper.errors import NotFound

_MAX_DEPTH = 8


def hierarchy(cgroup_root: Path, controller: str) -> Path:
    """The v1 hierarchy of `controller` when it is mounted on its own (also on hybrid hosts), else the v2 root."""
    v1 = cgroup_root / controller
    return v1 if v1.is_dir() else cgroup_root


def pod_cgroups(base: Path, pod_uid: str) -> list[Path]:
    """Every cgroup of the pod under `base` (one per QoS placement; normally exactly one)."""
    uid = validation.pod_uid(pod_uid)
    pod_dir = re.compile(rf"(?:^|.*-)pod(?:{re.escape(uid)}|{re.escape(uid.replace('-', '_'))})(?:\.slice)?")
    found: list[Path] = []
    base_depth = len(base.parts)
    for dirpath, dirnames, _ in os.walk(base):
        here = Path(dirpath)
        if pod_dir.fullmatch(here.name):
            found.append(here)
            dirnames.clear()
        elif len(here.parts) - base_depth >= _MAX_DEPTH:
            dirnames.clear()
    return found


def container_cgroups(base: Path, pod_uid: str, control: str) -> list[Path]:
    """The pod's container cgroups that have the `control` file; conmon's are left out, as it must keep running
    (it shares the pod cgroup or has its own crio-conmon-*.scope)."""
    return [
        pod / name
        for pod in pod_cgroups(base, pod_uid)
        for name in sorted(os.listdir(pod))
        if "conmon" not in name and (pod / name / control).is_file()
    ]


def processes(cgroup: Path) -> list[int]:
    """Host pids of every process in the cgroup and its descendants; a cgroup already removed holds none."""
    pids: list[int] = []
    for dirpath, _, _ in os.walk(cgroup):
        try:
            text = (Path(dirpath) / "cgroup.procs").read_text()
        except FileNotFoundError:
            continue
        pids.extend(int(line) for line in text.split())
    return pids


def pod_memory_bytes(cgroup_root: Path, pod_uid: str) -> int:
    """Memory charged to the pod's cgroup (v1 memory.usage_in_bytes, v2 memory.current): what a dump has to write
    is at most this, so it bounds how long the pod stays frozen."""
    base = hierarchy(cgroup_root, "memory")
    control = "memory.current" if base == cgroup_root else "memory.usage_in_bytes"
    files = [pod / control for pod in pod_cgroups(base, pod_uid) if (pod / control).is_file()]
    if not files:
        raise NotFound(f"no memory cgroup of pod {pod_uid} under {cgroup_root} on this node")
    return sum(int(f.read_text()) for f in files)
