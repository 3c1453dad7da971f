"""Draining a node moves its pods instead of killing them: plain `kubectl drain` with the opt-in, and
`kubectl migrate drain` with progress and PodDisruptionBudgets."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from e2elib import (
    NAMESPACE,
    OPERATOR_NAMESPACE,
    OPERATOR_SELECTOR,
    SOURCE_NODE,
    TARGET_NODE,
    counter_pod,
    counter_template,
    no_pods_left,
    operator_pods,
    placed_on_source,
    pods_of,
    read_counter,
    running_pod,
    wait_for,
)
from kubernetes import client

OPT_IN = {"podmigration.dev/eviction": "migrate"}


@pytest.fixture
def workloads(core, apps, unique) -> Iterator[dict[str, str]]:
    """app label -> kind, for everything the test created; all of it is deleted afterwards and the node uncordoned."""
    made: dict[str, str] = {}
    yield made
    core.patch_node(SOURCE_NODE, {"spec": {"unschedulable": None}})
    for app, kind in made.items():
        if kind == "Deployment":
            apps.delete_namespaced_deployment(app, NAMESPACE, propagation_policy="Foreground")
        elif kind == "StatefulSet":
            apps.delete_namespaced_stateful_set(app, NAMESPACE, propagation_policy="Foreground")
            core.delete_namespaced_service(app, NAMESPACE)
        core.delete_collection_namespaced_pod(NAMESPACE, label_selector=f"app={app}", grace_period_seconds=0)
        no_pods_left(core, app)
    subprocess.run(
        ["kubectl", "delete", "pdb", "-n", NAMESPACE, "-l", "pm-e2e=drain", "--ignore-not-found"], capture_output=True
    )


def bare(core, made, name: str, labels: dict[str, str] | None = None) -> None:
    spec = counter_pod(name, SOURCE_NODE)
    spec["metadata"]["labels"].update(labels or {})
    core.create_namespaced_pod(NAMESPACE, spec)
    made[name] = "Pod"


def deployment(apps, made, name: str, labels: dict[str, str] | None = None) -> None:
    template = counter_template(name)
    template["metadata"]["labels"].update(labels or {})
    apps.create_namespaced_deployment(
        NAMESPACE,
        {
            "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": template},
        },
    )
    made[name] = "Deployment"


def statefulset(core, apps, made, name: str, labels: dict[str, str] | None = None) -> None:
    core.create_namespaced_service(
        NAMESPACE,
        {
            "metadata": {"name": name},
            "spec": {"clusterIP": "None", "selector": {"app": name}, "ports": [{"port": 8080}]},
        },
    )
    template = counter_template(name)
    template["metadata"]["labels"].update(labels or {})
    apps.create_namespaced_stateful_set(
        NAMESPACE,
        {
            "metadata": {"name": name},
            "spec": {
                "serviceName": name,
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": template,
            },
        },
    )
    made[name] = "StatefulSet"


def tokens_on_source(core, made) -> dict[str, str]:
    """app -> the in-memory token of its one Ready pod, which must run on the node to drain."""

    def ready() -> dict[str, client.V1Pod] | None:
        found = {app: pods_of(core, app) for app in made}
        ok = all(
            len(pods) == 1 and pods[0].status.container_statuses and pods[0].status.container_statuses[0].ready
            for pods in found.values()
        )
        return {app: pods[0] for app, pods in found.items()} if ok else None

    pods = wait_for("every workload Ready", ready)
    assert {p.spec.node_name for p in pods.values()} == {SOURCE_NODE}, {a: p.spec.node_name for a, p in pods.items()}
    return {app: read_counter(pod.status.pod_ip)["token"] for app, pod in pods.items()}


def tokens_after(core, made) -> dict[str, tuple[str, str]]:
    """app -> (node, token) of its one pod once the drain is over."""

    def settled() -> dict[str, client.V1Pod] | None:
        found = {app: pods_of(core, app) for app in made}
        return (
            {a: p[0] for a, p in found.items()}
            if all(len(p) == 1 and p[0].status.phase == "Running" for p in found.values())
            else None
        )

    pods = wait_for("one running pod per workload", settled)
    return {
        app: (pod.spec.node_name, read_counter(running_pod(core, pod.metadata.name).status.pod_ip)["token"])
        for app, pod in pods.items()
    }


def keep_the_operator_off(core) -> None:
    """With the node cordoned, a drain must not take the operator down while it answers the evictions: move it.

    A rollout of the operator still under way (an earlier test changed its environment) finishes first, so that
    no replica it creates later lands on the node."""
    subprocess.run(
        ["kubectl", "-n", OPERATOR_NAMESPACE, "rollout", "status", "deploy/podmigration-operator", "--timeout=180s"],
        check=True,
        capture_output=True,
        timeout=200,
    )
    on_source = [p for p in operator_pods(core) if p.spec.node_name == SOURCE_NODE]
    for pod in on_source:
        core.delete_namespaced_pod(pod.metadata.name, OPERATOR_NAMESPACE)
    gone = {p.metadata.uid for p in on_source}
    wait_for(
        "every operator replica Ready elsewhere",
        lambda: (
            lambda pods: (
                pods
                if pods
                and all(
                    p.metadata.uid not in gone
                    and p.spec.node_name != SOURCE_NODE
                    and p.status.container_statuses
                    and p.status.container_statuses[0].ready
                    for p in pods
                )
                else None
            )
        )(operator_pods(core)),
        timeout=120,
    )
    # A terminating replica is still on the node, and kubectl drain refuses it (emptyDir): wait until it is gone.
    wait_for(
        "no operator replica left on the node",
        lambda: (
            not [
                p
                for p in core.list_namespaced_pod(OPERATOR_NAMESPACE, label_selector=OPERATOR_SELECTOR).items
                if p.spec.node_name == SOURCE_NODE
            ]
        ),
        timeout=120,
    )
    moved = {p.status.pod_ip for p in on_source}

    def serving() -> set[str]:
        return {
            address
            for s in client.DiscoveryV1Api(core.api_client)
            .list_namespaced_endpoint_slice(
                OPERATOR_NAMESPACE, label_selector="kubernetes.io/service-name=podmigration-operator"
            )
            .items
            for e in s.endpoints or []
            if (e.conditions and e.conditions.ready)
            for address in e.addresses
        }

    wait_for(
        "the webhook Service to point at replicas off the node only",
        lambda: (lambda ips: ips and not (ips & moved))(serving()),
    )


def test_kubectl_drain_migrates_opted_in_pods_and_evicts_the_others(core, apps, workloads, unique):
    with placed_on_source(core, [f"d-web-{unique}", f"d-db-{unique}", f"d-plain-{unique}"]):
        bare(core, workloads, f"d-bare-{unique}", OPT_IN)
        deployment(apps, workloads, f"d-web-{unique}", OPT_IN)
        statefulset(core, apps, workloads, f"d-db-{unique}", OPT_IN)
        deployment(apps, workloads, f"d-plain-{unique}")
    before = tokens_on_source(core, workloads)
    core.patch_node(SOURCE_NODE, {"spec": {"unschedulable": True}})
    keep_the_operator_off(core)

    done = subprocess.run(
        ["kubectl", "drain", SOURCE_NODE, "--ignore-daemonsets", "--force", "--timeout=240s"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    after = tokens_after(core, workloads)
    plain = f"d-plain-{unique}"
    for app, (node, token) in after.items():
        assert node == TARGET_NODE, (app, after)
        if app == plain:
            assert token != before[app], "a pod without the opt-in was migrated instead of evicted"
        else:
            assert token == before[app], f"{app} restarted instead of moving with its memory"


def test_kubectl_migrate_drain_moves_pods_and_respects_a_budget(core, apps, workloads, unique):
    moving, held = f"m-bare-{unique}", f"m-held-{unique}"
    bare(core, workloads, moving)
    with placed_on_source(core, [held]):
        deployment(apps, workloads, held)
    subprocess.run(
        ["kubectl", "create", "pdb", f"{held}", "-n", NAMESPACE, f"--selector=app={held}", "--min-available=1"],
        check=True,
        capture_output=True,
    )
    subprocess.run(["kubectl", "label", "pdb", held, "-n", NAMESPACE, "pm-e2e=drain"], check=True, capture_output=True)
    before = tokens_on_source(core, workloads)
    core.patch_node(SOURCE_NODE, {"spec": {"unschedulable": True}})
    keep_the_operator_off(core)

    done = subprocess.run(
        ["kubectl", "migrate", "drain", SOURCE_NODE, "--ignore-daemonsets", "--timeout", "45"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out  # the budget kept one pod on the node
    assert "Transferring" in out and "Succeeded" in out, out  # progress, one line per phase change
    assert "PodDisruptionBudget" in out and held in out, out
    assert core.read_node(SOURCE_NODE).spec.unschedulable
    after = tokens_after(core, workloads)
    assert after[moving] == (TARGET_NODE, before[moving])
    assert after[held] == (SOURCE_NODE, before[held])  # neither moved nor evicted
