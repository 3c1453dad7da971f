"""Whether CRI-O restored a pod's containers from checkpoints (crictl inspect: info.restored)."""

from __future__ import annotations

import json
from typing import Any

from . import validation
from .commands import Runner, Tools, run
from .errors import NotFound


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
            result[name] = bool((status.get("info") or {}).get("restored", False))
        return result
