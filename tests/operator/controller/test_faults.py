"""The test-only fault points: off by default; a crash fires once; a pause holds the migration at a boundary."""

import dataclasses

import pytest
from pmfakes import FakeStop, run_migration

from podmigration import api
from podmigration.api import phases
from podmigration.controller import faults, runner
from podmigration.controller.runtime import StaleStatus


class Crashed(BaseException):
    """os._exit, made catchable (a BaseException: the runner's error handling must not see it)."""


@pytest.fixture
def exits(monkeypatch):
    codes: list = []

    def fake_exit(code):
        codes.append(code)
        raise Crashed(code)

    monkeypatch.setattr(faults.os, "_exit", fake_exit)
    return codes


def _run(world, annotations, enabled=True):
    kube, _, clock, _, deps = world
    deps = dataclasses.replace(deps, config=dataclasses.replace(deps.config, fault_injection=enabled))
    if ("default", "counter-mig") not in kube.migrations:
        kube.create_migration(
            "default",
            {
                "metadata": {"name": "counter-mig", "annotations": annotations},
                "spec": {"podName": "counter", "targetNode": "worker-2"},
            },
        )
    run_migration(deps, "default", "counter-mig", FakeStop(clock))
    return kube.migrations[("default", "counter-mig")]


def test_points_are_off_by_default(world, exits):
    migration = _run(world, {faults.CRASH_AT: "transferring"}, enabled=False)
    assert migration["status"]["phase"] == "Succeeded" and exits == []


@pytest.mark.parametrize("point", sorted(faults.POINTS - {faults.HANDED_OVER}))  # a StatefulSet's only: below
def test_a_crash_fires_once_and_the_next_run_finishes(world, exits, point):
    kube, helpers, _, _, _ = world
    with pytest.raises(Crashed):
        _run(world, {faults.CRASH_AT: point})
    migration = kube.migrations[("default", "counter-mig")]
    assert migration["metadata"]["annotations"][faults.CRASHED_AT] == point
    assert exits == [faults.CRASH_EXIT_CODE]
    migration = _run(world, {})
    assert migration["status"]["phase"] == "Succeeded", migration["status"]["message"]
    assert exits == [faults.CRASH_EXIT_CODE]  # not again


def test_a_crash_between_the_checkpoint_and_its_record_dumps_again_on_resume(world, exits):
    kube, helpers, _, _, _ = world
    with pytest.raises(Crashed):
        _run(world, {faults.CRASH_AT: faults.CHECKPOINTED})
    assert "containers" not in kube.migrations[("default", "counter-mig")]["status"]
    _run(world, {})
    assert [c[0] for c in helpers.calls].count("checkpoint") == 3  # one lost with the crash, then both again


def test_a_point_passed_over_by_another_migrations_crash_fires_when_the_run_resumes_there(world, exits):
    """Another migration's crash ended the process between this one's phase write and its point: the next run
    starts in that phase and fires the point before any work of the phase."""
    kube, helpers, _, _, _ = world
    with pytest.raises(Crashed):
        _run(world, {faults.CRASH_AT: faults.CHECKPOINTED})  # stands for the other migration's crash
    migration = kube.migrations[("default", "counter-mig")]
    assert migration["status"]["phase"] == "Checkpointing"
    migration["metadata"]["annotations"][faults.CRASH_AT] = "checkpointing"
    dumps = [c[0] for c in helpers.calls].count("checkpoint")
    with pytest.raises(Crashed):
        _run(world, {})
    assert kube.migrations[("default", "counter-mig")]["metadata"]["annotations"][faults.CRASHED_AT] == "checkpointing"
    assert [c[0] for c in helpers.calls].count("checkpoint") == dumps  # before the phase's work
    assert _run(world, {})["status"]["phase"] == "Succeeded"


def test_a_pause_holds_until_the_pod_migration_is_deleted_then_rolls_back(world):
    kube, helpers, _, _, _ = world

    def delete_once_paused(k):
        migration = k.migrations[("default", "counter-mig")]
        if migration["metadata"]["annotations"].get(faults.PAUSED_AT) == "transferring":
            migration["metadata"]["deletionTimestamp"] = "2030-01-01T00:00:05Z"

    kube.on_get_migration.append(delete_once_paused)
    migration = _run(world, {faults.PAUSE_AT: "transferring"})
    status = migration["status"]
    assert (status["phase"], status["reason"]) == ("Cancelled", "Deleted"), status["message"]
    assert "send" not in [c[0] for c in helpers.calls] and helpers.frozen == set()


