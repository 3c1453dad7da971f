"""Every refusal of Preparing: Failed with a specific reason and message, a Warning Event, and the cluster unchanged.
The refusals that waiting cannot lift are given at admission instead (operator/podmigration/webhooks/preflight.py): the
create, and its server-side dry run, fail with the same reason and message, and no PodMigration exists."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from e2elib import (
    GROUP,
    NAMESPACE,
    PLURAL,
    SOURCE_NODE,
    TARGET_NODE,
    VERSION,
    counter_pod,
    finished_migration,
    leftovers,
    running_pod,
    start_migration,
    wait_for,
)
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from test_cli import kubectl_migrate


def snapshot(core: client.CoreV1Api) -> dict[str, Any]:
    """What a refused migration must not change: the pods (identity, node, labels, annotations) and the nodes."""
    pods = {
        p.metadata.name: (p.metadata.uid, p.spec.node_name, p.metadata.labels, p.metadata.annotations, p.status.phase)
        for p in core.list_namespaced_pod(NAMESPACE).items
    }
    # Taints are left out: the node lifecycle controller changes them on its own (fake and cordoned nodes).
    nodes = {n.metadata.name: n.spec.unschedulable for n in core.list_node().items}
    return {"pods": pods, "nodes": nodes, "leftovers": leftovers(SOURCE_NODE) + leftovers(TARGET_NODE)}


def assert_refused(core, custom, pod: str, target: str | None, reason: str, text: str, timeout: float = 60) -> None:
    before = snapshot(core)
    name = start_migration(custom, pod, target)
    status = finished_migration(custom, name, timeout=timeout)["status"]
    assert (status["phase"], status["reason"]) == ("Failed", reason), status
    assert text in status["message"], status["message"]
    warnings = wait_for(
        f"a Warning Event on PodMigration {name}",
        lambda: [
            e
            for e in core.list_namespaced_event(NAMESPACE, field_selector=f"involvedObject.name={name}").items
            if e.type == "Warning" and text in e.message
        ],
        timeout=30,
    )
    assert warnings
    assert snapshot(core) == before


def assert_refused_at_admission(core, custom, pod: str, target: str | None, reason: str, text: str) -> None:
    before = snapshot(core)
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "PodMigration", "metadata": {"generateName": f"{pod}-"}}
    body["spec"] = {"podName": pod, **({"targetNode": target} if target else {})}
    for dry_run in ("All", None):
        with pytest.raises(ApiException) as refused:
            custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body, dry_run=dry_run)
        assert refused.value.status == 403 and f"{reason}: " in refused.value.body, refused.value.body
        assert text in refused.value.body, refused.value.body
    made = custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)["items"]
    assert not [m for m in made if m["spec"]["podName"] == pod]
    assert snapshot(core) == before


@pytest.fixture(scope="module")
def counter(core) -> Iterator[str]:
    """A healthy counter pod on the source node: the pod that most refusals are about."""
    name = "refusal-counter"
    core.create_namespaced_pod(NAMESPACE, counter_pod(name, SOURCE_NODE))
    running_pod(core, name)
    yield name
    core.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)


@pytest.fixture
def fake_node(core) -> Iterator[callable]:
    """Registers Node objects that no kubelet backs (deleted afterwards). A Ready one gets a fresh heartbeat every
    few seconds, as a kubelet would give it: otherwise the node lifecycle controller marks it NotReady after its
    grace period (about 40 s), before a refusal that waits for a helper (60 s) is given."""
    made: list[str] = []
    stop = threading.Event()

    def heartbeat(name: str) -> None:
        while True:
            now = datetime.now(UTC).isoformat()
            condition = {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "faked by the e2e test",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }
            core.patch_node_status(name, {"status": {"conditions": [condition]}})
            if stop.wait(5):
                return

    def make(name: str, ready: bool) -> str:
        core.create_node(
            client.V1Node(metadata=client.V1ObjectMeta(name=name, labels={"kubernetes.io/hostname": name}))
        )
        made.append(name)
        if ready:
            threading.Thread(target=heartbeat, args=(name,), daemon=True).start()
            wait_for(
                f"node {name} Ready",
                lambda: any(
                    c.type == "Ready" and c.status == "True"
                    for c in core.read_node_status(name).status.conditions or []
                ),
            )
        return name

    yield make
    stop.set()
    for name in made:
        core.delete_node(name)


def test_missing_pod(core, custom, unique):
    assert_refused_at_admission(
        core, custom, f"no-such-pod-{unique}", TARGET_NODE, "PodNotFound", f"no-such-pod-{unique} not found"
    )


def test_pod_not_running(core, custom, pods, unique):
    name = f"done-{unique}"
    spec = counter_pod(name, SOURCE_NODE)
    spec["spec"]["restartPolicy"] = "Never"
    spec["spec"]["containers"][0]["command"] = ["python3", "-c", "pass"]
    core.create_namespaced_pod(NAMESPACE, spec)
    pods.append(name)
    wait_for(f"pod {name} Succeeded", lambda: core.read_namespaced_pod(name, NAMESPACE).status.phase == "Succeeded")
    assert_refused(core, custom, name, TARGET_NODE, "PodNotRunning", "not Running")


def test_target_is_the_source(core, custom, counter):
    assert_refused_at_admission(core, custom, counter, SOURCE_NODE, "SameNode", "already runs on")


def test_unknown_target(core, custom, counter):
    assert_refused_at_admission(core, custom, counter, "no-such-node", "TargetNotFound", "no-such-node does not exist")


def test_not_ready_target(core, custom, counter, fake_node, unique):
    node = fake_node(f"ghost-{unique}", ready=False)
    assert_refused(core, custom, counter, node, "TargetNotReady", f"{node} is not Ready")


def test_unschedulable_target(core, custom, counter):
    core.patch_node(TARGET_NODE, {"spec": {"unschedulable": True}})
    try:
        assert_refused(core, custom, counter, TARGET_NODE, "TargetUnschedulable", "cordoned")
    finally:
        core.patch_node(TARGET_NODE, {"spec": {"unschedulable": None}})


def test_target_without_ready_helper(core, custom, counter, fake_node, unique):
    node = fake_node(f"helperless-{unique}", ready=True)
    # Preparing first waits operator.helperRestartWaitSeconds (60) for a helper that may be restarting.
    assert_refused(core, custom, counter, node, "TargetNoHelper", node, timeout=60 + 60)


def pod_with_volume(core, pods, name: str, volume: dict[str, Any]) -> None:
    spec = counter_pod(name, SOURCE_NODE)
    spec["spec"]["volumes"] = [{"name": "data", **volume}]
    spec["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    core.create_namespaced_pod(NAMESPACE, spec)
    pods.append(name)
    running_pod(core, name)


def test_host_path_volume(core, custom, pods, unique):
    name = f"vol-{unique}"
    pod_with_volume(core, pods, name, {"hostPath": {"path": "/tmp", "type": "Directory"}})
    assert_refused_at_admission(core, custom, name, TARGET_NODE, "UnsupportedVolume", "hostPath")


def test_read_write_once_pod_claim(core, custom, pods, unique, claim):
    name = f"rwop-{unique}"
    pod_with_volume(core, pods, name, {"persistentVolumeClaim": {"claimName": claim("ReadWriteOncePod")}})
    assert_refused_at_admission(core, custom, name, TARGET_NODE, "UnsupportedVolume", "ReadWriteOncePod")


def kept_apart_from(app: str, topology_key: str = "kubernetes.io/hostname") -> dict[str, Any]:
    """A pod's affinity: never in the same domain of `topology_key` as a pod labelled app=`app`."""
    term = {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": topology_key}
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}


