"""Garbage collection: which finished PodMigrations go, and what is removed on the nodes, never a live migration's."""

from datetime import UTC, datetime, timedelta

from podmigration.controller.housekeeping import Housekeeper, dead, expired
from podmigration.domain.helpers import Helper, HelperError

NOW = datetime(2030, 1, 2, tzinfo=UTC)


def _migration(uid, phase, ended_ago=None, pod="counter", ttl=None, namespace="default"):
    transitions = [{"phase": "Pending", "time": "2030-01-01T00:00:00Z"}]
    if ended_ago is not None:
        at = NOW - timedelta(seconds=ended_ago)
        transitions.append({"phase": phase, "time": at.strftime("%Y-%m-%dT%H:%M:%SZ")})
    spec = {"podName": pod} | ({"ttlSecondsAfterFinished": ttl} if ttl is not None else {})
    return {
        "metadata": {
            "uid": uid,
            "name": f"m-{uid}",
            "namespace": namespace,
            "creationTimestamp": "2030-01-01T00:00:00Z",
        },
        "spec": spec,
        "status": {"phase": phase, "phaseTransitions": transitions},
    }


def _names(doomed):
    return sorted(m["metadata"]["uid"] for m, _ in doomed)


def test_finished_past_their_ttl_go_and_running_ones_never():
    migrations = [
        _migration("a", "Succeeded", 100, ttl=5),
        _migration("b", "Failed", 3, ttl=5, pod="b"),
        _migration("c", "Cancelled", 90_000, pod="c"),
        _migration("d", "Succeeded", 80_000, pod="d"),
        _migration("e", "Transferring", pod="e", ttl=0),
    ]
    assert _names(expired(migrations, NOW, default_ttl=86400, keep_per_pod=5)) == ["a", "c"]


def test_only_the_newest_few_finished_of_a_pod_are_kept():
    migrations = [_migration(f"m{i}", "Succeeded", 10 * i) for i in range(7)] + [
        _migration("other", "Succeeded", 1000, pod="other"),
        _migration("running", "Restoring"),
        _migration("elsewhere", "Succeeded", 1000, namespace="prod"),
    ]
    doomed = expired(migrations, NOW, default_ttl=86400, keep_per_pod=5)
    assert _names(doomed) == ["m5", "m6"]
    assert all("newest 5" in why for _, why in doomed)


def test_dead_is_what_a_node_holds_of_migrations_finished_or_gone():
    migrations = [_migration("live", "Transferring"), _migration("done", "Succeeded", 5), _migration("new", None)]
    assert dead(["live", "done", "deleted", "new"], migrations) == ["deleted", "done"]


class _World:
    def __init__(self, migrations, held):
        self.migrations, self.held_by = migrations, held
        self.order, self.cleaned, self.deleted = [], [], []

    def keeper(self, helpers):
        return Housekeeper(
            list_migrations=self.list,
            delete_migration=lambda m: self.deleted.append(m["metadata"]["uid"]),
            helpers=lambda: helpers,
            held=self.held,
            cleanup=self.cleanup,
            clock=lambda: NOW,
            default_ttl=86400,
            keep_per_pod=5,
        )

    def list(self):
        self.order.append("list")
        return self.migrations

    def held(self, helper):
        self.order.append(f"held {helper.node}")
        if isinstance(self.held_by[helper.node], Exception):
            raise self.held_by[helper.node]
        return self.held_by[helper.node]

    def cleanup(self, helper, uid):
        self.cleaned.append((helper.node, uid))
        return {"deleted": [uid], "kept": []}


def test_a_round_asks_the_nodes_before_it_lists_and_cleans_only_the_dead():
    world = _World(
        [_migration("live", "Checkpointing"), _migration("old", "Failed", 100_000)],
        {"w1": ["live", "gone"], "w2": ["old"], "w3": HelperError("w3", "GET", "refused", unreachable=True)},
    )
    helpers = {n: Helper(n, f"https://{n}:9443", ready=True) for n in ("w1", "w2", "w3")}
    helpers["w4"] = Helper("w4", "https://w4:9443", ready=False)
    world.keeper(helpers).round()
    assert world.order == ["held w1", "held w2", "held w3", "list"]
    assert world.cleaned == [("w1", "gone"), ("w2", "old")]
    assert world.deleted == ["old"]
