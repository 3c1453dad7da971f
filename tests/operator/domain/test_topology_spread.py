"""DoNotSchedule topology spread constraints on a target node (domain/topologyspread.py), as the scheduler's
PodTopologySpread filter decides them."""

from pmfakes import make_node, make_pod

from podmigration.domain.topologyspread import spread_refusals

HOST = "kubernetes.io/hostname"


def nodes(*names, **extra):
    return {n: make_node(n, **extra) for n in names}


def spread(pod, max_skew=1, key=HOST, **fields):
    pod["spec"]["topologySpreadConstraints"] = [
        {
            "maxSkew": max_skew,
            "topologyKey": key,
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "web"}},
            **fields,
        }
    ]
    return pod


def web(name, node, **labels):
    return make_pod(name, node, labels={"app": "web", **labels})


def test_a_move_that_would_skew_the_spread_too_far_is_refused():
    pod = spread(web("web-0", "worker-1"))
    cluster = nodes("worker-1", "worker-2")
    (refusal,) = spread_refusals(pod, cluster["worker-2"], [web("web-1", "worker-2")], cluster)
    assert refusal.reason == "TopologySpreadNotSatisfied"
    assert refusal.message == (
        "node worker-2 breaks the pod's topologySpreadConstraint (topologyKey kubernetes.io/hostname, maxSkew 1, "
        "labelSelector app=web): kubernetes.io/hostname=worker-2 would have 2 of the pods it selects, the emptiest "
        "kubernetes.io/hostname 0 (skew 2)"
    )


def test_the_source_no_longer_counts_where_it_was():
    """worker-1 holds only the pod that moves: without it, worker-2 and worker-3 even, and the move fits."""
    pod = spread(web("web-0", "worker-1"), max_skew=2)
    cluster = nodes("worker-1", "worker-2", "worker-3")
    others = [web("web-1", "worker-2"), web("web-2", "worker-3")]
    assert spread_refusals(pod, cluster["worker-2"], others, cluster) == []
    assert spread_refusals(spread(web("web-0", "worker-1")), cluster["worker-2"], others, cluster)


def test_only_pods_of_the_namespace_that_the_selector_matches_count():
    pod = spread(web("web-0", "worker-1"))
    cluster = nodes("worker-1", "worker-2")
    others = [make_pod("db", "worker-2"), make_pod("web-1", "worker-2", namespace="other", labels={"app": "web"})]
    terminating = web("web-2", "worker-2")
    terminating["metadata"]["deletionTimestamp"] = "2030-01-01T00:00:00Z"
    assert spread_refusals(pod, cluster["worker-2"], [*others, terminating], cluster) == []


def test_domains_are_those_of_eligible_nodes():
    """A node the pod may not go to (its nodeSelector) is no domain, so its emptiness does not count."""
    pod = spread(web("web-0", "worker-1"))
    pod["spec"]["nodeSelector"] = {"pool": "web"}
    cluster = {
        **nodes("worker-1", "worker-2", labels={"pool": "web"}),
        "worker-3": make_node("worker-3", labels={"pool": "db"}),
    }
    others = [web("web-1", "worker-1"), web("web-2", "worker-2")]
    assert spread_refusals(pod, cluster["worker-2"], others, cluster) == []
    pod["spec"]["topologySpreadConstraints"][0]["nodeAffinityPolicy"] = "Ignore"
    assert spread_refusals(pod, cluster["worker-2"], others, cluster)


def test_tainted_nodes_count_unless_taints_are_honored():
    pod = spread(web("web-0", "worker-1"))
    cluster = {
        **nodes("worker-1", "worker-2"),
        "control-plane": make_node("control-plane", taints=[{"key": "cp", "effect": "NoSchedule"}]),
    }
    others = [web("web-1", "worker-1"), web("web-2", "worker-2")]
    # The tainted node is an empty domain, so worker-2 (1 pod + this one) would be 2 above it.
    assert spread_refusals(pod, cluster["worker-2"], others, cluster)
    pod["spec"]["topologySpreadConstraints"][0]["nodeTaintsPolicy"] = "Honor"
    assert spread_refusals(pod, cluster["worker-2"], others, cluster) == []


def test_min_domains_counts_missing_domains_as_empty():
    pod = spread(web("web-0", "worker-1"), minDomains=3)
    cluster = nodes("worker-1", "worker-2")
    others = [web("web-1", "worker-1"), web("web-2", "worker-2")]
    assert spread_refusals(pod, cluster["worker-2"], others, cluster)  # 2 - 0, not 2 - 1
    pod["spec"]["topologySpreadConstraints"][0]["minDomains"] = 2
    assert spread_refusals(pod, cluster["worker-2"], others, cluster) == []


def test_match_label_keys_narrow_the_selector_to_the_pods_value():
    pod = spread(web("web-0", "worker-1", rev="2"), matchLabelKeys=["rev"])
    cluster = nodes("worker-1", "worker-2")
    old = [web("old-1", "worker-2", rev="1"), web("old-2", "worker-2", rev="1")]
    assert spread_refusals(pod, cluster["worker-2"], old, cluster) == []


def test_a_target_without_the_topology_key_is_refused_and_schedule_anyway_is_not_checked():
    pod = spread(web("web-0", "worker-1"), key="zone")
    cluster = nodes("worker-1", "worker-2")
    (refusal,) = spread_refusals(pod, cluster["worker-2"], [], cluster)
    assert refusal.message.startswith("node worker-2 has no label zone, the pod's topologySpreadConstraint")
    pod["spec"]["topologySpreadConstraints"][0]["whenUnsatisfiable"] = "ScheduleAnyway"
    assert spread_refusals(pod, cluster["worker-2"], [], cluster) == []
