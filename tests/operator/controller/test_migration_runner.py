"""The state machine driven end to end against fakes: the user-visible outcome of each path."""

import kopf
import pytest
from pmfakes import FakeStop, make_pod, run_migration, start

from podmigration import api
from podmigration.controller.context import Run
from podmigration.controller.runner import OperatorStopping
from podmigration.domain.helpers import HelperError


def test_successful_migration(world):
    kube, helpers, _, events, _ = world
    migration, uid = start(world, targetNode="worker-2")
    status = migration["status"]
    assert status["phase"] == "Succeeded", status["message"]
    assert [t["phase"] for t in status["phaseTransitions"]] == [
        "Pending",
        "Preparing",
        "Checkpointing",
        "Transferring",
        "Restoring",
        "Finalizing",
        "Succeeded",
    ]
    assert set(status["durations"]) == {"checkpoint", "transfer", "restore", "downtime", "total"}
    assert status["checkpointBytes"] == 2000 and status["transferredBytes"] == 800
    assert status["containers"][0]["criu"] == {"frozenTime": 12000, "pagesWritten": 64, "freezingTime": 10}
    assert (status["sourceNode"], status["targetNode"]) == ("worker-1", "worker-2")
    # source gone, replacement on worker-2 with the original labels (back in the Service)
    assert ("default", "counter") not in kube.pods
    new = kube.pods[("default", status["targetPod"])]
    assert new["spec"]["nodeName"] == "worker-2" and new["metadata"]["labels"] == {"app": "counter"}
    names = [c[0] for c in helpers.calls]
    # The network is cut before the first dump; the source is killed while frozen, then deleted, then thawed.
    # The target's checkpoint images go as soon as the restored containers exist, before the cut-over.
    # Archives are write-once: the checkpoint step starts by clearing any of this migration's on the source.
    assert names == [
        "pod_memory",
        "ensure_images",
        "cleanup",
        "network_cut",
        "checkpoint",
        "checkpoint",
        "freeze",
        "send",
        "send",
        "build_checkpoint_image",
        "build_checkpoint_image",
        "restored",
        "cleanup",
        "kill",
        "thaw",
        "cleanup",
        "cleanup",
    ]
    assert helpers.calls[names.index("restored") + 1][:2] == ("cleanup", "worker-2")
    assert ("kill", "worker-1", "uid-counter", False) in helpers.calls and helpers.killed == {"uid-counter"}
    assert {c[1] for c in helpers.calls if c[0] == "cleanup"} == {"worker-1", "worker-2"}
    assert ("send", "worker-1", f"{uid}-app", "worker-2", "zstd") in helpers.calls
    assert ("PodMigration", "Normal", "Succeeded") in [e[:3] for e in events]
    assert ("Pod", "Normal", "MigrationCheckpointing") in [e[:3] for e in events]


def test_operator_picks_the_target(world):
    migration, _ = start(world)
    assert migration["status"]["targetNode"] == "worker-2"


