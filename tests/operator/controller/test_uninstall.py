"""The uninstall hook: migrations under way are cancelled and waited for, every node is cleaned and its CRIU block
removed, and no PodMigration or finalizer is left."""

import copy

from pmfakes import CONFIG, make_helper_pod

from podmigration import api
from podmigration.controller.uninstall import Uninstall
from podmigration.domain.helpers import HelperError


def _migration(name, phase, uid):
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": uid,
            "annotations": {},
            "finalizers": ["kopf.zalando.org/KopfFinalizerMarker"],
        },
        "spec": {"podName": name},
        "status": {"phase": phase},
    }


class Cluster:
    """PodMigrations the (still running) operator moves on: a cancelled one rolls back, Finalizing finishes."""

    def __init__(self, migrations, stuck=()):
        self.migrations = {m["metadata"]["name"]: m for m in migrations}
        self.stuck = set(stuck)
        self.helper_pods = [make_helper_pod("worker-1", "10.0.0.1"), make_helper_pod("worker-2", "10.0.0.2")]
        self.log = []

    def list_migrations(self, namespace):
        for m in self.migrations.values():
            if m["metadata"]["name"] in self.stuck:
                continue
            if m["status"]["phase"] == "Finalizing":
                m["status"]["phase"] = "Succeeded"
            elif m["metadata"]["annotations"].get(api.CANCEL_ANNOTATION) == "true" and m["status"]["phase"] not in (
                "Succeeded",
                "Failed",
                "Cancelled",
            ):
                m["status"]["phase"] = "Cancelled"
        return copy.deepcopy(list(self.migrations.values()))

    def patch_migration(self, namespace, name, patch):
        meta = self.migrations[name]["metadata"]
        if "finalizers" in patch["metadata"]:
            meta.pop("finalizers", None)
            self.log.append(("unfinalized", name))
        meta["annotations"].update(patch["metadata"].get("annotations") or {})

    def delete_migration(self, namespace, name, uid):
        assert not self.migrations[name]["metadata"].get("finalizers"), "deleted with a finalizer left"
        del self.migrations[name]
        self.log.append(("deleted", name))

    def list_pods(self, namespace, selector):
        return copy.deepcopy(self.helper_pods)


class Helpers:
    def __init__(self, held, unreachable=()):
        self.held, self.unreachable, self.calls = held, set(unreachable), []

    def held_migrations(self, helper):
        if helper.node in self.unreachable:
            raise HelperError(helper.node, "GET /v1/migrations", "refused", unreachable=True)
        return self.held[helper.node]

    def cleanup(self, helper, uid):
        self.calls.append(("cleanup", helper.node, uid))
        return {}

    def remove_criu_options(self, helper):
        self.calls.append(("criu", helper.node))
        return {"removed": True}


def _run(cluster, helpers, wait=60):
    clock = [0.0]
    return Uninstall(
        cluster, helpers, CONFIG, sleep=lambda s: clock.__setitem__(0, clock[0] + s), monotonic=lambda: clock[0]
    ).run(wait)


def test_migrations_under_way_are_rolled_back_then_nothing_is_left():
    cluster = Cluster(
        [
            _migration("moving", "Transferring", "u1"),
            _migration("finishing", "Finalizing", "u2"),
            _migration("old", "Succeeded", "u3"),
        ]
    )
    helpers = Helpers({"worker-1": ["u1", "u3"], "worker-2": ["u1"]})
    assert _run(cluster, helpers) == []
    assert cluster.migrations == {}
    assert ("criu", "worker-1") in helpers.calls and ("criu", "worker-2") in helpers.calls
    assert {c for c in helpers.calls if c[0] == "cleanup"} == {
        ("cleanup", "worker-1", "u1"),
        ("cleanup", "worker-1", "u3"),
        ("cleanup", "worker-2", "u1"),
    }
    assert cluster.log.index(("unfinalized", "moving")) < cluster.log.index(("deleted", "moving"))


def test_what_could_not_be_done_is_said_and_the_rest_still_done():
    cluster = Cluster([_migration("stuck", "Restoring", "u1")], stuck={"stuck"})
    helpers = Helpers({"worker-1": []}, unreachable={"worker-2"})
    undone = _run(cluster, helpers, wait=30)
    assert any("stuck did not end within 30s" in note for note in undone), undone
    assert any("node worker-2" in note and "runc.conf" in note for note in undone), undone
    assert cluster.migrations == {} and ("criu", "worker-1") in helpers.calls