def test_a_point_fires_when_the_step_that_wrote_its_phase_found_its_status_stale(world, exits, monkeypatch):
    """The phase write landed but the step did not return it (an overlapping replica during a peering hand-over made
    the status stale): the runner sees the new phase at its next read and fires the point before that phase's work.
    """
    kube, helpers, _, _, _ = world
    transfer = runner.STEPS[phases.TRANSFERRING]

    def wrote_then_failed(run, migration):
        transfer(run, migration)
        raise StaleStatus("resourceVersion moved")

    monkeypatch.setitem(runner.STEPS, phases.TRANSFERRING, wrote_then_failed)
    with pytest.raises(Crashed):
        _run(world, {faults.CRASH_AT: "restoring"})
    migration = kube.migrations[("default", "counter-mig")]
    assert (migration["status"]["phase"], migration["metadata"]["annotations"][faults.CRASHED_AT]) == (
        "Restoring",
        "restoring",
    )
    assert "restore" not in [c[0] for c in helpers.calls]  # before the phase's work
    monkeypatch.setitem(runner.STEPS, phases.TRANSFERRING, transfer)
    assert _run(world, {})["status"]["phase"] == "Succeeded"


def test_a_crash_in_the_hand_over_window_resumes_into_the_restore(world, exits):
    """The source is deleted when the operator dies: the run that resumes waits for the controller's pod, which the
    webhook (still matching) made the restore; the pod is never started fresh."""
    from test_owners import statefulset_world

    kube = statefulset_world(world)
    kube, helpers, clock, _, deps = world
    deps = dataclasses.replace(deps, config=dataclasses.replace(deps.config, fault_injection=True))
    kube.create_migration(
        "default",
        {
            "metadata": {"name": "web-mig", "annotations": {faults.CRASH_AT: "handed-over"}},
            "spec": {"podName": "web-0", "targetNode": "worker-2"},
        },
    )
    with pytest.raises(Crashed):
        run_migration(deps, "default", "web-mig", FakeStop(clock))
    assert ("default", "web-0") not in kube.pods or kube.pods[("default", "web-0")]["metadata"]["uid"] != "uid-web-0"
    run_migration(deps, "default", "web-mig", FakeStop(clock))
    status = kube.migrations[("default", "web-mig")]["status"]
    assert status["phase"] == "Succeeded", status["message"]
    assert [p["metadata"]["annotations"].get(api.MIGRATION_ANNOTATION) for p in kube.created_pods] == ["web-mig"]
    assert [c[0] for c in helpers.calls].count("kill") == 1


def test_a_failure_point_fails_the_step_after_its_pause(world):
    """Paused at the point, the source is fenced, cut off and dumped; once resumed the step fails there and the
    migration rolls back from Checkpointing."""
    kube, helpers, _, _, _ = world
    seen = []

    def resume_once_paused(k):
        annotations = k.migrations[("default", "counter-mig")]["metadata"]["annotations"]
        if annotations.get(faults.PAUSED_AT) == faults.CHECKPOINTED and faults.PAUSE_AT in annotations:
            seen.append(dict(k.pods[("default", "counter")]["metadata"]["labels"]))
            del annotations[faults.PAUSE_AT]

    kube.on_get_migration.append(resume_once_paused)
    status = _run(world, {faults.PAUSE_AT: faults.CHECKPOINTED, faults.FAIL_AT: faults.CHECKPOINTED})["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "CheckpointingFailed"), status["message"]
    assert "fault injection: failed at checkpointed" in status["message"]
    assert seen == [{}]  # fenced while held there
    assert kube.pods[("default", "counter")]["metadata"]["labels"] == {"app": "counter"}
    assert helpers.frozen == set() and helpers.cut == set()


def test_a_failure_point_does_nothing_when_injection_is_off(world):
    assert _run(world, {faults.FAIL_AT: faults.CHECKPOINTED}, enabled=False)["status"]["phase"] == "Succeeded"
