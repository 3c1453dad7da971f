import pytest
from pmfakes import FakeKube, make_helper_pod, make_node, make_pod

from podmigration import api
from podmigration.domain.placement import Around
from podmigration.domain.preflight import check_in_cluster, preflight, read_around

NODES = [make_node("worker-1"), make_node("worker-2"), make_node("worker-3", unschedulable=True)]
HELPERS = {"worker-1": True, "worker-2": True, "worker-3": True}


def check(pod, target="worker-2", nodes=NODES, helpers=HELPERS, name=None, others=(), **spec):
    """The preflight of moving ``pod`` among ``others`` (the source itself is in the cluster's pod list too)."""
    pods = [pod, *others] if pod else list(others)
    spec = {"podName": "counter", "targetNode": target, **spec}
    return preflight(spec, "default", pod, nodes, helpers, name, around=Around(pods))


def messages(plan):
    return [r.message for r in plan.refusals]


def reasons(plan):
    return [r.reason for r in plan.refusals]


def test_healthy_bare_pod_can_move():
    plan = check(make_pod())
    assert plan.ok and (plan.source_node, plan.target_node) == ("worker-1", "worker-2")


def test_operator_picks_target_when_none_given():
    plan = check(make_pod(), target=None)
    assert plan.ok and plan.target_node == "worker-2"


def test_missing_pod():
    plan = check(None)
    assert [(r.reason, r.message) for r in plan.refusals] == [("PodNotFound", "pod default/counter not found")]


@pytest.mark.parametrize("phase", ["Pending", "Succeeded", "Failed"])
def test_pod_not_running(phase):
    assert messages(check(make_pod(phase=phase))) == [f"pod default/counter is {phase}, not Running"]


def test_container_not_running():
    pod = make_pod(containers=("a", "b"))
    pod["status"]["containerStatuses"][1]["state"] = {"waiting": {"reason": "CrashLoopBackOff"}}
    assert messages(check(pod)) == ["container b of pod default/counter is not running"]


def test_terminating_pod():
    pod = make_pod()
    pod["metadata"]["deletionTimestamp"] = "2030-01-01T00:00:00Z"
    assert messages(check(pod)) == ["pod default/counter is terminating"]
    assert reasons(check(pod)) == ["PodTerminating"]


def test_target_equals_source():
    assert [r.reason for r in check(make_pod(), target="worker-1").refusals] == ["SameNode"]
    assert messages(check(make_pod(), target="worker-1")) == [
        "target node worker-1 is the node the pod already runs on"
    ]


def test_unknown_target():
    assert messages(check(make_pod(), target="nope")) == ["target node nope does not exist"]


def test_not_ready_target():
    nodes = [make_node("worker-1"), make_node("worker-2", ready=False)]
    assert messages(check(make_pod(), nodes=nodes)) == ["target node worker-2 is not Ready"]


def test_cordoned_target():
    assert messages(check(make_pod(), target="worker-3")) == ["target node worker-3 is unschedulable (cordoned)"]


def test_target_without_ready_helper():
    assert messages(check(make_pod(), helpers={"worker-1": True, "worker-2": False})) == [
        "the podmigration node-helper on target node worker-2 is not ready"
    ]


def test_source_without_helper():
    assert messages(check(make_pod(), helpers={"worker-2": True})) == [
        "source node worker-1 has no ready podmigration node-helper"
    ]
    assert reasons(check(make_pod(), helpers={"worker-1": False, "worker-2": True})) == ["SourceNoHelper"]


def test_host_network_pod_is_refused():
    """Its network cannot be cut (the helper answers 400: its namespace is the node's), so it never starts moving."""
    plan = check(make_pod(hostNetwork=True))
    assert reasons(plan) == ["HostNetwork"]
    assert messages(plan) == [
        "pod default/counter uses the node's network (hostNetwork): it cannot be cut off from "
        "the network for the checkpoint, nor keep its addresses elsewhere"
    ]
    assert check(make_pod(hostNetwork=False)).ok


def test_host_path_is_refused_and_empty_dir_moves():
    pod = make_pod(
        volumes=[
            {"name": "cache", "hostPath": {"path": "/data"}},
            {"name": "scratch", "emptyDir": {}},
            {"name": "ram", "emptyDir": {"medium": "Memory"}},
            {"name": "cfg", "configMap": {"name": "c"}},
        ]
    )
    assert messages(check(pod)) == [
        "volume cache of pod default/counter is a hostPath whose content lives only on node worker-1; "
        "it cannot move with the pod"
    ]


def test_sidecar_init_container_is_refused():
    pod = make_pod(initContainers=[{"name": "setup"}, {"name": "proxy", "restartPolicy": "Always"}])
    assert [r.reason for r in check(pod).refusals] == ["UnsupportedSidecar"]


