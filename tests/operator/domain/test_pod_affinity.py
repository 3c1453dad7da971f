"""Required inter-pod affinity and anti-affinity on a target node (domain/podaffinity.py), both ways, as the
scheduler's InterPodAffinity filter decides them."""

from pmfakes import make_node, make_pod

from podmigration.domain.podaffinity import affinity_refusals, term_selects, uses_namespace_selector

ZONES = {"worker-1": "a", "worker-2": "b", "worker-3": "b"}
NODES = {n: make_node(n, labels={"zone": z}) for n, z in ZONES.items()}
LABELS = {n: node["metadata"]["labels"] for n, node in NODES.items()}


def term(key="kubernetes.io/hostname", **selector):
    return {"labelSelector": {"matchLabels": selector}, "topologyKey": key}


def with_affinity(pod, kind, *terms):
    pod["spec"]["affinity"] = {kind: {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}
    return pod


def refusals(pod, target, others, namespace_labels=None, only_namespace=None):
    return affinity_refusals(pod, NODES[target], others, LABELS, namespace_labels or {}, only_namespace)


def test_own_anti_affinity_keeps_the_pod_off_a_node_with_a_selected_pod():
    pod = with_affinity(make_pod("web"), "podAntiAffinity", term(app="db"))
    db = make_pod("db", "worker-2")
    (refusal,) = refusals(pod, "worker-2", [db])
    assert refusal.reason == "AffinityNotSatisfied"
    assert refusal.message == (
        "node worker-2 breaks the pod's required podAntiAffinity (topologyKey kubernetes.io/hostname, labelSelector "
        "app=db): pod default/db on node worker-2 has the same kubernetes.io/hostname=worker-2"
    )
    assert refusals(pod, "worker-3", [db]) == []


def test_the_topology_key_is_a_node_label_shared_by_a_domain():
    pod = with_affinity(make_pod("web"), "podAntiAffinity", term("zone", app="db"))
    assert refusals(pod, "worker-3", [make_pod("db", "worker-2")])  # zone b, like worker-2
    assert refusals(pod, "worker-1", [make_pod("db", "worker-2")]) == []


def test_own_affinity_needs_a_selected_pod_in_the_domain():
    pod = with_affinity(make_pod("web"), "podAffinity", term("zone", app="cache"))
    cache = make_pod("cache", "worker-2")
    assert refusals(pod, "worker-3", [cache]) == []
    (refusal,) = refusals(pod, "worker-1", [cache])
    assert refusal.message == (
        "node worker-1 breaks the pod's required podAffinity (topologyKey zone, labelSelector app=cache): "
        "no pod it selects runs where zone=a"
    )


def test_affinity_to_a_missing_topology_key_is_refused():
    pod = with_affinity(make_pod("web"), "podAffinity", term("rack", app="cache"))
    (refusal,) = refusals(pod, "worker-2", [make_pod("cache", "worker-2")])
    assert "node worker-2 has no label rack, the topologyKey of the pod's required podAffinity" in refusal.message


def test_the_first_pod_of_a_self_affine_group_goes_anywhere():
    """No pod in the cluster matches, and the pod matches its own term: the scheduler lets it through."""
    pod = with_affinity(make_pod("web", labels={"app": "web"}), "podAffinity", term("zone", app="web"))
    assert refusals(pod, "worker-1", []) == []
    assert refusals(pod, "worker-1", [make_pod("web-2", "worker-2", labels={"app": "web"})])


def test_existing_pods_anti_affinity_against_this_pod():
    """The rule holds both ways: a pod already on the node that must not be with this one keeps it off."""
    loner = with_affinity(make_pod("loner", "worker-2"), "podAntiAffinity", term(app="web"))
    (refusal,) = refusals(make_pod("web"), "worker-2", [loner])
    assert refusal.message == (
        "node worker-2 breaks the required podAntiAffinity (topologyKey kubernetes.io/hostname, labelSelector "
        "app=web) of pod default/loner on node worker-2: it selects this pod, and both would have "
        "kubernetes.io/hostname=worker-2"
    )
    assert refusals(make_pod("web"), "worker-3", [loner]) == []
    assert refusals(make_pod("other", labels={"app": "other"}), "worker-2", [loner]) == []


def test_namespaces_of_a_term():
    pod = make_pod("web")
    other = make_pod("db", "worker-2", namespace="data")
    # Default: the namespace of the pod that has the term.
    assert not term_selects(term(app="db"), pod, other, {})
    assert term_selects({**term(app="db"), "namespaces": ["data"]}, pod, other, {})
    by_label = {**term(app="db"), "namespaceSelector": {"matchLabels": {"team": "x"}}}
    assert term_selects(by_label, pod, other, {"data": {"team": "x"}})
    assert not term_selects(by_label, pod, other, {"data": {"team": "y"}})
    assert term_selects({**term(app="db"), "namespaceSelector": {}}, pod, other, {})  # empty: every namespace
    # A null labelSelector selects no pod, an empty one every pod.
    assert not term_selects({"topologyKey": "zone"}, pod, make_pod("db"), {})
    assert term_selects({"topologyKey": "zone", "labelSelector": {}}, pod, make_pod("db"), {})


def test_namespace_labels_are_needed_only_for_namespace_selectors():
    plain = with_affinity(make_pod("a"), "podAntiAffinity", term(app="db"))
    assert not uses_namespace_selector([make_pod("x"), plain])
    selecting = with_affinity(make_pod("b"), "podAffinity", {**term(app="db"), "namespaceSelector": {}})
    assert uses_namespace_selector([plain, selecting])


def test_preferred_terms_are_not_checked():
    pod = make_pod("web")
    pod["spec"]["affinity"] = {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "podAffinityTerm": term(app="db")}]
        }
    }
    assert refusals(pod, "worker-2", [make_pod("db", "worker-2")]) == []


def test_with_one_namespace_read_only_what_its_pods_decide_is_checked():
    """A user who may list the pods of its own namespace only (the CLI's fallback): a conflict with one of them is
    real; a term that may reach pods elsewhere (by namespaceSelector, whose labels are unknown, or the pod's own
    affinity to pods it may not see) is not guessed at."""
    db = make_pod("db", "worker-2")
    pod = with_affinity(make_pod("web"), "podAntiAffinity", term(app="db"))
    assert refusals(pod, "worker-2", [db], only_namespace="default")
    anywhere = {**term(app="db"), "namespaceSelector": {"matchExpressions": [{"key": "t", "operator": "DoesNotExist"}]}}
    pod = with_affinity(make_pod("web"), "podAntiAffinity", anywhere)
    assert refusals(pod, "worker-2", [db])  # the namespace has no label t
    assert refusals(pod, "worker-2", [db], only_namespace="default") == []
    loner = with_affinity(make_pod("loner", "worker-2"), "podAntiAffinity", anywhere)
    assert refusals(make_pod("db"), "worker-2", [loner], only_namespace="default") == []

    elsewhere = with_affinity(make_pod("web"), "podAffinity", {**term(app="cache"), "namespaces": ["cache"]})
    assert refusals(elsewhere, "worker-1", [db])
    assert refusals(elsewhere, "worker-1", [db], only_namespace="default") == []
    # A term that keeps to the namespace read: every pod that counts (it matches all terms) is among those read.
    mixed = with_affinity(
        make_pod("web"), "podAffinity", term("zone", app="cache"), {**term("zone"), "namespaces": ["default", "cache"]}
    )
    cache = make_pod("cache", "worker-2")
    assert refusals(mixed, "worker-3", [cache], only_namespace="default") == []
    assert refusals(mixed, "worker-1", [cache], only_namespace="default")
