import pytest

from podmigration.api import phases


def test_forward_path_is_the_documented_order():
    order, phase = [], None
    while phase != phases.SUCCEEDED:
        phase = min(phases.allowed_next(phase) - {phases.FAILED, phases.CANCELLED})
        order.append(phase)
    assert order == ["Preparing", "Checkpointing", "Transferring", "Restoring", "Finalizing", "Succeeded"]


@pytest.mark.parametrize("phase", ["Pending", "Preparing", "Checkpointing", "Transferring", "Restoring"])
def test_before_finalizing_a_migration_can_fail_or_be_cancelled(phase):
    assert {"Failed", "Cancelled"} <= phases.allowed_next(phase)
    assert phases.can_roll_back(phase)


def test_finalizing_only_goes_forward():
    assert phases.allowed_next("Finalizing") == {"Succeeded"}
    assert not phases.can_roll_back("Finalizing")


@pytest.mark.parametrize("phase", ["Succeeded", "Failed", "Cancelled"])
def test_terminal_phases_allow_nothing(phase):
    assert phases.is_terminal(phase)
    assert phases.allowed_next(phase) == frozenset()
    with pytest.raises(phases.InvalidTransition):
        phases.check_transition(phase, "Preparing")


def test_skipping_a_phase_is_refused():
    with pytest.raises(phases.InvalidTransition, match="'Preparing' cannot change to 'Restoring'"):
        phases.check_transition("Preparing", "Restoring")


def test_a_new_object_is_pending():
    assert phases.allowed_next(None) == phases.allowed_next("Pending")
    assert not phases.is_terminal(None)


def test_unknown_phase_is_an_error():
    with pytest.raises(phases.InvalidTransition, match="unknown phase 'Dancing'"):
        phases.allowed_next("Dancing")