def test_pod_fenced_by_another_migration_is_refused_but_not_by_itself():
    pod = make_pod()
    pod["metadata"]["annotations"][api.FENCED_BY_ANNOTATION] = "counter-abc"
    assert messages(check(pod)) == ["pod default/counter is already being migrated by PodMigration counter-abc"]
    assert check(pod, name="counter-abc").ok


def test_no_target_available_explains_each_node():
    nodes = [make_node("worker-1"), make_node("worker-2", ready=False)]
    plan = check(make_pod(), target=None, nodes=nodes)
    assert [r.reason for r in plan.refusals] == ["NoTargetAvailable"]
    assert messages(plan) == ["no node can take pod default/counter: target node worker-2 is not Ready"]


def anti_affinity(pod, **selector):
    term = {"labelSelector": {"matchLabels": selector}, "topologyKey": "kubernetes.io/hostname"}
    pod["spec"]["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    return pod


def test_required_anti_affinity_against_a_pod_on_the_target_is_refused_with_the_rule():
    pod = anti_affinity(make_pod(), app="anchor")
    anchor = make_pod("anchor", "worker-2")
    plan = check(pod, others=[anchor])
    assert reasons(plan) == ["AffinityNotSatisfied"]
    assert messages(plan) == [
        "node worker-2 breaks the pod's required podAntiAffinity (topologyKey kubernetes.io/hostname, labelSelector "
        "app=anchor): pod default/anchor on node worker-2 has the same kubernetes.io/hostname=worker-2"
    ]
    automatic = check(pod, target=None, others=[anchor])
    assert reasons(automatic) == ["NoTargetAvailable"] and "podAntiAffinity" in automatic.refusals[0].message
    assert check(pod, others=[make_pod("anchor", "worker-3")]).ok


def test_the_source_itself_is_not_in_the_way():
    """Replicas kept one per zone by anti-affinity against their own label: the moving pod leaves its zone, so it
    may move to another node of that zone without conflicting with itself."""
    pod = anti_affinity(make_pod(labels={"app": "web"}), app="web")
    pod["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"] = (
        "zone"
    )
    nodes = [make_node("worker-1", labels={"zone": "a"}), make_node("worker-2", labels={"zone": "a"})]
    assert check(pod, nodes=nodes).ok
    assert not check(pod, nodes=nodes, others=[make_pod("web-2", "worker-2", labels={"app": "web"})]).ok
    # With keepSource the source stays: the copy would be a second one in the zone.
    assert reasons(check(pod, nodes=nodes, keepSource=True)) == ["AffinityNotSatisfied", "AffinityNotSatisfied"]


def test_the_operator_picks_the_least_loaded_node_that_fits():
    nodes = [make_node("worker-1"), make_node("worker-2"), make_node("worker-3")]
    others = [make_pod(f"busy-{i}", "worker-2") for i in range(3)]
    assert check(make_pod(), target=None, nodes=nodes, others=others).target_node == "worker-3"


HELPER_PODS = [make_helper_pod("worker-1", "10.0.0.1"), make_helper_pod("worker-2", "10.0.0.2")]


def in_cluster(kube, around):
    return check_in_cluster(
        kube, {"podName": "counter", "targetNode": "worker-2"}, "default", "podmigration", around=around
    )[1]


def test_the_pods_are_read_in_one_list_and_namespaces_only_when_a_term_needs_them():
    pod = anti_affinity(make_pod(), app="anchor")
    kube = FakeKube(pods=[pod, make_pod("anchor", "worker-2")], nodes=NODES[:2], helper_pods=HELPER_PODS)
    assert reasons(in_cluster(kube, lambda _: read_around(kube))) == ["AffinityNotSatisfied"]
    assert kube.lists == ["pods"]

    term = pod["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    term["namespaceSelector"] = {"matchLabels": {"team": "x"}}
    kube = FakeKube(pods=[pod, make_pod("anchor", "worker-2", namespace="x")], nodes=NODES[:2], helper_pods=HELPER_PODS)
    kube.namespace_labels = {"default": {}, "x": {"team": "x"}}
    assert reasons(in_cluster(kube, lambda _: read_around(kube))) == ["AffinityNotSatisfied"]
    assert kube.lists == ["pods", "namespaces"]


def test_without_a_reader_no_pod_is_listed_and_the_rules_about_them_are_not_checked():
    """The admission webhooks' way (around=None): they must answer fast, and Preparing checks these rules."""
    pod = anti_affinity(make_pod(), app="anchor")
    kube = FakeKube(pods=[pod, make_pod("anchor", "worker-2")], nodes=NODES[:2], helper_pods=HELPER_PODS)
    assert in_cluster(kube, None).ok and kube.lists == []


def test_the_reader_is_not_called_for_a_pod_that_does_not_exist():
    kube = FakeKube(nodes=NODES[:2], helper_pods=HELPER_PODS)
    assert reasons(in_cluster(kube, lambda _: pytest.fail("pods read"))) == ["PodNotFound"]
