"""Preflight at admission (preflightwebhook.py): what Preparing would refuse for good is refused at create with the
same reason and message; what waiting may lift (a missing helper, a node not Ready) is left to Preparing."""

from __future__ import annotations

from types import SimpleNamespace

import kopf
import pytest
from pmfakes import make_node, make_pod

from podmigration.webhooks.preflight import preflight_at_admission


def admit(deps, **spec) -> str:
    """'' when admitted, else the refusal's text."""
    try:
        preflight_at_admission(spec=spec, namespace="default", memo=SimpleNamespace(deps=deps))
        return ""
    except kopf.AdmissionError as exc:
        assert exc.code == 403
        return str(exc)


@pytest.mark.parametrize(
    ("spec", "refusal"),
    [
        ({"podName": "no-such-pod", "targetNode": "worker-2"}, "PodNotFound: pod default/no-such-pod not found"),
        ({"podName": "counter", "targetNode": "worker-1"}, "SameNode: target node worker-1 is the node"),
        ({"podName": "counter", "targetNode": "nowhere"}, "TargetNotFound: target node nowhere does not exist"),
    ],
)
def test_a_refusal_for_good_is_refused_at_create(world, spec, refusal):
    *_, deps = world
    assert refusal in admit(deps, **spec)


def test_a_host_path_volume_is_refused_at_create(world):
    kube, *_, deps = world
    kube.pods[("default", "counter")]["spec"]["volumes"] = [{"name": "v", "hostPath": {"path": "/tmp"}}]
    assert admit(deps, podName="counter", targetNode="worker-2").startswith("UnsupportedVolume: volume v of")


def test_a_migration_preparing_would_run_is_admitted(world):
    *_, deps = world
    assert admit(deps, podName="counter", targetNode="worker-2") == ""
    assert admit(deps, podName="counter") == ""


def test_what_waiting_may_lift_is_left_to_preparing(world):
    kube, *_, deps = world
    kube.nodes.append(make_node("not-ready", ready=False))
    kube.nodes.append(make_node("helperless"))
    assert admit(deps, podName="counter", targetNode="not-ready") == ""
    assert admit(deps, podName="counter", targetNode="helperless") == ""


def test_a_namespace_with_a_full_queue_is_refused_at_create(world):
    """operator.limits.maxQueuedPerNamespace waiting in the namespace: the next is refused QueueFull; another
    namespace's queue does not count."""
    kube, *_, deps = world
    deps.config = deps.config.__class__(**{**deps.config.__dict__, "max_queued_per_namespace": 2})
    for i, namespace in enumerate(("default", "default", "elsewhere")):
        kube.migrations[(namespace, f"q{i}")] = {
            "metadata": {"name": f"q{i}", "namespace": namespace, "creationTimestamp": "2030-01-01T00:00:00Z"},
            "spec": {"podName": "x"},
            "status": {"phase": "Pending", "reason": "Queued"},
        }
    assert "QueueFull: namespace default already has 2 PodMigration(s) waiting for a slot (limit 2" in admit(
        deps, podName="counter", targetNode="worker-2"
    )
    kube.migrations[("default", "q0")]["status"] = {"phase": "Preparing"}
    assert admit(deps, podName="counter", targetNode="worker-2") == ""


def test_admission_lists_no_pod_of_the_cluster(world):
    """The rules about other pods (here the pod's anti-affinity against one on the target) are Preparing's: reading
    every pod of the cluster would slow each create."""
    kube, *_, deps = world
    term = {"labelSelector": {"matchLabels": {"app": "anchor"}}, "topologyKey": "kubernetes.io/hostname"}
    kube.pods[("default", "counter")]["spec"]["affinity"] = {
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
    }
    kube.pods[("default", "anchor")] = make_pod("anchor", "worker-2")
    assert admit(deps, podName="counter", targetNode="worker-2") == ""
    assert kube.lists == []
