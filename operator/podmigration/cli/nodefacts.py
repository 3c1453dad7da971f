"""What `kubectl migrate check` asks each node-helper (GET /v1/node through the API server's pod proxy, with the
user's own credentials) and the fix for each fact that stops migrations: what the API does not show."""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from ..api.types import Obj
from ..clients.kube import Kube, api_message, status_code

#: The node-helper's port when its pod does not set PM_HELPER_PORT (the chart always does).
DEFAULT_PORT = 9443

CRIO_FIX = (
    "CRI-O restores no containers: set enable_criu_support = true in [crio.runtime], or [crio.checkpoint_restore] "
    'container_level_enabled = "checkpoint_restore" where CRI-O has it, and restart CRI-O (what that opens: '
    "docs/security.md)"
)


def helper_port(pod: Obj) -> int:
    for container in (pod.get("spec") or {}).get("containers") or []:
        for env in container.get("env") or []:
            if env.get("name") == "PM_HELPER_PORT" and str(env.get("value", "")).isdigit():
                return int(env["value"])
    return DEFAULT_PORT


def fetch(kube: Kube, namespace: str, pod: Obj) -> tuple[Obj | None, str]:
    """The helper's answer, or None and why it could not be had (with the fix)."""
    name = pod["metadata"]["name"]
    try:
        return kube.helper_node_facts(namespace, name, helper_port(pod)), ""
    except ApiException as exc:
        code = status_code(exc)
        if code in (401, 403):
            return None, (
                f"you may not read what its node-helper sees (GET pods/proxy in {namespace}: {api_message(exc)}): "
                f"ask for get on pods/proxy there (kubectl auth can-i get pods/proxy -n {namespace})"
            )
        if code == 404:
            return None, "its node-helper has no GET /v1/node (older than this kubectl-migrate): upgrade the chart"
        why = api_message(exc)
    except (HTTPError, OSError, ValueError) as exc:
        why = str(exc)
    return None, f"its node-helper did not answer GET /v1/node ({why}): kubectl logs -n {namespace} {name}"


def gib(n: int) -> str:
    return f"{n / (1 << 30):.1f}"


def fact_problems(facts: Obj) -> list[str]:
    problems = []
    restores: Any = facts.get("crio_restores")
    if restores is False:
        problems.append(CRIO_FIX)
    elif restores is None:
        problems.append(
            f"cannot read CRI-O's configuration ({facts.get('crio_error') or 'no answer'}): check enable_criu_support "
            "and container_level_enabled on the node (crio config)"
        )
    searched = facts.get("criu_searched") or []
    if searched and not facts.get("criu_path"):
        problems.append(
            f"CRIU not found in {', '.join(searched)} on the node: install CRIU 4.0 or later (4.2 on Linux 6.16+) on "
            "the runtime's PATH, or set nodeHelper.criuSearchPath to where it is"
        )
    free, floor = int(facts.get("free_bytes", 0)), int(facts.get("floor_bytes", 0))
    if free < floor:
        problems.append(
            f"only {gib(free)} GiB free in {facts.get('work_dir')}, floor {gib(floor)} GiB: free space there or lower "
            "nodeHelper.minFreePercent / nodeHelper.minFreeBytes"
        )
    return problems


def summary(facts: Obj | None) -> tuple[str, str, str]:
    """The table's CRI-O RESTORES, CRIU and FREE cells. CRIU is "?" where the helper did not look: one older than
    the field, or an empty nodeHelper.criuSearchPath."""
    if facts is None:
        return "?", "?", "?"
    restores = {True: "yes", False: "no"}.get(facts.get("crio_restores"), "?")  # type: ignore[arg-type]
    criu = (facts.get("criu_path") or "missing") if facts.get("criu_searched") else "?"
    return restores, criu, f"{gib(int(facts.get('free_bytes', 0)))} GiB"