def test_anti_affinity_against_a_pod_on_the_only_other_worker(core, custom, pods, unique):
    """The replacement is bound with nodeName, past the scheduler: Preparing refuses a move next to a pod the pod
    must not share a node with, naming the rule and that pod; so does an automatic target (the control plane is
    tainted, the other worker is the only candidate), and `kubectl migrate --dry-run`."""
    anchor, name = f"anchor-{unique}", f"apart-{unique}"
    core.create_namespaced_pod(NAMESPACE, counter_pod(anchor, TARGET_NODE))
    pods.append(anchor)
    spec = counter_pod(name, SOURCE_NODE)
    spec["spec"]["affinity"] = kept_apart_from(anchor)
    core.create_namespaced_pod(NAMESPACE, spec)
    pods.append(name)
    running_pod(core, anchor)
    running_pod(core, name)
    rule = (
        f"breaks the pod's required podAntiAffinity (topologyKey kubernetes.io/hostname, labelSelector app={anchor}): "
        f"pod {NAMESPACE}/{anchor} on node {TARGET_NODE}"
    )
    assert_refused(core, custom, name, TARGET_NODE, "AffinityNotSatisfied", rule)
    assert_refused(core, custom, name, None, "NoTargetAvailable", rule)
    dry_run = kubectl_migrate(name, "--to", TARGET_NODE, "--dry-run")
    assert dry_run.returncode == 1, dry_run.stdout + dry_run.stderr
    assert f"AffinityNotSatisfied: node {TARGET_NODE} {rule}" in dry_run.stdout, dry_run.stdout


def test_anti_affinity_of_the_pod_already_on_the_target(core, custom, pods, unique):
    """The rule holds both ways: the pod on the target keeps the moving pod off its node."""
    loner, name = f"loner-{unique}", f"near-{unique}"
    spec = counter_pod(loner, TARGET_NODE)
    spec["spec"]["affinity"] = kept_apart_from(name)
    core.create_namespaced_pod(NAMESPACE, spec)
    pods.append(loner)
    core.create_namespaced_pod(NAMESPACE, counter_pod(name, SOURCE_NODE))
    pods.append(name)
    running_pod(core, loner)
    running_pod(core, name)
    rule = f"of pod {NAMESPACE}/{loner} on node {TARGET_NODE}: it selects this pod"
    assert_refused(core, custom, name, TARGET_NODE, "AffinityNotSatisfied", rule)
