"""Freezes and thaws a pod's container cgroups, so the source stops changing state after its checkpoint
without being killed (the kubelet checkpoint API leaves it running)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from nodehelper.errors import Conflict, HelperError, NotFound
from nodehelper.node import cgroups


@dataclass(frozen=True)
class _Interface:
    """One cgroup version's freezer: the file we write and how to read the state the kernel reached."""

    control: str
    frozen: str
    thawed: str

    def value(self, frozen: bool) -> str:
        return self.frozen if frozen else self.thawed

    def wanted(self, cgroup: Path) -> str:
        return (cgroup / self.control).read_text().strip()

    def reached(self, cgroup: Path) -> str:
        if self.control == "cgroup.freeze":
            events = dict(
                line.split(" ", 1) for line in (cgroup / "cgroup.events").read_text().splitlines() if " " in line
            )
            return events.get("frozen", "").strip()
        return self.wanted(cgroup)  # v1 freezer.state reads FREEZING until every task is frozen


V1 = _Interface("freezer.state", "FROZEN", "THAWED")
V2 = _Interface("cgroup.freeze", "1", "0")


class Freezer:
    def __init__(self, cgroup_root: Path, timeout: float = 10.0) -> None:
        self.cgroup_root = cgroup_root
        self.timeout = timeout

    def container_cgroups(self, pod_uid: str) -> list[tuple[Path, _Interface]]:
        base = cgroups.hierarchy(self.cgroup_root, "freezer")
        iface = V2 if base == self.cgroup_root else V1
        return [(cgroup, iface) for cgroup in cgroups.container_cgroups(base, pod_uid, iface.control)]

    def freeze(self, pod_uid: str) -> list[str]:
        return self._set(pod_uid, frozen=True)

    def thaw(self, pod_uid: str) -> list[str]:
        return self._set(pod_uid, frozen=False)

    def frozen(self, pod_uid: str) -> list[str]:
        """The pod's container cgroups, each checked frozen now; Conflict names any that is not (a container
        started, restarted or was thawed since the freeze: it can change what is being copied)."""
        cgroups = self.container_cgroups(pod_uid)
        if not cgroups:
            raise NotFound(f"no container cgroups of pod {pod_uid} under {self.cgroup_root} on this node")
        running = [str(c) for c, i in cgroups if i.reached(c) != i.value(True)]
        if running:
            raise Conflict(f"pod {pod_uid} has containers that are not frozen: {', '.join(running)}")
        return [str(c) for c, _ in cgroups]

    def _set(self, pod_uid: str, frozen: bool) -> list[str]:
        """Writes the wanted state where it differs, then waits until the kernel reports it everywhere."""
        cgroups = self.container_cgroups(pod_uid)
        if not cgroups:
            raise NotFound(f"no container cgroups of pod {pod_uid} under {self.cgroup_root} on this node")
        for cgroup, iface in cgroups:
            if iface.wanted(cgroup) != iface.value(frozen):
                (cgroup / iface.control).write_text(iface.value(frozen))
        deadline = time.monotonic() + self.timeout
        pending = list(cgroups)
        while pending:
            pending = [(c, i) for c, i in pending if i.reached(c) != i.value(frozen)]
            if not pending:
                break
            if time.monotonic() > deadline:
                names = ", ".join(str(c) for c, _ in pending)
                state = "frozen" if frozen else "thawed"
                raise HelperError(f"cgroups of pod {pod_uid} did not become {state} within {self.timeout}s: {names}")
            time.sleep(0.01)
        return [str(c) for c, _ in cgroups]