def test_a_pod_kept_apart_from_one_on_the_target_is_refused_in_preparing(world):
    """The replacement is bound with nodeName, past the scheduler: Preparing checks its anti-affinity instead."""
    kube, helpers, _, events, _ = world
    term = {"labelSelector": {"matchLabels": {"app": "anchor"}}, "topologyKey": "kubernetes.io/hostname"}
    kube.pods[("default", "counter")]["spec"]["affinity"] = {
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
    }
    kube.pods[("default", "anchor")] = make_pod("anchor", "worker-2")
    migration, _ = start(world, targetNode="worker-2")
    status = migration["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "AffinityNotSatisfied")
    assert [t["phase"] for t in status["phaseTransitions"]] == ["Pending", "Preparing", "Failed"]
    assert "podAntiAffinity" in status["message"] and "pod default/anchor on node worker-2" in status["message"]
    assert helpers.calls == [] and kube.created_pods == []


def test_refusal_changes_nothing(world):
    kube, helpers, _, events, _ = world
    migration, _ = start(world, targetNode="worker-1")
    status = migration["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "SameNode")
    assert status["message"] == "target node worker-1 is the node the pod already runs on"
    assert helpers.calls == [] and kube.created_pods == [] and kube.deleted_pods == []
    assert kube.pods[("default", "counter")]["metadata"]["labels"] == {"app": "counter"}
    assert ("PodMigration", "Warning", "SameNode") in [e[:3] for e in events]


def test_transfer_failure_rolls_back_the_source(world):
    kube, helpers, _, _, _ = world
    helpers.fail["send"] = HelperError("worker-1", "POST /v1/send", "HTTP 422: sha256 mismatch")
    migration, _ = start(world, targetNode="worker-2")
    status = migration["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "TransferringFailed")
    assert "sha256 mismatch" in status["message"] and "rollback" not in status
    source = kube.pods[("default", "counter")]
    assert source["metadata"]["labels"] == {"app": "counter"}
    assert api.FENCED_BY_ANNOTATION not in source["metadata"]["annotations"]
    assert helpers.frozen == set()  # thawed again
    assert {c[1] for c in helpers.calls if c[0] == "cleanup"} == {"worker-1", "worker-2"}
    assert kube.created_pods == []


def test_replacement_not_restored_is_deleted_and_source_resumes(world):
    kube, helpers, _, _, _ = world
    helpers.restored_answer = {"app": True, "side": False}
    migration, _ = start(world, targetNode="worker-2")
    assert migration["status"]["phase"] == "Failed"
    assert "containers side of pod counter-0f1e2 started fresh" in migration["status"]["message"]
    assert kube.deleted_pods == ["counter-0f1e2"] and ("default", "counter") in kube.pods
    assert helpers.frozen == set()


def test_cancel_before_start(world):
    kube, helpers, _, _, deps = world
    kube.create_migration(
        "default",
        {
            "metadata": {"name": "counter-mig", "annotations": {api.CANCEL_ANNOTATION: "true"}},
            "spec": {"podName": "counter", "timeoutSeconds": 300},
        },
    )
    run_migration(deps, "default", "counter-mig", FakeStop(deps.clock))
    status = kube.migrations[("default", "counter-mig")]["status"]
    assert (status["phase"], status["reason"]) == ("Cancelled", "Cancelled")
    assert helpers.calls == []


def test_timeout_while_waiting_for_the_replacement(world):
    kube, helpers, _, _, _ = world
    kube.on_get_migration.clear()  # the replacement never becomes Ready
    migration, _ = start(world, targetNode="worker-2", timeoutSeconds=10)
    status = migration["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "Timeout")
    assert status["message"] == "migration did not finish within 10s (phase Restoring)"
    assert kube.deleted_pods == ["counter-0f1e2"] and helpers.frozen == set()
    # The never-promoted copy goes at once: it must not answer beside the resumed source. One second of grace,
    # because 0 would be a force delete (the object vanishes before the kubelet has stopped the containers).
    assert kube.delete_graces["counter-0f1e2"] == 1


def test_resume_after_restart_in_checkpointing_thaws_before_checkpointing_again(world, monkeypatch):
    kube, helpers, clock, _, deps = world
    helpers.fail["send"] = RuntimeError("operator killed here")  # stop the first run inside Transferring
    kube.create_migration(
        "default", {"metadata": {"name": "counter-mig"}, "spec": {"podName": "counter", "targetNode": "worker-2"}}
    )
    migration = kube.migrations[("default", "counter-mig")]
    original_write = Run.write

    def crash_on_transferring(run, m, patch):
        if patch.get("phase") == "Transferring":
            raise SystemExit("crash")
        return original_write(run, m, patch)

    with monkeypatch.context() as patched, pytest.raises(SystemExit):
        patched.setattr(Run, "write", crash_on_transferring)
        run_migration(deps, "default", "counter-mig", FakeStop(clock))
    assert migration["status"]["phase"] == "Checkpointing" and helpers.frozen == {"uid-counter"}
    del helpers.fail["send"]
    helpers.calls.clear()
    run_migration(deps, "default", "counter-mig", FakeStop(clock))
    assert migration["status"]["phase"] == "Succeeded"
    # The archives of the first run are cleared (write-once), the frozen pod thawed, then dumped again.
    assert [c[0] for c in helpers.calls][:6] == ["cleanup", "thaw", "network_cut", "checkpoint", "checkpoint", "freeze"]


def test_event_failure_after_finalizing_was_written_does_not_roll_back(world):
    kube, helpers, _, events, deps = world
    original_get_pod = kube.get_pod

    def get_pod_failing_once_finalizing(namespace, name):
        migration = kube.migrations.get(("default", "counter-mig")) or {}
        if (migration.get("status") or {}).get("phase") == "Finalizing" and not getattr(kube, "_failed", False):
            kube._failed = True
            raise RuntimeError("API server unreachable")
        return original_get_pod(namespace, name)

    kube.get_pod = get_pod_failing_once_finalizing
    migration, _ = start(world, targetNode="worker-2")
    assert kube._failed
    assert migration["status"]["phase"] == "Succeeded", migration["status"]["message"]
    assert ("default", "counter") not in kube.pods and ("default", "counter-0f1e2") in kube.pods


def test_step_failing_after_its_phase_change_is_retried_in_the_new_phase(world, monkeypatch):
    kube, helpers, clock, _, deps = world
    kube.create_migration(
        "default", {"metadata": {"name": "counter-mig"}, "spec": {"podName": "counter", "targetNode": "worker-2"}}
    )
    original_write = Run.write
    failed = []

    def fail_after_writing_finalizing(run, m, patch):
        result = original_write(run, m, patch)
        if patch.get("phase") == "Finalizing" and not failed:
            failed.append(True)
            raise RuntimeError("lost the answer")
        return result

    monkeypatch.setattr(Run, "write", fail_after_writing_finalizing)
    run_migration(deps, "default", "counter-mig", FakeStop(clock))
    status = kube.migrations[("default", "counter-mig")]["status"]
    assert failed and status["phase"] == "Succeeded", status["message"]
    assert ("default", "counter-0f1e2") in kube.pods and "counter-0f1e2" not in kube.deleted_pods


def test_errors_outside_the_steps_are_retried_not_raised(world):
    kube, helpers, clock, _, deps = world
    helpers.fail["send"] = HelperError("worker-1", "POST /v1/send", "HTTP 500: disk full")
    original_patch = kube.patch_migration_status
    failures = {"rollback": 0, "read": 0}

    def patch_failing_once(namespace, name, status, resource_version=None):
        if status.get("rollback") and not failures["rollback"]:  # _begin_rollback's and _step_failed's write
            failures["rollback"] += 1
            raise RuntimeError("API server unreachable")
        if status.get("phase") == "Failed" and failures["rollback"] == 1:  # the final write of _roll_back
            failures["rollback"] += 1
            raise RuntimeError("API server unreachable")
        return original_patch(namespace, name, status, resource_version)

    def read_failing_once(k):
        status = k.migrations[("default", "counter-mig")].get("status") or {}
        if status.get("rollback") and not failures["read"]:
            failures["read"] += 1
            raise RuntimeError("API server unreachable")

    kube.patch_migration_status = patch_failing_once
    kube.on_get_migration.append(read_failing_once)
    migration, _ = start(world, targetNode="worker-2")
    status = migration["status"]
    assert failures == {"rollback": 2, "read": 1}
    assert (status["phase"], status["reason"]) == ("Failed", "TransferringFailed"), status["message"]
    assert helpers.frozen == set() and "rollback" not in status


def _change_pod_before_patches(kube, changes):
    """Apply ``changes`` (callables on the stored source pod), one before each patch_pod, like a concurrent writer."""
    original_patch = kube.patch_pod

    def patch_pod(namespace, name, patch):
        if changes:
            pod = kube.pods[(namespace, name)]
            changes.pop(0)(pod)
            pod["metadata"]["resourceVersion"] = str(int(pod["metadata"]["resourceVersion"]) + 1)
        return original_patch(namespace, name, patch)

    kube.patch_pod = patch_pod


def test_fence_conflict_is_retried(world):
    kube, helpers, _, _, _ = world
    _change_pod_before_patches(kube, [lambda pod: pod["metadata"]["labels"].update(tier="web")] * 2)
    migration, _ = start(world, targetNode="worker-2")
    assert migration["status"]["phase"] == "Succeeded", migration["status"]["message"]


def test_fence_conflict_with_another_migration_fails_as_already_migrating(world):
    kube, helpers, _, _, _ = world

    def other_migration_fences(pod):
        pod["metadata"]["annotations"][api.FENCED_BY_ANNOTATION] = "other-mig"

    _change_pod_before_patches(kube, [other_migration_fences])
    migration, _ = start(world, targetNode="worker-2")
    status = migration["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "AlreadyMigrating"), status["message"]
    assert "already being migrated by PodMigration other-mig" in status["message"]
    assert kube.pods[("default", "counter")]["metadata"]["annotations"][api.FENCED_BY_ANNOTATION] == "other-mig"


def test_rollback_ends_although_a_node_has_no_helper_left(world):
    kube, helpers, _, events, _ = world
    helpers.fail["build_checkpoint_image"] = HelperError("worker-2", "POST /v1/images/checkpoint", "HTTP 500: boom")

    reads = []

    def target_helper_goes_away(k):
        reads.append(1)
        if len(reads) > 200:
            pytest.fail("the rollback never ends")  # BaseException: run() does not retry it
        if k.migrations[("default", "counter-mig")]["status"].get("rollback"):
            k.helper_pods = [p for p in k.helper_pods if p["spec"]["nodeName"] != "worker-2"]

    kube.on_get_migration.append(target_helper_goes_away)
    migration, _ = start(world, targetNode="worker-2")
    status = migration["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "RestoringFailed"), status["message"]
    assert helpers.frozen == set()
    assert [c[1] for c in helpers.calls if c[0] == "cleanup"] == ["worker-1", "worker-1"]  # at the start, at the end
    skipped = [e for e in events if e[2] == "CleanupSkipped"]
    assert skipped and skipped[0][:2] == ("PodMigration", "Warning") and "worker-2" in skipped[0][3]


def test_images_the_helper_kept_are_reported(world):
    kube, helpers, _, events, _ = world
    helpers.cleanup_kept["worker-2"] = [{"image": "localhost/checkpoint/app:1", "reason": "in use"}]
    migration, _ = start(world, targetNode="worker-2")
    assert migration["status"]["phase"] == "Succeeded"
    incomplete = [e for e in events if e[2] == "CleanupIncomplete"]
    assert incomplete and all(e[1] == "Warning" for e in incomplete)  # once at the early cleanup, once at the end
    assert "worker-2" in incomplete[0][3] and "localhost/checkpoint/app:1" in incomplete[0][3]


def test_operator_exiting_during_a_rollback_leaves_no_false_retry_status(world):
    kube, helpers, clock, _, deps = world
    kube.on_get_migration.clear()  # the replacement never becomes Ready
    kube.delete_pod = lambda namespace, name, uid=None, grace_seconds=None: None  # it stays Terminating
    kube.create_migration(
        "default",
        {
            "metadata": {"name": "counter-mig"},
            "spec": {"podName": "counter", "targetNode": "worker-2", "timeoutSeconds": 10},
        },
    )
    stop = FakeStop(clock)

    def exit_once_rolling_back(k):
        if (
            k.migrations[("default", "counter-mig")]["status"].get("rollback")
            and stop.reason_on_wait is None
            and not stop
        ):
            stop.reason_on_wait = kopf.DaemonStoppingReason.OPERATOR_EXITING

    kube.on_get_migration.append(exit_once_rolling_back)
    run_migration(deps, "default", "counter-mig", stop)
    status = kube.migrations[("default", "counter-mig")]["status"]
    assert status["rollback"]["reason"] == "Timeout"  # left for the next run of the operator
    assert status["reason"] == "RollingBack" and "rollback retrying" not in status["message"]


@pytest.fixture
def slept(monkeypatch):
    seconds: list = []
    monkeypatch.setattr("podmigration.controller.context.time.sleep", seconds.append)
    return seconds


def test_sleep_goes_on_while_kopf_stops_the_daemon_for_a_deletion(world, slept):
    kube, _, clock, _, deps = world
    stop = FakeStop(clock, reason=kopf.DaemonStoppingReason.RESOURCE_DELETED)
    # The stop reason alone decides: the PodMigration is not even read (it can already be gone).
    Run(deps, "default", "counter-mig", stop).sleep(2)
    assert slept == [2]


def test_sleep_gives_up_when_the_operator_exits_even_during_a_deletion(world, slept):
    kube, _, clock, _, deps = world
    migration = kube.create_migration("default", {"metadata": {"name": "counter-mig"}, "spec": {"podName": "counter"}})
    kube.migrations[("default", "counter-mig")]["metadata"]["deletionTimestamp"] = "2030-01-01T00:00:01Z"
    stop = FakeStop(
        clock, reason=kopf.DaemonStoppingReason.RESOURCE_DELETED | kopf.DaemonStoppingReason.OPERATOR_EXITING
    )
    with pytest.raises(OperatorStopping):
        Run(deps, "default", migration["metadata"]["name"], stop).sleep(2)
    assert slept == []


def test_top_level_transferred_bytes_are_wire_bytes_only(world):
    kube, helpers, _, _, _ = world
    original_send = helpers.send

    def send_without_wire_bytes_for_side(source, archive_id, target, compression, timeout):
        answer = original_send(source, archive_id, target, compression, timeout)
        if archive_id.endswith("-side"):
            answer.pop("wireBytes")  # a helper that did not report it: its uncompressed size is not wire bytes
        return answer

    helpers.send = send_without_wire_bytes_for_side
    migration, _ = start(world, targetNode="worker-2")
    status = migration["status"]
    assert status["phase"] == "Succeeded"
    assert [(c["transferredBytes"], c["wireBytes"]) for c in status["containers"]] == [(1000, 400), (1000, 0)]
    assert status["transferredBytes"] == 400
