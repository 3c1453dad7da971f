"""Eviction of opted-in pods: migrate instead (429 until the pod is gone), evict as usual what cannot move."""

from datetime import UTC, datetime

import kopf
import pytest
from pmfakes import CONFIG, FakeKube, make_helper_pod, make_node, make_pod

from podmigration.controller.context import Deps
from podmigration.domain import eviction
from podmigration.domain.refusals import Refusal
from podmigration.webhooks import admission


def labelled(value=None):
    pod = make_pod()
    if value:
        pod["metadata"]["labels"][eviction.EVICTION_LABEL] = value
    return pod


def namespace(value=None):
    return {"metadata": {"name": "default", "labels": {eviction.EVICTION_LABEL: value} if value else {}}}


@pytest.mark.parametrize(
    "pod, ns, default, expected",
    [
        (None, None, "evict", "evict"),
        (None, None, "migrate", "migrate"),
        (None, "migrate", "evict", "migrate"),
        ("evict", "migrate", "migrate", "evict"),
        ("migrate", "evict", "evict", "migrate"),
        ("bogus", None, "evict", "evict"),
    ],
)
def test_pod_label_beats_namespace_label_beats_the_cluster_default(pod, ns, default, expected):
    assert eviction.wanted(labelled(pod), namespace(ns), default) == expected


def running(phase="Transferring", **annotations):
    return {
        "metadata": {"name": "counter-evict-x", "annotations": annotations},
        "spec": {"podName": "counter"},
        "status": {"phase": phase, "sourcePodUID": "uid-counter"},
    }


def test_opted_out_pods_are_evicted_without_a_word():
    assert eviction.decide(make_pod(), "evict", [], []) == eviction.Decision(allow=True)


def test_an_opted_in_pod_starts_a_migration_and_the_eviction_is_retried():
    decision = eviction.decide(make_pod(), "migrate", [], [])
    assert (decision.allow, decision.start) == (False, True) and "retry the eviction" in decision.message
    assert eviction.migration_for(make_pod())["metadata"]["annotations"] == {
        eviction.REQUESTED_BY_ANNOTATION: "eviction"
    }


def test_a_retried_eviction_waits_for_the_running_migration():
    decision = eviction.decide(make_pod(), "migrate", [running()], [])
    assert (decision.allow, decision.start) == (False, False) and "counter-evict-x" in decision.message


def test_a_pod_that_cannot_move_is_evicted_and_says_why():
    decision = eviction.decide(make_pod(), "migrate", [], [Refusal("UnsupportedVolume", "volume x is a hostPath")])
    assert decision.allow and decision.event == (
        "EvictedNotMigrated",
        "cannot live-migrate (UnsupportedVolume: volume x is a hostPath); evicted as usual",
    )


def ended(phase, seconds, name="counter-evict-x"):
    """An eviction-started migration of the pod that ended ``seconds`` after 00:00."""
    migration = running(phase, **{eviction.REQUESTED_BY_ANNOTATION: "eviction"})
    migration["metadata"]["name"] = name
    migration["status"].update(
        reason="Timeout",
        message="too slow",
        phaseTransitions=[{"phase": phase, "time": f"2030-01-01T00:00:{seconds:02d}Z"}],
    )
    return migration


def at(seconds):
    return datetime(2030, 1, 1, 0, 0, seconds, tzinfo=UTC)


def test_a_failed_eviction_migration_is_retried_after_a_backoff():
    failed = [ended("Failed", 0)]
    waiting = eviction.decide(make_pod(), "migrate", failed, [], now=at(5))
    assert (waiting.allow, waiting.start, waiting.code) == (False, False, 429)
    assert "attempt 2 of 3 in 5s" in waiting.message
    retried = eviction.decide(make_pod(), "migrate", failed, [], now=at(10))
    assert (retried.allow, retried.start) == (False, True) and "attempt 2 of 3 started" in retried.message
    # the backoff doubles: 20 s after the second failure
    failed.append(ended("Failed", 30, "counter-evict-y"))
    assert not eviction.decide(make_pod(), "migrate", failed, [], now=at(49)).start
    assert eviction.decide(make_pod(), "migrate", failed, [], now=at(50)).start


def test_after_the_last_attempt_the_pod_is_evicted():
    failed = [ended("Failed", 0, "a"), ended("Failed", 20, "b"), ended("Failed", 50, "c")]
    decision = eviction.decide(make_pod(), "migrate", failed, [], now=at(59))
    assert decision.allow and decision.event[1].endswith(
        "ended Failed (Timeout: too slow) after 3 attempts; evicted as usual"
    )


def test_a_pod_preparing_found_no_node_for_is_evicted_at_once():
    """The webhook leaves the rules about other pods to Preparing: its refusal ends the retries."""
    refused = ended("Failed", 0)
    refused["status"].update(reason="NoTargetAvailable", message="no node can take pod default/counter")
    decision = eviction.decide(make_pod(), "migrate", [refused], [], now=at(1))
    assert decision.allow and "(NoTargetAvailable: no node can take pod default/counter)" in decision.event[1]
    refused["status"]["reason"] = "AffinityNotSatisfied"
    assert eviction.decide(make_pod(), "migrate", [refused], [], now=at(1)).allow


