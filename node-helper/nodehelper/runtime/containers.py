"""crictl queries about a pod's sandbox and containers: whether CRI-O restored them from checkpoints
(crictl inspect: info.restored), which network namespace the sandbox pinned, and which pods are on the node."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nodehelper import validation
from nodehelper.errors import BadRequest, NotFound
from nodehelper.runtime.commands import Runner, Tools, run

#: Container states in which CRI-O has finished a restore (StartContainer restores; it failed: no container).
_RESTORE_DONE = frozenset({"CONTAINER_RUNNING", "CONTAINER_EXITED"})
#: The label the kubelet gives every container it creates: its pod's uid.
_POD_UID_LABEL = "io.kubernetes.pod.uid"


def _dig(obj: Any, *keys: str) -> Any:
    """obj[k1][k2]... where any level may be missing or null (crictl leaves out what is empty)."""
    for key in keys:
        obj = (obj or {}).get(key)
    return obj


def _newest(items: list[dict[str, Any]]) -> dict[str, Any]:
    return max(items, key=lambda item: int(item.get("createdAt") or 0))


def listed_pods(sandboxes: dict[str, Any], containers: dict[str, Any]) -> set[str]:
    """Pod uids in `crictl pods -o json` (metadata.uid) and `crictl ps -a -o json` (the kubelet's label)."""
    uids = {_dig(item, "metadata", "uid") for item in sandboxes.get("items") or []}
    uids |= {_dig(item, "labels", _POD_UID_LABEL) for item in containers.get("containers") or []}
    return {uid for uid in uids if isinstance(uid, str) and uid}


class Containers:
    def __init__(self, tools: Tools, runner: Runner = run) -> None:
        self.tools = tools
        self.run = runner

    def restored(self, namespace: str, pod: str) -> dict[str, bool]:
        """Maps each container name of the pod's newest sandbox to CRI-O's restored flag of its newest instance."""
        return {name: bool(_dig(status, "info", "restored")) for name, status in self.newest(namespace, pod).items()}

    def restore_done(self, namespace: str, pod: str) -> dict[str, bool]:
        """Per container name: whether its newest instance was restored and CRI-O is done restoring it (it runs,
        or ran and exited): from then on CRI-O reads nothing of the checkpoint again."""
        return {
            name: bool(_dig(status, "info", "restored")) and _dig(status, "status", "state") in _RESTORE_DONE
            for name, status in self.newest(namespace, pod).items()
        }

    def _sandbox(self, namespace: str, pod: str) -> dict[str, Any]:
        """The pod's newest sandbox, as crictl pods lists it."""
        validation.namespace(namespace)
        validation.pod_name(pod)
        listing = json.loads(self.run(self.tools.crictl("pods", "--namespace", namespace, "--name", pod, "-o", "json")))
        sandboxes = [
            item
            for item in listing.get("items") or []
            if item.get("metadata", {}).get("name") == pod and item.get("metadata", {}).get("namespace") == namespace
        ]
        if not sandboxes:
            raise NotFound(f"no sandbox of pod {namespace}/{pod} on this node")
        return _newest(sandboxes)

    def pod_uid(self, namespace: str, pod: str) -> str:
        """The uid of the pod of that name on this node (of its newest sandbox)."""
        return validation.pod_uid(_dig(self._sandbox(namespace, pod), "metadata", "uid"))

    def pods_here(self) -> set[str]:
        """The uids of every pod with a sandbox or a container (running or exited) on this node."""
        sandboxes = json.loads(self.run(self.tools.crictl("pods", "-o", "json")))
        containers = json.loads(self.run(self.tools.crictl("ps", "-a", "-o", "json")))
        return listed_pods(sandboxes, containers)

    def newest(self, namespace: str, pod: str) -> dict[str, dict[str, Any]]:
        """crictl inspect of the newest instance of each container of the pod's newest sandbox, by name."""
        sandbox = self._sandbox(namespace, pod)
        listing = json.loads(self.run(self.tools.crictl("ps", "-a", "--pod", sandbox["id"], "-o", "json")))
        by_name: dict[str, list[dict[str, Any]]] = {}
        for container in listing.get("containers") or []:
            by_name.setdefault(container.get("metadata", {}).get("name", ""), []).append(container)
        return {
            name: json.loads(self.run(self.tools.crictl("inspect", "-o", "json", _newest(instances)["id"])))
            for name, instances in sorted(by_name.items())
        }

    def sandbox_netns(self, pod_uid: str) -> Path:
        """The network namespace CRI-O pinned for the pod's newest sandbox (inspectp
        info.runtimeSpec.linux.namespaces[type=network].path, under /var/run/netns); refused for hostNetwork pods,
        whose "pod" namespace is the node's own."""
        uid = validation.pod_uid(pod_uid)
        label = f"{_POD_UID_LABEL}={uid}"
        listing = json.loads(self.run(self.tools.crictl("pods", "--label", label, "-o", "json")))
        sandboxes = [item for item in listing.get("items") or [] if item.get("metadata", {}).get("uid") == uid]
        if not sandboxes:
            raise NotFound(f"no sandbox of pod {uid} on this node")
        ready = [item for item in sandboxes if item.get("state") == "SANDBOX_READY"]
        sandbox = _newest(ready or sandboxes)
        status = json.loads(self.run(self.tools.crictl("inspectp", "-o", "json", sandbox["id"])))
        mode = _dig(status, "status", "linux", "namespaces", "options", "network")
        if mode != "POD":
            raise BadRequest(f"pod {uid} does not have its own network namespace (network mode {mode})")
        namespaces = _dig(status, "info", "runtimeSpec", "linux", "namespaces") or []
        paths = [ns.get("path") for ns in namespaces if ns.get("type") == "network" and ns.get("path")]
        if not paths:
            raise NotFound(f"sandbox {sandbox['id'][:13]} of pod {uid} has no pinned network namespace")
        return Path(paths[0])
