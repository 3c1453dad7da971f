"""Who starts, who waits and why: per node, per namespace, per cluster, round robin across namespaces."""

from podmigration.domain import limits

LIMITS = limits.Limits(per_node=2, per_namespace=5, per_cluster=5)


def mig(name, phase=None, node=None, created="2030-01-01T00:00:00Z", namespace="default"):
    status = {k: v for k, v in (("phase", phase), ("sourceNode", node)) if v}
    return {"metadata": {"name": name, "namespace": namespace, "creationTimestamp": created}, "status": status}


def at(second: int) -> str:
    return f"2030-01-01T00:{second // 60:02d}:{second % 60:02d}Z"


def with_limits(**changes) -> limits.Limits:
    return limits.Limits(**{**LIMITS.__dict__, **changes})


def test_starts_when_slots_are_free():
    me = mig("c", "Pending", "worker-1", at(3))
    others = [mig("a", "Transferring", "worker-1"), mig("b", "Succeeded", "worker-1")]
    assert limits.why_waiting(me, "worker-1", [*others, me], LIMITS) is None


def test_waits_for_its_node_and_says_why():
    me = mig("c", "Pending", "worker-1", at(3))
    others = [mig("a", "Transferring", "worker-1"), mig("b", "Restoring", "worker-2")]
    queued = limits.why_waiting(me, "worker-1", [*others, me], with_limits(per_node=1))
    assert queued == limits.Queued(
        "waiting for a free slot on node worker-1: 1 migration(s) out of it run (limit 1 per node), "
        "0 waiting ahead of this one",
        0,
    )
    assert limits.why_waiting(me, "worker-2", [*others, me], LIMITS) is None


def test_older_waiting_migrations_go_first():
    first, second = mig("a", "Pending", "worker-1", at(1)), mig("b", "Pending", "worker-1", at(2))
    one_per_node = with_limits(per_node=1)
    assert limits.why_waiting(first, "worker-1", [first, second], one_per_node) is None
    assert "1 waiting ahead" in limits.why_waiting(second, "worker-1", [first, second], one_per_node).message


def test_cluster_limit_counts_every_node():
    me = mig("z", None, "worker-3", at(9))
    running = [mig(str(i), "Checkpointing", f"worker-{i}") for i in range(2)]
    queued = limits.why_waiting(me, "worker-3", [*running, me], with_limits(per_cluster=2))
    assert queued.message.startswith("waiting for a free slot: 2 migration(s) run in the cluster (limit 2)")


def test_one_blocked_by_its_node_does_not_hold_back_another_node():
    """The older one waits for worker-1; the one from worker-2 takes the free cluster slot meanwhile."""
    running = mig("r", "Transferring", "worker-1")
    older, me = mig("a", "Pending", "worker-1", at(1)), mig("b", "Pending", "worker-2", at(2))
    assert limits.why_waiting(me, "worker-2", [running, older, me], with_limits(per_node=1, per_cluster=2)) is None


def test_a_namespace_with_80_queued_does_not_starve_one_with_1():
    """A freed slot goes to the namespace with the fewest running, not to the globally oldest."""
    busy = [mig(f"run-{i}", "Restoring", f"worker-{i}", namespace="busy") for i in range(4)]
    flood = [mig(f"q-{i}", "Pending", f"worker-{i % 3}", at(i), namespace="busy") for i in range(80)]
    lone = mig("lone", "Pending", "worker-9", at(100), namespace="quiet")
    everything = [*busy, *flood, lone]
    assert limits.why_waiting(lone, "worker-9", everything, LIMITS) is None
    assert "1 waiting ahead" in limits.why_waiting(flood[0], "worker-0", everything, LIMITS).message
    # First come, first served would have put it behind all 80:
    assert limits.fair_order([*flood, lone], busy)[0] is lone


def test_fair_order_is_round_robin_across_namespaces():
    waiting = [mig(f"a{i}", "Pending", created=at(i), namespace="a") for i in range(3)] + [
        mig(f"b{i}", "Pending", created=at(10 + i), namespace="b") for i in range(2)
    ]
    assert [m["metadata"]["name"] for m in limits.fair_order(waiting, [])] == ["a0", "b0", "a1", "b1", "a2"]


def test_waits_for_its_namespace_and_says_why():
    running = [mig("r", "Transferring", "worker-1", namespace="team")]
    me = mig("me", "Pending", "worker-2", at(5), namespace="team")
    queued = limits.why_waiting(me, "worker-2", [*running, me], with_limits(per_namespace=1))
    assert queued.message == (
        "waiting for a free slot in namespace team: 1 migration(s) of it run (limit 1 per namespace), "
        "0 waiting ahead of this one"
    )


def test_queue_full_counts_only_the_namespace_waiting_before_it():
    waiting = [mig(f"q{i}", "Pending", created=at(i)) for i in range(3)] + [
        mig("other", "Pending", created=at(0), namespace="other"),
        mig("done", "Succeeded", created=at(0)),
    ]
    assert limits.queue_full(None, "default", waiting, 4) is None
    assert "already has 3 PodMigration(s) waiting" in limits.queue_full(None, "default", waiting, 3)
    assert limits.queue_full(waiting[2], "default", waiting, 2) is not None
    assert limits.queue_full(waiting[1], "default", waiting, 2) is None


def test_queue_timeout_says_how_long_and_behind_what():
    queued = limits.Queued("waiting for a free slot: 5 migration(s) run in the cluster (limit 5), 2 waiting", 2)
    assert limits.queue_timeout(59.0, 60, queued) is None
    assert limits.queue_timeout(61.2, 60, queued) == (
        "waited 61s in the queue (queueTimeoutSeconds 60) without a slot; " + queued.message
    )


def test_the_back_of_a_long_queue_looks_less_often():
    assert limits.Queued("", 0).poll_seconds == limits.QUEUED_POLL_SECONDS
    assert limits.Queued("", 99).poll_seconds == limits.QUEUED_POLL_MAX_SECONDS