def test_a_cancelled_or_no_longer_movable_pod_is_evicted_at_once():
    assert eviction.decide(make_pod(), "migrate", [ended("Cancelled", 0)], [], now=at(1)).allow
    refused = eviction.decide(
        make_pod(), "migrate", [ended("Failed", 0)], [Refusal("UnsupportedVolume", "x")], now=at(59)
    )
    assert refused.allow and "ended Failed (Timeout: too slow); evicted as usual" in refused.event[1]


@pytest.fixture
def deps():
    kube = FakeKube(
        pods=[labelled("migrate")],
        nodes=[make_node("worker-1"), make_node("worker-2")],
        helper_pods=[make_helper_pod("worker-1", "10.0.0.1"), make_helper_pod("worker-2", "10.0.0.2")],
    )
    kube.get_namespace = lambda name: namespace()
    events = []
    return Deps(kube=kube, helpers=None, config=CONFIG, events=lambda obj, **kw: events.append(kw))


def test_webhook_answers_429_and_creates_one_migration(deps):
    memo = kopf.Memo(deps=deps)
    with pytest.raises(kopf.AdmissionError) as denied:
        admission.evict(body={"metadata": {"name": "counter"}}, namespace="default", dryrun=False, memo=memo)
    assert denied.value.code == 429
    (migration,) = deps.kube.migrations.values()
    assert migration["spec"] == {"podName": "counter"} and migration["metadata"]["name"] in str(denied.value)


def test_with_the_namespace_queue_full_the_eviction_waits_and_creates_nothing(deps):
    """The drain retries the 429 and the pod moves once the queue has room; it is never evicted for it."""
    deps.config = deps.config.__class__(**{**deps.config.__dict__, "max_queued_per_namespace": 1})
    deps.kube.migrations[("default", "queued")] = {
        "metadata": {"name": "queued", "namespace": "default", "creationTimestamp": "2030-01-01T00:00:00Z"},
        "spec": {"podName": "other"},
        "status": {"phase": "Pending", "reason": "Queued"},
    }
    with pytest.raises(kopf.AdmissionError) as denied:
        admission.evict(
            body={"metadata": {"name": "counter"}}, namespace="default", dryrun=False, memo=kopf.Memo(deps=deps)
        )
    assert denied.value.code == 429 and "waiting for a slot (limit 1 per namespace" in str(denied.value)
    assert list(deps.kube.migrations) == [("default", "queued")]


def test_webhook_lists_no_pod_of_the_cluster(deps):
    """An eviction is answered fast: the rules about other pods, which would need every pod, are Preparing's."""
    with pytest.raises(kopf.AdmissionError):
        admission.evict(
            body={"metadata": {"name": "counter"}}, namespace="default", dryrun=False, memo=kopf.Memo(deps=deps)
        )
    assert deps.kube.lists == []


def test_webhook_creates_nothing_on_a_dry_run(deps):
    with pytest.raises(kopf.AdmissionError):
        admission.evict(
            body={"metadata": {"name": "counter"}}, namespace="default", dryrun=True, memo=kopf.Memo(deps=deps)
        )
    assert deps.kube.migrations == {}


def test_a_retried_eviction_of_a_moved_statefulset_pod_is_told_the_pod_is_gone(deps):
    """Evictions go by name: after the move, a drain's retry reaches the restore, which must not be evicted."""
    restore = labelled("migrate")
    restore["spec"]["nodeName"] = "worker-2"
    restore["metadata"]["annotations"]["podmigration.dev/migration"] = "counter-evict-x"
    deps.kube.pods[("default", "counter")] = restore
    done = running("Succeeded", **{eviction.REQUESTED_BY_ANNOTATION: "eviction"})
    done["status"]["sourceNode"] = "worker-1"
    deps.kube.migrations[("default", "counter-evict-x")] = done
    deps.kube.nodes[0]["spec"]["unschedulable"] = True  # worker-1 is being drained
    with pytest.raises(kopf.AdmissionError) as answer:
        admission.evict(
            body={"metadata": {"name": "counter"}}, namespace="default", dryrun=False, memo=kopf.Memo(deps=deps)
        )
    assert answer.value.code == 404 and "live-migrated away from node worker-1" in str(answer.value)
    deps.kube.nodes[1]["spec"]["unschedulable"] = True  # its own node drained too: a real eviction, decided as usual
    assert (
        admission.evict(
            body={"metadata": {"name": "counter"}}, namespace="default", dryrun=False, memo=kopf.Memo(deps=deps)
        )
        is None
    )  # nowhere left to move: evicted
    assert [e["reason"] for e in deps.kube.events] == ["EvictedNotMigrated"]


def test_an_opted_in_pod_that_cannot_move_is_evicted_with_an_event(deps):
    deps.kube.nodes[1]["spec"]["unschedulable"] = True  # nowhere to go
    assert (
        admission.evict(
            body={"metadata": {"name": "counter"}}, namespace="default", dryrun=False, memo=kopf.Memo(deps=deps)
        )
        is None
    )
    (event,) = deps.kube.events
    assert event["reason"] == "EvictedNotMigrated" and "NoTargetAvailable" in event["message"]


def test_an_event_that_cannot_be_posted_does_not_change_the_answer(deps):
    deps.kube.nodes[1]["spec"]["unschedulable"] = True  # nowhere to go: evicted, with an Event that fails

    def unreachable(*args):
        raise RuntimeError("API server unreachable")

    deps.kube.post_event = unreachable
    assert (
        admission.evict(
            body={"metadata": {"name": "counter"}}, namespace="default", dryrun=False, memo=kopf.Memo(deps=deps)
        )
        is None
    )
