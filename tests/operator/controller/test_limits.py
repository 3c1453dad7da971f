"""A migration over the limits waits in Pending saying why, then runs; or gives up (QueueTimeout, QueueFull)
without touching anything. The decisions themselves: tests/operator/domain/test_queue_limits.py."""

from pmfakes import FakeStop, run_migration

from podmigration.controller.context import Run
from podmigration.controller.steps import prepare


def test_queued_migration_waits_in_pending_with_its_reason_then_runs(world):
    kube, _, clock, _, deps = world
    kube.create_migration(
        "default", {"metadata": {"name": "counter-mig"}, "spec": {"podName": "counter", "targetNode": "worker-2"}}
    )
    busy = {
        "metadata": {"name": "other", "namespace": "default", "creationTimestamp": "2029-12-31T00:00:00Z"},
        "spec": {"podName": "x"},
        "status": {"phase": "Transferring", "sourceNode": "worker-1"},
    }
    kube.migrations[("default", "other")] = busy
    seen = []

    def record_then_free(k):
        status = k.migrations[("default", "counter-mig")].get("status") or {}
        seen.append((status.get("phase"), status.get("reason"), status.get("message")))
        if len(seen) == 5:
            busy["status"]["phase"] = "Succeeded"

    kube.on_get_migration.insert(0, record_then_free)
    config = deps.config.__class__(**{**deps.config.__dict__, "max_outbound_per_node": 1})
    run_migration(deps.__class__(**{**deps.__dict__, "config": config}), "default", "counter-mig", FakeStop(clock))
    final = kube.migrations[("default", "counter-mig")]["status"]
    assert final["phase"] == "Succeeded", final["message"]
    assert (
        "Pending",
        "Queued",
        "waiting for a free slot on node worker-1: 1 migration(s) out of it run (limit 1 "
        "per node), 0 waiting ahead of this one",
    ) in seen


def test_a_started_migration_counts_against_its_node_at_once(world):
    kube, _, clock, _, deps = world
    kube.create_migration(
        "default", {"metadata": {"name": "counter-mig"}, "spec": {"podName": "counter", "targetNode": "worker-2"}}
    )
    prepare.start(Run(deps, "default", "counter-mig", FakeStop(clock)), kube.get_migration("default", "counter-mig"))
    status = kube.migrations[("default", "counter-mig")]["status"]
    assert (status["phase"], status["sourceNode"]) == ("Preparing", "worker-1")


def _busy(kube, name="other", namespace="default"):
    """A migration running out of worker-1 (created earlier), holding the one slot of a limit of 1."""
    kube.migrations[(namespace, name)] = {
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": "2029-12-31T00:00:00Z"},
        "spec": {"podName": "x"},
        "status": {"phase": "Restoring", "sourceNode": "worker-1"},
    }


def _with_config(deps, **changes):
    config = deps.config.__class__(**{**deps.config.__dict__, **changes})
    return deps.__class__(**{**deps.__dict__, "config": config})


def test_a_migration_queued_past_its_queue_timeout_fails_untouched(world):
    """Behind a restore that never ends: QueueTimeout, saying how long it waited and behind what; the pod is as it
    was (no fence, no helper call, no patch of the pod)."""
    kube, helpers, clock, _, deps = world
    _busy(kube)
    pod_before = dict(kube.pods[("default", "counter")]["metadata"]["labels"])
    kube.create_migration(
        "default", {"metadata": {"name": "counter-mig"}, "spec": {"podName": "counter", "queueTimeoutSeconds": 30}}
    )
    run_migration(_with_config(deps, max_per_cluster=1), "default", "counter-mig", FakeStop(clock))
    status = kube.migrations[("default", "counter-mig")]["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "QueueTimeout"), status
    assert status["message"].startswith("waited 3")
    assert (
        "(queueTimeoutSeconds 30) without a slot; waiting for a free slot: 1 migration(s) run in the cluster"
        in (status["message"])
    )
    assert [p["phase"] for p in status["phaseTransitions"]] == ["Pending", "Failed"]
    assert helpers.calls == []
    assert kube.pods[("default", "counter")]["metadata"]["labels"] == pod_before
    assert "podmigration.dev/fenced-by" not in kube.pods[("default", "counter")]["metadata"]["annotations"]


def test_the_queue_timeout_defaults_to_the_operator_setting(world):
    kube, _, clock, _, deps = world
    _busy(kube)
    kube.create_migration("default", {"metadata": {"name": "counter-mig"}, "spec": {"podName": "counter"}})
    run_migration(
        _with_config(deps, max_per_cluster=1, max_queue_seconds=45), "default", "counter-mig", FakeStop(clock)
    )
    status = kube.migrations[("default", "counter-mig")]["status"]
    assert status["reason"] == "QueueTimeout" and "(queueTimeoutSeconds 45)" in status["message"]


def test_over_the_namespace_queue_it_fails_queue_full(world):
    """One that got past admission (the webhook fails open while the operator is down) is refused in Pending."""
    kube, helpers, clock, _, deps = world
    _busy(kube)
    for i in range(2):
        kube.migrations[("default", f"q{i}")] = {
            "metadata": {"name": f"q{i}", "namespace": "default", "creationTimestamp": "2029-12-31T00:00:01Z"},
            "spec": {"podName": "x"},
            "status": {"phase": "Pending"},
        }
    kube.create_migration("default", {"metadata": {"name": "counter-mig"}, "spec": {"podName": "counter"}})
    run_migration(
        _with_config(deps, max_per_cluster=1, max_queued_per_namespace=2), "default", "counter-mig", FakeStop(clock)
    )
    status = kube.migrations[("default", "counter-mig")]["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "QueueFull"), status
    assert "namespace default already has 2 PodMigration(s) waiting" in status["message"]
    assert helpers.calls == []
