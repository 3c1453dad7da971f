"""Preflight validation: everything that blocks a migration, found before anything is changed.

Shared by the operator (Preparing) and ``kubectl migrate --dry-run`` so both refuse with the
same words.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import api
from ..api.types import Obj
from .helpers import helpers_from_pods
from .owners import read_owner, strategy_for
from .placement import Around, Cluster, choose_target, target_refusals
from .podaffinity import uses_namespace_selector
from .refusals import Refusal
from .volumes import read_claims, volume_refusals


@dataclass(frozen=True)
class Plan:
    """Outcome of preflight: where the pod is, where it would go, and what blocks it."""

    source_node: str | None
    target_node: str | None
    refusals: list[Refusal] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refusals


def pod_refusals(pod: Obj, migration_name: str | None) -> list[Refusal]:
    """Problems of the pod itself: state, sidecars, the node's network, another migration (its owner's are the owner
    strategy's)."""
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    ref = f"pod {meta.get('namespace')}/{meta['name']}"
    refusals: list[Refusal] = []
    if meta.get("deletionTimestamp"):
        refusals.append(Refusal("PodTerminating", f"{ref} is terminating"))
    if status.get("phase") != "Running":
        refusals.append(Refusal("PodNotRunning", f"{ref} is {status.get('phase') or 'not scheduled'}, not Running"))
    else:
        running = {c["name"] for c in status.get("containerStatuses") or [] if "running" in (c.get("state") or {})}
        refusals.extend(
            Refusal("PodNotRunning", f"container {c['name']} of {ref} is not running")
            for c in spec.get("containers") or []
            if c["name"] not in running
        )
    refusals.extend(
        Refusal(
            "UnsupportedSidecar",
            f"init container {c['name']} of {ref} is a sidecar (restartPolicy Always); sidecars cannot be migrated yet",
        )
        for c in spec.get("initContainers") or []
        if c.get("restartPolicy") == "Always"
    )
    if spec.get("hostNetwork"):
        # The network cut works on the pod's own network namespace, and a hostNetwork pod's is the node's: the
        # node-helper refuses to cut it, and its addresses and ports are the node's, which no other node has.
        refusals.append(
            Refusal(
                "HostNetwork",
                f"{ref} uses the node's network (hostNetwork): it cannot be cut off "
                "from the network for the checkpoint, nor keep its addresses elsewhere",
            )
        )
    fenced_by = (meta.get("annotations") or {}).get(api.FENCED_BY_ANNOTATION)
    if fenced_by and fenced_by != migration_name:
        refusals.append(Refusal("AlreadyMigrating", f"{ref} is already being migrated by PodMigration {fenced_by}"))
    return refusals


def preflight(
    spec: Obj,
    namespace: str,
    pod: Obj | None,
    nodes: list[Obj],
    helpers: Mapping[str, bool],
    migration_name: str | None = None,
    claims: Mapping[str, tuple[Obj | None, Obj | None]] | None = None,
    owner: Obj | None = None,
    *,
    around: Around | None,
) -> Plan:
    """Validate a PodMigration spec against the cluster as read by the caller.

    ``helpers`` maps node name to whether its node-helper is Ready. ``migration_name`` is the
    PodMigration doing the checking, so its own fence on the pod does not count as another's.
    ``claims`` maps each of the pod's PersistentVolumeClaims to (claim, bound volume) (volumes.read_claims);
    ``owner`` is the pod's controller object as read from the cluster (owners.read_owner).
    ``around`` holds the pods the rules about other pods look at (read_around): inter-pod affinity, topology
    spread, room on the target; None leaves those rules unchecked, for a caller that must not read every pod.
    """
    pod_name = spec["podName"]
    if pod is None:
        return Plan(None, None, [Refusal("PodNotFound", f"pod {namespace}/{pod_name} not found")])
    source = (pod.get("spec") or {}).get("nodeName")
    refusals = pod_refusals(pod, migration_name)
    strategy = strategy_for(pod)
    refusals.extend(strategy.refusals(pod, owner))
    if spec.get("keepSource") and strategy.kind != "Pod":
        refusals.append(
            Refusal(
                "KeepSourceOwned",
                f"pod {namespace}/{pod_name} belongs to a {strategy.kind}: a kept source would be one replica too many",
            )
        )
    if source and not helpers.get(source):
        refusals.append(Refusal("SourceNoHelper", f"source node {source} has no ready podmigration node-helper"))
    cluster = Cluster.of(pod, nodes, around, keep_source=bool(spec.get("keepSource")))
    wanted = spec.get("targetNode")
    if wanted:
        node = cluster.nodes.get(wanted)
        if node is None:
            return Plan(source, wanted, refusals + [Refusal("TargetNotFound", f"target node {wanted} does not exist")])
        return Plan(
            source,
            wanted,
            refusals + volume_refusals(pod, claims or {}, node) + target_refusals(pod, node, source, helpers, cluster),
        )
    chosen, rejected = choose_target(pod, cluster, source, helpers)
    refusals.extend(volume_refusals(pod, claims or {}, cluster.nodes.get(chosen) if chosen else None))
    if chosen is None:
        why = "; ".join(
            r.message for node_refusals in rejected.values() for r in node_refusals if r.reason != "SameNode"
        )
        refusals.append(
            Refusal("NoTargetAvailable", f"no node can take pod {namespace}/{pod_name}" + (f": {why}" if why else ""))
        )
    return Plan(source, chosen, refusals)


def read_around(kube: Any, namespace: str | None = None) -> Around:
    """The unfinished pods of the whole cluster, in one list call, and the namespaces' labels, read (a second call)
    only when a required inter-pod term selects namespaces by label; with ``namespace``, that namespace's pods only,
    for a reader who may not list the others (cli/around.py), and no namespace labels."""
    if namespace is not None:
        return Around(kube.list_active_pods(namespace), only_namespace=namespace)
    pods: list[Obj] = kube.list_active_pods()
    if not uses_namespace_selector(pods):
        return Around(pods)
    return Around(pods, {n["metadata"]["name"]: n["metadata"].get("labels") or {} for n in kube.list_namespaces()})


def check_in_cluster(
    kube: Any, spec: Obj, namespace: str, helper_namespace: str, *, around: Callable[[str], Around] | None
) -> tuple[Obj | None, Plan]:
    """Read what preflight needs (pod, nodes, helpers, claims, owner) through ``kube`` and check ``spec``;
    for callers outside a migration (``kubectl migrate --dry-run``, the drain's plan, the admission webhooks).
    ``around`` reads the pods around the targets for the pod's namespace, called only when the pod exists; None
    for the admission webhooks, which must answer fast and leave the rules about other pods to Preparing.
    Returns (pod, plan)."""
    pod = kube.get_pod(namespace, spec["podName"])
    helpers = helpers_from_pods(kube.list_pods(helper_namespace, api.HELPER_LABEL_SELECTOR), 0)
    claims = read_claims(pod, lambda name: kube.get_claim(namespace, name), kube.get_volume) if pod else {}
    owner = read_owner(pod, kube.get_owner) if pod else None
    plan = preflight(
        spec,
        namespace,
        pod,
        kube.list_nodes(),
        {n: h.ready for n, h in helpers.items()},
        claims=claims,
        owner=owner,
        around=around(namespace) if pod and around else None,
    )
    return pod, plan
