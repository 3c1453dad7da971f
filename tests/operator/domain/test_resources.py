"""Requests against a target's allocatable (domain/resources.py): NodeResourcesFit, and the load that picks a
target."""

from decimal import Decimal

import pytest
from pmfakes import make_node, make_pod

from podmigration.domain.resources import fit_refusals, load, pod_requests, quantity


def requesting(name="app", node="worker-1", **requests):
    pod = make_pod(name, node)
    pod["spec"]["containers"][0]["resources"] = {"requests": requests}
    return pod


@pytest.mark.parametrize(
    "text, value",
    [("250m", "0.25"), ("2", "2"), ("1Gi", str(1024**3)), ("500M", "500000000"), ("1e3", "1000"), ("1.5Ki", "1536")],
)
def test_quantities(text, value):
    assert quantity(text) == Decimal(value)


@pytest.mark.parametrize("text", ["", "1X", "Gi", "1..2"])
def test_bad_quantities_are_refused(text):
    with pytest.raises(ValueError, match="not a resource quantity"):
        quantity(text)


def test_pod_requests_sum_containers_take_the_biggest_init_container_and_add_overhead():
    pod = make_pod(containers=("a", "b"))
    pod["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "100m", "memory": "64Mi"}}
    pod["spec"]["containers"][1]["resources"] = {"requests": {"cpu": "200m"}}
    pod["spec"]["initContainers"] = [{"name": "init", "resources": {"requests": {"cpu": "1", "memory": "1Mi"}}}]
    pod["spec"]["overhead"] = {"memory": "10Mi"}
    assert pod_requests(pod) == {"cpu": Decimal(1), "memory": Decimal(74 * 1024**2)}
    # Pod-level requests replace the containers' sum.
    pod["spec"]["resources"] = {"requests": {"cpu": "2"}}
    assert pod_requests(pod)["cpu"] == Decimal(2)


def test_a_node_without_room_left_is_refused():
    node = make_node("worker-2", allocatable={"cpu": "2", "memory": "1Gi", "pods": "110"})
    there = [requesting("db", "worker-2", cpu="1500m", memory="512Mi")]
    (refusal,) = fit_refusals(requesting(cpu="1"), node, there)
    assert refusal.reason == "InsufficientResources"
    assert refusal.message == (
        "node worker-2 has not enough cpu left for the pod: it requests 1000m, 500m of 2000m allocatable is free"
    )
    assert fit_refusals(requesting(cpu="500m", memory="512Mi"), node, there) == []
    assert [r.message.split(":")[0] for r in fit_refusals(requesting(memory="1Gi"), node, there)] == [
        "node worker-2 has not enough memory left for the pod"
    ]


def test_pod_count_and_extended_resources():
    full = make_node("n", allocatable={"cpu": "4", "memory": "8Gi", "pods": "1"})
    assert [r.message.split(":")[0] for r in fit_refusals(make_pod(), full, [make_pod("other", "n")])] == [
        "node n has not enough pods left for the pod"
    ]
    assert "nvidia.com/gpu" in fit_refusals(requesting(**{"nvidia.com/gpu": "1"}), make_node("n"), [])[0].message


def test_a_node_that_reports_no_allocatable_is_not_checked():
    node = make_node("n")
    del node["status"]["allocatable"]
    assert fit_refusals(requesting(cpu="100"), node, []) == []
    assert load(make_pod(), node, []) == 0.0


def test_load_is_the_mean_share_of_cpu_and_memory():
    node = make_node("n", allocatable={"cpu": "4", "memory": "8Gi", "pods": "110"})
    assert load(requesting(cpu="1", memory="2Gi"), node, [requesting("b", "n", cpu="1", memory="2Gi")]) == 0.5
    # Missing requests count as 100m CPU and 200 MiB, an explicit zero as zero.
    assert load(requesting(cpu="0", memory="0"), node, [make_pod("b", "n")]) == pytest.approx(
        (0.1 / 4 + 200 / 8192) / 2
    )
