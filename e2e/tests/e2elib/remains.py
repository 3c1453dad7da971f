"""Nothing left behind: what a migration may leave on the nodes (nodescan.py runs there) and in the cluster."""

from __future__ import annotations

import json
from pathlib import Path

from kubernetes import client

from .cluster import GROUP, NAMESPACE, PLURAL, SOURCE_NODE, TARGET_NODE, VERSION, node_exec, wait_for

#: Run inside a node by `leftovers`: prints, as JSON, everything a migration could leave there.
NODE_SCAN = Path(__file__).with_name("nodescan.py")
#: What marks a migration's images (their names, or an untagged one's labels and annotations: a checkpoint image's
#: annotation, a pointer image's label).
_OURS = ("podmigration-checkpoint", "checkpoint.name", "podmigration.dev/archive")
#: An image nothing can read (nodescan.marks): whose it is cannot be told, so it fails every check.
_UNREADABLE = "unreadable:"
#: The label of the pod by which the target's kubelet pulls a migration's base images (the operator's api).
PREPULL_LABEL = "podmigration.dev/prepull-for"


def leftovers(node: str, *uids: str, core: client.CoreV1Api | None = None) -> list[str]:
    """What migrations left on a node: archives (partial uploads included) and anything in the helper's tmp or the
    kubelet's checkpoint directory, checkpoint images (by name, or by id once untagged), archive links, frozen
    cgroups and, given `core`, containers and sandboxes of pods that no longer exist. Given `uids` (of migrations and
    pods), only what names one of them: a test checks its own objects, not what another test left."""
    found = json.loads(node_exec(node, "python3", "-c", NODE_SCAN.read_text()))
    items = found["files"] + found["links"] + found["frozen"]
    items += [i for i in found["images"] if uids or any(mark in i for mark in (*_OURS, _UNREADABLE))]
    if core is not None:
        live = {p.metadata.uid for p in core.list_pod_for_all_namespaces().items}
        items += [what for uid, what in found["containers"] if uid and uid not in live]
    if uids:
        # cgroup paths spell a pod's uid with dashes or, under systemd, underscores.
        names = {u.lower() for u in uids} | {u.lower().replace("-", "_") for u in uids}
        items = [i for i in items if _UNREADABLE in i or any(n in i.lower() for n in names)]
    return items


def nothing_left_on_nodes(core: client.CoreV1Api, *uids: str, timeout: float = 90) -> None:
    """Nothing of these migrations and pods (uids, or names) is left on either node, containers of deleted pods
    included; polled, since the kubelet removes a deleted pod's containers a little after the pod is gone."""
    for node in (SOURCE_NODE, TARGET_NODE):
        left: list[str] = []

        def clean() -> bool:
            left[:] = leftovers(node, *uids, core=core)
            return not left

        try:
            wait_for(f"nothing of {uids} left on {node}", clean, timeout=timeout)
        except AssertionError:
            raise AssertionError(f"left on {node}: {left}") from None


def nothing_left_of_pods(core: client.CoreV1Api, custom: client.CustomObjectsApi, *pods: str) -> None:
    """nothing_left_on_nodes for every migration of these pods (names in NAMESPACE): their uids and their source
    pods' uids, so that what another test left never fails this one."""
    migrations = [
        m
        for m in custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)["items"]
        if m["spec"]["podName"] in pods
    ]
    assert migrations, f"no PodMigration of {pods}: nothing to check"
    uids = {m["metadata"]["uid"] for m in migrations} | {
        u for m in migrations if (u := (m.get("status") or {}).get("sourcePodUID"))
    }
    nothing_left_on_nodes(core, *sorted(uids))


def cluster_leftovers(api_client: client.ApiClient, pods: list[str]) -> list[str]:
    """What migrations of these pods (names in NAMESPACE; their replacements <name>-<suffix> too) left in the
    cluster: fence or held-label annotations on a pod, any pod that pulled base images for a migration (deleted as
    soon as it has), and the StatefulSet hand-over webhook still matching one."""
    marks = {"podmigration.dev/fenced-by", "podmigration.dev/fenced-labels", "podmigration.dev/held-labels"}
    found = [
        f"pod {p.metadata.name} annotated {sorted(marks & set(p.metadata.annotations or {}))}"
        for p in client.CoreV1Api(api_client).list_namespaced_pod(NAMESPACE).items
        if any(p.metadata.name == n or p.metadata.name.startswith(f"{n}-") for n in pods)
        and marks & set(p.metadata.annotations or {})
    ]
    found += [
        f"pod {p.metadata.name} that pulled base images for a migration"
        for p in client.CoreV1Api(api_client).list_namespaced_pod(NAMESPACE, label_selector=PREPULL_LABEL).items
    ]
    for config in client.AdmissionregistrationV1Api(api_client).list_mutating_webhook_configuration().items:
        if config.metadata.name.endswith("statefulset-handover"):
            found += [
                f"webhook {config.metadata.name} matches {c.expression}"
                for w in config.webhooks or []
                for c in w.match_conditions or []
                if any(f"'{NAMESPACE}/{p}'" in c.expression for p in pods)
            ]
    return found
