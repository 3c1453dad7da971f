"""Nodes and node-helpers that go away mid-migration: Finalizing and rollbacks end, and say what they skipped."""

import dataclasses
from datetime import timedelta

from pmfakes import start

from podmigration.domain import status as st
from podmigration.domain.helpers import HelperError


def _in_finalizing(kube):
    return (kube.migrations.get(("default", "counter-mig")) or {}).get("status", {}).get("phase") == "Finalizing"


def test_source_helper_gone_in_finalizing_ends_with_a_warning_after_the_wait(world):
    kube, helpers, clock, events, deps = world
    world = world[:4] + (
        dataclasses.replace(deps, config=dataclasses.replace(deps.config, finalize_helper_wait_seconds=30)),
    )

    def source_node_goes_down(k):
        if _in_finalizing(k):
            k.helper_pods = [p for p in k.helper_pods if p["spec"]["nodeName"] != "worker-1"]

    kube.on_get_migration.append(source_node_goes_down)
    migration, _ = start(world, targetNode="worker-2")
    status = migration["status"]
    assert (status["phase"], status["reason"]) == ("Succeeded", "CleanupSkipped"), status["message"]
    times = st.phase_times(status)
    assert times["Succeeded"] - times["Finalizing"] >= timedelta(seconds=30)  # retried first, then gave up
    assert "source pod counter was deleted without being killed while frozen" in status["message"]
    assert "worker-1" in status["warnings"][-1] and "may remain" in status["warnings"][-1]
    assert ("default", "counter") not in kube.pods and ("default", "counter-0f1e2") in kube.pods
    assert "kill" not in [c[0] for c in helpers.calls]
    reasons = [e[2] for e in events if e[1] == "Warning"]
    assert {"SourceNotKilled", "CleanupSkipped"} <= set(reasons)


def test_an_unanswering_source_helper_is_retried_then_given_up(world):
    kube, helpers, clock, events, deps = world
    world = world[:4] + (
        dataclasses.replace(deps, config=dataclasses.replace(deps.config, finalize_helper_wait_seconds=30)),
    )
    unreachable = HelperError("worker-1", "POST /v1/kill", "request failed: connection refused")
    helpers.fail["kill"] = unreachable
    original_cleanup = helpers.cleanup

    def cleanup(helper, uid, aliases=False):
        if helper.node == "worker-1" and _in_finalizing(kube):
            raise HelperError("worker-1", "DELETE /v1/migrations", "request failed: connection refused")
        return original_cleanup(helper, uid, aliases)

    helpers.cleanup = cleanup
    migration, _ = start(world, targetNode="worker-2")
    status = migration["status"]
    assert (status["phase"], status["reason"]) == ("Succeeded", "CleanupSkipped"), status["message"]
    kills = [c for c in helpers.calls if c[0] == "kill"]
    assert len(kills) > 5, "retried while the wait lasted"
    times = st.phase_times(status)
    assert times["Succeeded"] - times["Finalizing"] >= timedelta(seconds=30)
    assert ("default", "counter") not in kube.pods
    assert "cleanup given up, the node-helper does not answer" in status["message"] and "worker-1" in status["message"]


def test_a_helper_back_within_the_wait_finishes_normally(world):
    kube, helpers, clock, events, deps = world
    helpers.fail["kill"] = HelperError("worker-1", "POST /v1/kill", "request failed: connection refused")
    calls = []

    def back_after_two_tries(k):
        if _in_finalizing(k):
            calls.append(1)
            if len(calls) == 3:
                helpers.fail.pop("kill", None)

    kube.on_get_migration.append(back_after_two_tries)
    migration, _ = start(world, targetNode="worker-2")
    status = migration["status"]
    assert (status["phase"], status["reason"]) == ("Succeeded", "Succeeded"), status["message"]
    assert helpers.killed == {"uid-counter"}


def test_a_helper_being_replaced_in_finalizing_is_waited_for_and_cleans_up(world):
    """A DaemonSet rollout (helm upgrade) deletes a node's helper pod and creates its successor a little later:
    Finalizing waits for it instead of ending CleanupSkipped with the migration's archives left on that node."""
    kube, helpers, clock, events, deps = world
    reads = []
    target_helpers = []

    def target_helper_replaced(k):
        if _in_finalizing(k):
            reads.append(1)
            if len(reads) == 1:
                target_helpers.extend(p for p in k.helper_pods if p["spec"]["nodeName"] == "worker-2")
                k.helper_pods = [p for p in k.helper_pods if p["spec"]["nodeName"] != "worker-2"]
            elif len(reads) == 3:
                k.helper_pods = k.helper_pods + target_helpers

    kube.on_get_migration.append(target_helper_replaced)
    migration, _ = start(world, targetNode="worker-2")
    status = migration["status"]
    assert (status["phase"], status["reason"]) == ("Succeeded", "Succeeded"), status["message"]
    assert len(reads) >= 3 and "worker-2" in [c[1] for c in helpers.calls if c[0] == "cleanup"][-2:]
    assert "CleanupSkipped" not in [e[2] for e in events]


def test_an_event_that_cannot_be_posted_never_fails_a_step(world):
    kube, helpers, clock, events, deps = world

    def unreachable(obj, **kwargs):
        raise RuntimeError("API server unreachable")

    world = world[:4] + (dataclasses.replace(deps, events=unreachable),)
    migration, _ = start(world, targetNode="worker-2")
    assert migration["status"]["phase"] == "Succeeded", migration["status"]["message"]
    assert [t["phase"] for t in migration["status"]["phaseTransitions"]].count("Checkpointing") == 1


def test_a_replacement_on_a_lost_node_is_force_deleted_and_the_source_released(world):
    kube, helpers, _, events, _ = world
    kube.on_get_migration.clear()  # the target's kubelet never starts the replacement
    original_delete = kube.delete_pod

    def delete_needs_a_kubelet(namespace, name, uid=None, grace_seconds=None):
        if name == "counter-0f1e2" and grace_seconds != 0:
            kube.pods[(namespace, name)]["metadata"]["deletionTimestamp"] = "2030-01-01T00:00:09Z"
            return  # graceful: waits for the target's kubelet, which is stopped
        original_delete(namespace, name, uid, grace_seconds)

    def target_node_not_ready(k):
        if k.migrations[("default", "counter-mig")]["status"].get("rollback"):
            k.nodes[1]["status"]["conditions"] = [{"type": "Ready", "status": "Unknown"}]

    kube.delete_pod = delete_needs_a_kubelet
    kube.on_get_migration.append(target_node_not_ready)
    migration, _ = start(world, targetNode="worker-2", timeoutSeconds=10)
    status = migration["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "Timeout"), status["message"]
    assert kube.delete_graces["counter-0f1e2"] == 0 and ("default", "counter-0f1e2") not in kube.pods
    assert "uid-counter" not in helpers.frozen and helpers.cut == set()  # the source is back
    assert ("kill", "worker-2", "uid-counter-0f1e2", True) in helpers.calls
    assert "ReplacementForceDeleted" in [e[2] for e in events]
