"""crictl queries about a pod's sandbox and containers: whether CRI-O restored them from checkpoints
(crictl inspect: info.restored) and which network namespace the sandbox pinned."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import validation
from .commands import Runner, Tools, run
from .errors import BadRequest, NotFound


def _dig(obj: Any, *keys: str) -> Any:
    """obj[k1][k2]... where any level may be missing or null (crictl leaves out what is empty)."""
    for key in keys:
        obj = (obj or {}).get(key)
    return obj


def _newest(items: list[dict[str, Any]]) -> dict[str, Any]:
    return max(items, key=lambda item: int(item.get("createdAt") or 0))


class Containers:
    def __init__(self, tools: Tools, runner: Runner = run) -> None:
        self.tools = tools
        self.run = runner

    def restored(self, namespace: str, pod: str) -> dict[str, bool]:
        """Maps each container name of the pod's newest sandbox to CRI-O's restored flag of its newest instance."""
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
        sandbox = _newest(sandboxes)
        listing = json.loads(self.run(self.tools.crictl("ps", "-a", "--pod", sandbox["id"], "-o", "json")))
        by_name: dict[str, list[dict[str, Any]]] = {}
        for container in listing.get("containers") or []:
            by_name.setdefault(container.get("metadata", {}).get("name", ""), []).append(container)
        result = {}
        for name, instances in sorted(by_name.items()):
            status = json.loads(self.run(self.tools.crictl("inspect", "-o", "json", _newest(instances)["id"])))
            result[name] = bool(_dig(status, "info", "restored"))
        return result

    def sandbox_netns(self, pod_uid: str) -> Path:
        """The network namespace CRI-O pinned for the pod's newest sandbox (inspectp
        info.runtimeSpec.linux.namespaces[type=network].path, under /var/run/netns); refused for hostNetwork pods,
        whose "pod" namespace is the node's own."""
        uid = validation.pod_uid(pod_uid)
        label = f"io.kubernetes.pod.uid={uid}"
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
