"""Per-node and per-cluster limits: who starts, who waits and why, oldest first."""

from pmfakes import FakeStop

from podmigration.controller.context import Run
from podmigration.controller.runner import run_migration
from podmigration.controller.steps import prepare
from podmigration.domain import limits


def mig(name, phase=None, node=None, created="2030-01-01T00:00:00Z"):
    status = {k: v for k, v in (("phase", phase), ("sourceNode", node)) if v}
    return {"metadata": {"name": name, "namespace": "default", "creationTimestamp": created}, "status": status}


def test_starts_when_slots_are_free():
    me = mig("c", "Pending", "worker-1", "2030-01-01T00:00:03Z")
    others = [mig("a", "Transferring", "worker-1"), mig("b", "Succeeded", "worker-1")]
    assert limits.why_waiting(me, "worker-1", others + [me], per_node=2, per_cluster=5) is None


def test_waits_for_its_node_and_says_why():
    me = mig("c", "Pending", "worker-1", "2030-01-01T00:00:03Z")
    others = [mig("a", "Transferring", "worker-1"), mig("b", "Restoring", "worker-2")]
    assert limits.why_waiting(me, "worker-1", others + [me], per_node=1, per_cluster=5) == (
        "waiting for a free slot on node worker-1: 1 migration(s) out of it run (limit 1 per node), "
        "0 waiting ahead of this one"
    )
    assert limits.why_waiting(me, "worker-2", others + [me], per_node=2, per_cluster=5) is None


def test_older_waiting_migrations_go_first():
    first = mig("a", "Pending", "worker-1", "2030-01-01T00:00:01Z")
    second = mig("b", "Pending", "worker-1", "2030-01-01T00:00:02Z")
    both = [first, second]
    assert limits.why_waiting(first, "worker-1", both, per_node=1, per_cluster=5) is None
    assert "1 waiting ahead" in limits.why_waiting(second, "worker-1", both, per_node=1, per_cluster=5)


def test_cluster_limit_counts_every_node():
    me = mig("z", None, "worker-3", "2030-01-01T00:00:09Z")
    running = [mig(str(i), "Checkpointing", f"worker-{i}") for i in range(2)]
    assert limits.why_waiting(me, "worker-3", running + [me], per_node=2, per_cluster=2).startswith(
        "waiting for a free slot: 2 migration(s) run in the cluster (limit 2)"
    )


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
