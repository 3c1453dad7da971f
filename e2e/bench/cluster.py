"""The local cluster as the benchmark reaches it: the API, the two workers, their kubelets and their directories.

The baselines do by hand what a person would do on this machine, so they need more than the API: the kubelet's
checkpoint endpoint (with the API server's kubelet client certificate from the cluster PKI) and the nodes'
directories, which are plain directories of this host (see e2e/README.md, "What runs where")."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import quote

import e2elib as lib
import requests
from kubernetes import client, config

STATE = Path(os.environ.get("PM_STATE", lib.REPO / ".e2e"))
PKI = STATE / "pki"
# Directories a node sees at these paths are bind mounts of STATE/nodes/<node>/data/<name> (e2e/cluster/node-root.sh).
BRIDGE = "pm-br0"  # the host bridge of whichever checkout's local cluster runs (e2e/cluster/topology.sh)
OPERATOR, HELPERS = "deploy/podmigration-operator", "ds/podmigration-node-helper"
NODE_BINDS = {PurePosixPath("/var/lib/kubelet"): "kubelet", PurePosixPath("/var/lib/containers"): "containers"}


def kubectl(*args: str) -> str:
    """kubectl in the operator's namespace (KUBECONFIG from the environment); its output."""
    done = subprocess.run(
        ["kubectl", "-n", lib.OPERATOR_NAMESPACE, *args], check=True, capture_output=True, text=True, timeout=180
    )
    return done.stdout


def run_on(node: str, script: str, timeout: float = 1800) -> str:
    """A shell script run on the node (e2elib's way in), with room for the steps that take minutes at 4 GiB
    (e2elib.node_exec allows 300 s); its stdout."""
    argv = shlex.split(lib.NODE_EXEC.format(node=node)) + ["sh", "-c", script]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"on {node}: {script}: exit {done.returncode}: {done.stderr.strip()[-1500:]}")
    return done.stdout


def threads(node: str, pid: str) -> str:
    """State and wait channel of each thread of a process on the node (`pid`: a shell expression): what a workload
    that stopped answering is doing."""
    script = (
        f'p={pid}; for t in /proc/$p/task/*; do echo "$(basename $t) $(cut -d" " -f3 $t/stat) $(cat $t/wchan)"; done'
    )
    try:
        return " | ".join(run_on(node, script, timeout=60).splitlines())
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return f"(threads unknown: {exc})"


def wait_installed() -> None:
    """Until the operator and every node-helper run their current version (others may be reinstalling them)."""
    for workload in (OPERATOR, HELPERS):
        kubectl("rollout", "status", workload, "--timeout=170s")


@dataclass
class Cluster:
    core: client.CoreV1Api = field(default_factory=client.CoreV1Api)
    custom: client.CustomObjectsApi = field(default_factory=client.CustomObjectsApi)
    source: str = lib.SOURCE_NODE
    target: str = lib.TARGET_NODE

    @classmethod
    def connect(cls) -> Cluster:
        config.load_kube_config()
        return cls()

    def recover(self, timeout: float = 3600) -> None:
        """Waits until the cluster serves again with both workers Ready and the operator and helpers installed,
        reading KUBECONFIG anew each time: on this shared machine another checkout's CI may take the cluster down
        (and bring up its own meanwhile). When no cluster at all has run for a while, brings this checkout's up
        (`make install`, what `make bench` does first)."""
        deadline = time.monotonic() + timeout
        absent = 0
        while True:
            absent = absent + 1 if subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode else 0
            if absent == 2:
                subprocess.run(["make", "install"], cwd=lib.REPO, capture_output=True, timeout=1800)
            try:
                config.load_kube_config()
                self.core, self.custom = client.CoreV1Api(), client.CustomObjectsApi()
                for node in (self.source, self.target):
                    ready = [c for c in self.core.read_node(node).status.conditions if c.type == "Ready"]
                    if not ready or ready[0].status != "True":
                        raise RuntimeError(f"node {node} is not Ready")
                wait_installed()
                return
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the cluster did not come back within {timeout:.0f} s: {exc}") from exc
                time.sleep(30)

    def node_ip(self, node: str) -> str:
        addresses = self.core.read_node(node).status.addresses
        return next(a.address for a in addresses if a.type == "InternalIP")

    def host_path(self, node: str, inside: PurePosixPath) -> Path:
        """Where a file the node sees at `inside` lives on this host (only under the node's bind mounts)."""
        for mount, name in NODE_BINDS.items():
            if inside.is_relative_to(mount):
                return STATE / "nodes" / node / "data" / name / inside.relative_to(mount)
        raise ValueError(f"{inside} is not under a bind mount of node {node}: {sorted(map(str, NODE_BINDS))}")

    def kubelet_checkpoint(self, node: str, pod: str, container: str) -> PurePosixPath:
        """POST /checkpoint/<ns>/<pod>/<container> to the node's kubelet, as `kubectl` cannot; the archive's path as
        the node sees it."""
        url = (
            f"https://{self.node_ip(node)}:10250/checkpoint/{quote(lib.NAMESPACE)}/{quote(pod)}/{quote(container)}"
            "?timeout=1800"
        )
        answer = requests.post(
            url,
            cert=(PKI / "apiserver-kubelet-client.crt", PKI / "apiserver-kubelet-client.key"),
            verify=PKI / "ca.crt",
            timeout=1860,
        )
        answer.raise_for_status()
        return PurePosixPath(answer.json()["items"][0])

    def remove_images(self, node: str, wanted: Callable[[str], bool], timeout: float = 180) -> int:
        """Removes the node's images whose repository is `wanted` (by tag, or by digest once untagged), retrying
        while a container that used one is still being removed; returns how many there were."""
        deadline = time.monotonic() + timeout
        found = None
        while True:
            listing = json.loads(lib.node_exec(node, "crictl", "images", "-o", "json"))["images"]
            # An image that also has a name not wanted is another image given a wanted name (the node-helper's
            # settle names a restored pod's base image so): only that name goes, never the image by its id.
            targets = []
            for i in listing:
                names = (i.get("repoTags") or []) + (i.get("repoDigests") or [])
                ours = [n for n in names if wanted(re.split("[:@]", n, maxsplit=1)[0])]
                if ours:
                    tags = i.get("repoTags") or []
                    kept = [n for n in tags if n not in ours]
                    targets += [n for n in tags if n in ours] if kept else [i["id"]]
            found = len(targets) if found is None else found
            if not targets:
                return found
            if time.monotonic() > deadline:
                raise RuntimeError(f"images {targets} still on {node} after {timeout:.0f} s")
            for image in targets:
                lib.node_exec(node, "crictl", "rmi", image, check=False)
            time.sleep(2)
