from pmfakes import make_node, make_pod

from podmigration.domain.placement import Around, Cluster, choose_target, target_refusals
from podmigration.domain.scheduling import placement_refusals

HELPERS = {"worker-0": True, "worker-1": True, "worker-2": True, "worker-3": True, "worker-4": True}


def reasons(refusals):
    return [r.reason for r in refusals]


def choose(pod, nodes, helpers=HELPERS, others=()):
    return choose_target(pod, Cluster.of(pod, nodes, Around([pod, *others])), pod["spec"]["nodeName"], helpers)


def test_ties_go_to_the_first_node_by_name_and_never_the_source():
    nodes = [make_node("worker-3"), make_node("worker-1"), make_node("worker-2")]
    chosen, rejected = choose(make_pod(node="worker-1"), nodes)
    assert chosen == "worker-2"
    assert reasons(rejected["worker-1"]) == ["SameNode"]


def busy(name, node, cpu="0", memory="0"):
    pod = make_pod(name, node)
    pod["spec"]["containers"][0]["resources"] = {"requests": {"cpu": cpu, "memory": memory}}
    return pod


def test_picks_the_least_loaded_fitting_node():
    """The mean of requested CPU and memory over allocatable, the moving pod's own included."""
    nodes = [make_node("worker-1"), make_node("worker-2"), make_node("worker-3"), make_node("worker-4")]
    others = [busy("a", "worker-2", cpu="2"), busy("b", "worker-3", memory="4Gi"), busy("c", "worker-4", cpu="1")]
    assert choose(make_pod(node="worker-1"), nodes, others=others)[0] == "worker-4"
    # Pods without requests count as the scheduler's defaults (100m CPU, 200 MiB), so they spread too.
    idle = [make_pod(f"p{i}", "worker-2") for i in range(3)] + [make_pod("q", "worker-3")]
    assert choose(make_pod(node="worker-1"), nodes[:3], others=idle)[0] == "worker-3"
    # A bigger node with the same requests is less loaded.
    big = make_node("worker-0", allocatable={"cpu": "64", "memory": "256Gi", "pods": "110"})
    assert choose(make_pod(node="worker-1"), [*nodes, big], others=others)[0] == "worker-0"


def test_the_least_loaded_node_is_skipped_when_it_does_not_fit():
    nodes = [make_node("worker-1"), make_node("worker-2"), make_node("worker-3", unschedulable=True)]
    chosen, rejected = choose(make_pod(node="worker-1"), nodes, others=[busy("a", "worker-2", cpu="3")])
    assert chosen == "worker-2" and reasons(rejected["worker-3"]) == ["TargetUnschedulable"]


def test_skips_not_ready_cordoned_and_helperless_nodes():
    nodes = [
        make_node("a", ready=False),
        make_node("b", unschedulable=True),
        make_node("c"),
        make_node("d"),
        make_node("e"),
    ]
    chosen, rejected = choose(make_pod(node="x"), nodes, {"a": True, "b": True, "c": False, "e": True})
    assert chosen == "e"
    assert rejected["a"][0].message == "target node a is not Ready"
    assert rejected["b"][0].message == "target node b is unschedulable (cordoned)"
    assert rejected["c"][0].message == "the podmigration node-helper on target node c is not ready"
    assert rejected["d"][0].message == "target node d has no podmigration node-helper"


def test_no_node_fits():
    chosen, rejected = choose(make_pod(node="worker-1"), [make_node("worker-1")])
    assert chosen is None and list(rejected) == ["worker-1"]


def test_node_selector():
    pod = make_pod(nodeSelector={"disk": "ssd"})
    assert placement_refusals(pod, make_node("n", labels={"disk": "ssd"})) == []
    (refusal,) = placement_refusals(pod, make_node("n", labels={"disk": "hdd"}))
    assert refusal.message == "node n does not match the pod's nodeSelector disk=ssd"


def affinity(*terms):
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}}


def test_required_affinity_operators():
    zone_in = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}
    not_gpu = {"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}
    pod = make_pod(affinity=affinity(zone_in))
    assert placement_refusals(pod, make_node("n", labels={"zone": "b"})) == []
    assert reasons(placement_refusals(pod, make_node("n", labels={"zone": "c"}))) == ["TargetIncompatible"]
    assert reasons(placement_refusals(pod, make_node("n"))) == ["TargetIncompatible"]

    both = make_pod(affinity=affinity({"matchExpressions": zone_in["matchExpressions"] + not_gpu["matchExpressions"]}))
    assert placement_refusals(both, make_node("n", labels={"zone": "a", "gpu": "1"}))
    assert not placement_refusals(both, make_node("n", labels={"zone": "a"}))

    not_in = make_pod(affinity=affinity({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}))
    assert placement_refusals(not_in, make_node("n", labels={"zone": "a"}))
    assert not placement_refusals(not_in, make_node("n"))  # NotIn holds when the label is absent

    exists = make_pod(affinity=affinity({"matchExpressions": [{"key": "fast", "operator": "Exists"}]}))
    assert not placement_refusals(exists, make_node("n", labels={"fast": ""}))
    assert placement_refusals(exists, make_node("n"))


def test_affinity_terms_are_alternatives():
    pod = make_pod(
        affinity=affinity(
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n"]}]},
        )
    )
    assert not placement_refusals(pod, make_node("n", labels={"zone": "z"}))
    assert (
        placement_refusals(pod, make_node("m", labels={"zone": "z"}))[0].message
        == "node m does not satisfy the pod's required node affinity"
    )


def test_taints_need_tolerations():
    tainted = make_node("n", taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}])
    (refusal,) = placement_refusals(make_pod(), tainted)
    assert refusal.message == "node n has taint dedicated=db:NoSchedule that the pod does not tolerate"
    equal = make_pod(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}])
    assert placement_refusals(equal, tainted) == []
    wrong_value = make_pod(tolerations=[{"key": "dedicated", "value": "web"}])
    assert placement_refusals(wrong_value, tainted)
    exists_any = make_pod(tolerations=[{"operator": "Exists"}])
    assert placement_refusals(exists_any, tainted) == []


def test_no_execute_counts_and_prefer_no_schedule_does_not():
    node = make_node("n", taints=[{"key": "a", "effect": "PreferNoSchedule"}, {"key": "b", "effect": "NoExecute"}])
    assert [r.message for r in placement_refusals(make_pod(), node)] == [
        "node n has taint b:NoExecute that the pod does not tolerate"
    ]
    wrong_effect = make_pod(tolerations=[{"key": "b", "operator": "Exists", "effect": "NoSchedule"}])
    assert placement_refusals(wrong_effect, node)


def test_explicit_target_gets_every_reason_at_once():
    node = make_node("worker-1", ready=False, unschedulable=True)
    cluster = Cluster.of(make_pod(), [node], Around([]))
    assert reasons(target_refusals(make_pod(), node, "worker-1", {}, cluster)) == [
        "SameNode",
        "TargetNotReady",
        "TargetUnschedulable",
        "TargetNoHelper",
    ]
