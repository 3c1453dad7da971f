"""The test-only fault points: off by default; a crash fires once; a pause holds the migration at a boundary."""

import dataclasses

import pytest
from pmfakes import FakeStop

from podmigration import faults
from podmigration.migration import MigrationRunner


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
        kube.create_migration("default", {"metadata": {"name": "counter-mig", "annotations": annotations},
                                          "spec": {"podName": "counter", "targetNode": "worker-2"}})
    MigrationRunner(deps, "default", "counter-mig").run(FakeStop(clock))
    return kube.migrations[("default", "counter-mig")]


def test_points_are_off_by_default(world, exits):
    migration = _run(world, {faults.CRASH_AT: "transferring"}, enabled=False)
    assert migration["status"]["phase"] == "Succeeded" and exits == []


@pytest.mark.parametrize("point", sorted(faults.POINTS))
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


def test_the_phase_boundaries_are_named_by_the_phase_entered():
    assert faults.boundary_point("Checkpointing", {"status": {"phase": "Transferring"}}) == "transferring"
    assert faults.boundary_point("Pending", {"status": {"phase": "Pending"}}) is None
    assert faults.boundary_point("Finalizing", {"status": {"phase": "Succeeded"}}) is None
