"""The node-helpers as the operator sees them: one per node, found from the DaemonSet's pods, and the error a call
to one of them raises (clients/helperclient.py makes the calls)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..api.types import Obj


class HelperError(RuntimeError):
    """A helper call failed; the message names the node and endpoint and carries the helper's own error."""

    def __init__(
        self, node: str, endpoint: str, message: str, status: int | None = None, *, unreachable: bool = False
    ) -> None:
        super().__init__(f"node-helper on {node}: {endpoint}: {message}")
        self.node = node
        #: The helper's HTTP status, when it answered (404: the pod or archive is not on that node).
        self.status = status
        #: No answer at all (no ready helper pod, connection refused or cut): the helper may be restarting.
        self.unreachable = unreachable


@dataclass(frozen=True)
class Helper:
    node: str
    url: str
    ready: bool
    #: Which run of the helper this is (pod uid and container restarts): it changes when the helper restarts.
    incarnation: str = field(default="", compare=False)


def _pod_ready(pod: Obj) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
    )


def helpers_from_pods(pods: list[Obj], port: int) -> dict[str, Helper]:
    """Map node name to its helper (hostNetwork pods: the node IP is the helper's address).

    During a DaemonSet rollout a node can have two helper pods; the ready one wins.
    """
    found: dict[str, Helper] = {}
    for pod in pods:
        node, ip = (pod.get("spec") or {}).get("nodeName"), (pod.get("status") or {}).get("hostIP")
        if not node or not ip or (pod["metadata"].get("deletionTimestamp")):
            continue
        host = f"[{ip}]" if ":" in ip else ip
        restarts = sum(c.get("restartCount") or 0 for c in (pod.get("status") or {}).get("containerStatuses") or [])
        helper = Helper(
            node=node,
            url=f"https://{host}:{port}",
            ready=_pod_ready(pod),
            incarnation=f"{pod['metadata'].get('uid', '')}/{restarts}",
        )
        if node not in found or (helper.ready and not found[node].ready):
            found[node] = helper
    return found
