"""The drain's pure decisions (domain/drainplan.py): which pods migrate, are evicted or stay, and what a
disruption budget holds back; the `kubectl migrate drain` command around them is tests/operator/cli/test_drain.py."""

import pytest
from pmfakes import make_pdb, make_pod, owned_by

from podmigration.domain.drainplan import EVICT, MIGRATE, STAY, decide, holding_back, migration_timeout
from podmigration.domain.preflight import Plan
from podmigration.domain.refusals import Refusal
from podmigration.domain.scheduling import selects


def test_holding_back():
    web = make_pod("web", labels={"app": "web", "tier": "front"})
    other_ns = make_pod("web", namespace="other", labels={"app": "web"})
    budget = make_pdb("web-pdb", 1, {"app": "web"})
    assert holding_back(web, [budget], []) is None
    assert holding_back(web, [budget], [make_pod("web-2", labels={"app": "web"})]) == "web-pdb"
    assert holding_back(web, [budget], [other_ns]) is None
    assert holding_back(web, [{**budget, "status": {}}], []) == "web-pdb"  # not yet computed: none allowed
    assert holding_back(web, [make_pdb("db-pdb", 0, {"app": "db"})], []) is None


def test_selects_as_policy_v1():
    labels = {"app": "web", "tier": "front"}
    assert selects({}, labels) and not selects(None, labels)
    assert selects(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "back"]},
                {"key": "canary", "operator": "DoesNotExist"},
            ],
        },
        labels,
    )
    assert not selects({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}, labels)


def test_migration_timeout_ends_with_the_drain_within_the_crd_range():
    assert [migration_timeout(s) for s in (600.5, 3, 9000)] == [600, 10, 3600]


UNSUPPORTED = Refusal("UnsupportedVolume", "volume scratch is a hostPath")


@pytest.mark.parametrize(
    "managed, evict, force, action, why",
    [
        (
            False,
            True,
            False,
            STAY,
            "UnsupportedVolume: volume scratch is a hostPath; unmanaged pod: use --force to evict it anyway",
        ),
        (False, True, True, EVICT, "UnsupportedVolume: volume scratch is a hostPath"),
        (True, True, False, EVICT, "UnsupportedVolume: volume scratch is a hostPath"),
        (False, False, True, STAY, "not evicted (--no-evict): UnsupportedVolume: volume scratch is a hostPath"),
    ],
)
def test_decide_evicts_an_unmanaged_pod_only_with_force(managed, evict, force, action, why):
    pod = owned_by(make_pod("cache"), "ReplicaSet", "cache-5d8f9") if managed else make_pod("cache")
    decision = decide(pod, Plan("worker-1", None, [UNSUPPORTED]), evict=evict, force=force)
    assert (decision.action, decision.why) == (action, why)


@pytest.mark.parametrize("managed", [False, True])
def test_decide_migrates_managed_or_not(managed):
    pod = owned_by(make_pod("web"), "ReplicaSet", "web-5d8f9") if managed else make_pod("web")
    assert decide(pod, Plan("worker-1", "worker-2"), evict=True).action == MIGRATE
