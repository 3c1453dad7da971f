"""What the figures depend on besides the code: the machine, the versions the nodes really run, the commit, and
whoever else used the shared cluster while the benchmark ran."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import e2elib as lib

from .cluster import STATE, Cluster, run_on

TOOLS = {
    "runc": "runc --version | head -1",
    "CRIU": "criu --version | head -1",
    "conmon": "conmon --version | head -1",
    "buildah": "buildah --version",
}


def _run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, cwd=lib.REPO, timeout=60).stdout.strip()


def machine() -> dict[str, str]:
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    return {
        "nproc": _run("nproc"),
        "memory": f"{int(meminfo['MemTotal'].split()[0]) / (1 << 20):.1f} GiB",
        "kernel": platform.release(),
        "CPU": model,
        "disk": _run("df", "--output=source,fstype,size", str(STATE)).splitlines()[-1] + " (holds the nodes'"
        " directories: container storage, kubelet archives, CRIU images)",
    }


def versions(cluster: Cluster) -> dict[str, str]:
    """Read from the nodes themselves: the kubelet's and CRI-O's as the source Node reports them, the tools by
    asking them on the source node."""
    info = cluster.core.read_node(cluster.source).status.node_info
    found = {
        "Kubernetes (kubelet)": info.kubelet_version,
        "CRI-O": info.container_runtime_version,
        "node OS": info.os_image,
    }
    for name, command in TOOLS.items():
        found[name] = run_on(cluster.source, command).strip()
    found["podmigration image"] = (STATE / "project-image").read_text().strip()
    found["commit"] = _run("git", "describe", "--always", "--dirty")
    return found


@dataclass
class Activity:
    """Samples, once per measurement, of what else ran: pods in the cluster not made by the benchmark (outside the
    operator's namespace) and the host's load average."""

    started: datetime = field(default_factory=lambda: datetime.now().astimezone())
    foreign_pods: list[int] = field(default_factory=list)
    load: list[float] = field(default_factory=list)

    def sample(self, cluster: Cluster) -> None:
        """One sample; none while the cluster does not answer (its absence is reported with the failures)."""
        try:
            pods = cluster.core.list_pod_for_all_namespaces().items
        except Exception:
            return
        self.foreign_pods.append(
            sum(
                1
                for p in pods
                if p.metadata.namespace != lib.OPERATOR_NAMESPACE and not p.metadata.name.startswith("pmb-")
            )
        )
        self.load.append(os.getloadavg()[0])

    def foreign_migrations(self, cluster: Cluster) -> int:
        """PodMigrations others created since the start (the benchmark deletes its own)."""
        try:
            items = cluster.custom.list_cluster_custom_object(lib.GROUP, lib.VERSION, lib.PLURAL)["items"]
        except Exception:
            return 0
        return sum(
            1
            for m in items
            if datetime.fromisoformat(m["metadata"]["creationTimestamp"].replace("Z", "+00:00")) >= self.started
        )
