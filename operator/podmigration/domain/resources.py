"""Resource requests against a node's allocatable, as the scheduler's NodeResourcesFit filter and its LeastAllocated
score count them: whether the pod fits a node, and how loaded the node would be with it.

Requests are what the pod declares (its containers, its longest init container, its overhead; pod-level
``spec.resources`` for CPU and memory when given), summed over the pods bound to the node that have not finished.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation

from ..api.types import Obj
from .refusals import Refusal

_SUFFIXES = {
    **{s: Decimal(1024) ** (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    **{s: Decimal(1000) ** (i + 1) for i, s in enumerate(("k", "M", "G", "T", "P", "E"))},
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")

#: What the scheduler's score counts for a container that requests no CPU or memory (its DefaultMilliCPURequest and
#: DefaultMemoryRequest), so that pods without requests still spread.
NONZERO_DEFAULTS = {"cpu": Decimal("0.1"), "memory": Decimal(200 * 1024 * 1024)}

REASON = "InsufficientResources"

#: The resources of a node's load, each weighed alike (the scheduler's LeastAllocated default).
LOAD_RESOURCES = ("cpu", "memory")


def quantity(text: str | int | float) -> Decimal:
    """A Kubernetes resource quantity ("250m", "1Gi", "2", "1e3") as a number; ValueError when it is not one."""
    match = _QUANTITY.match(str(text).strip())
    if not match or match.group(2) not in _SUFFIXES:
        raise ValueError(f"not a resource quantity: {text!r}")
    try:
        return Decimal(match.group(1)) * _SUFFIXES[match.group(2)]
    except InvalidOperation as exc:
        raise ValueError(f"not a resource quantity: {text!r}") from exc


def _requests_of(container: Obj, nonzero: bool) -> dict[str, Decimal]:
    declared = {k: quantity(v) for k, v in ((container.get("resources") or {}).get("requests") or {}).items()}
    if nonzero:
        for resource, default in NONZERO_DEFAULTS.items():
            declared.setdefault(resource, default)
    return declared


def _add(into: dict[str, Decimal], more: Mapping[str, Decimal]) -> None:
    for resource, amount in more.items():
        into[resource] = into.get(resource, Decimal(0)) + amount


def pod_requests(pod: Obj, nonzero: bool = False) -> dict[str, Decimal]:
    """What ``pod`` takes of a node's allocatable: its containers' requests summed, at least each init container's
    (they run one at a time before them), plus its overhead; ``nonzero``: a container's missing CPU or memory
    request counts as the scheduler's default, as its score does."""
    spec = pod.get("spec") or {}
    total: dict[str, Decimal] = {}
    for container in spec.get("containers") or []:
        _add(total, _requests_of(container, nonzero))
    for init in spec.get("initContainers") or []:
        for resource, amount in _requests_of(init, nonzero).items():
            total[resource] = max(total.get(resource, Decimal(0)), amount)
    total.update({k: quantity(v) for k, v in ((spec.get("resources") or {}).get("requests") or {}).items()})
    _add(total, {k: quantity(v) for k, v in (spec.get("overhead") or {}).items()})
    return total


def _in_use(pods: Iterable[Obj], nonzero: bool) -> dict[str, Decimal]:
    used: dict[str, Decimal] = {}
    for other in pods:
        _add(used, pod_requests(other, nonzero))
        _add(used, {"pods": Decimal(1)})
    return used


def _allocatable(node: Obj) -> dict[str, Decimal] | None:
    reported = (node.get("status") or {}).get("allocatable")
    return {k: quantity(v) for k, v in reported.items()} if reported else None


def _shown(resource: str, amount: Decimal) -> str:
    if resource == "cpu":
        return f"{amount * 1000:.0f}m"
    if resource in ("memory", "ephemeral-storage") or resource.startswith("hugepages-"):
        return f"{amount / 1024**2:.0f}Mi"
    return f"{amount.normalize():f}"


def fit_refusals(pod: Obj, node: Obj, pods_on_node: Iterable[Obj]) -> list[Refusal]:
    """The resources ``pod`` requests that ``node`` has not enough of left, next to ``pods_on_node`` (one pod more
    counts against its ``pods`` allocatable). A node that reports no allocatable (no kubelet has registered it) is
    not checked: there is nothing to check against."""
    allocatable = _allocatable(node)
    if allocatable is None:
        return []
    wanted = {k: v for k, v in pod_requests(pod).items() if v > 0} | {"pods": Decimal(1)}
    used = _in_use(pods_on_node, nonzero=False)
    name = node["metadata"]["name"]
    refusals = []
    for resource, amount in sorted(wanted.items()):
        have, taken = allocatable.get(resource, Decimal(0)), used.get(resource, Decimal(0))
        if taken + amount > have:
            refusals.append(
                Refusal(
                    REASON,
                    f"node {name} has not enough {resource} left for the pod: it requests {_shown(resource, amount)}, "
                    f"{_shown(resource, max(have - taken, Decimal(0)))} of {_shown(resource, have)} allocatable "
                    "is free",
                )
            )
    return refusals


def load(pod: Obj, node: Obj, pods_on_node: Iterable[Obj]) -> float:
    """How full ``node`` would be with ``pod``: the mean over CPU and memory of requests (missing ones counted as
    the scheduler's defaults) over allocatable; 0 for a node that reports no allocatable."""
    allocatable = _allocatable(node)
    if not allocatable:
        return 0.0
    used = _in_use(pods_on_node, nonzero=True)
    _add(used, pod_requests(pod, nonzero=True))
    shares = [used.get(r, Decimal(0)) / allocatable[r] for r in LOAD_RESOURCES if allocatable.get(r)]
    return float(sum(shares) / len(LOAD_RESOURCES))
