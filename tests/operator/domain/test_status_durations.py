from datetime import UTC, datetime, timedelta

import pytest

from podmigration.api import phases
from podmigration.domain import status as st

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def run(*steps):
    """Apply transitions at the given offsets (seconds) and return the final status."""
    status: dict = {"phaseTransitions": [{"phase": "Pending", "time": st.format_time(T0)}], "phase": "Pending"}
    for phase, offset in steps:
        status = st.merged(status, st.transition(status, phase, T0 + timedelta(seconds=offset), 1))
    return status


def test_durations_of_a_successful_migration():
    status = run(
        ("Preparing", 0.5),
        ("Checkpointing", 1.0),
        ("Transferring", 1.25),
        ("Restoring", 2.0),
        ("Finalizing", 3.5),
        ("Succeeded", 4.0),
    )
    assert status["durations"] == {"checkpoint": 0.25, "transfer": 0.75, "restore": 1.5, "downtime": 2.5, "total": 4.0}
    assert [t["phase"] for t in status["phaseTransitions"]] == [
        "Pending",
        "Preparing",
        "Checkpointing",
        "Transferring",
        "Restoring",
        "Finalizing",
        "Succeeded",
    ]


def test_failed_migration_reports_only_what_happened():
    status = run(("Preparing", 0.1), ("Checkpointing", 0.2), ("Failed", 2.2))
    assert status["durations"] == {"total": 2.2}


def test_conditions_follow_the_phase():
    running = run(("Preparing", 1))
    conditions = {c["type"]: c for c in running["conditions"]}
    assert conditions["Progressing"]["status"] == "True" and conditions["Succeeded"]["status"] == "Unknown"
    assert conditions["Progressing"]["observedGeneration"] == 1
    failed = st.merged(
        running,
        st.transition(
            running, "Failed", T0 + timedelta(seconds=5), 1, reason="PodNotFound", message="pod default/x not found"
        ),
    )
    conditions = {c["type"]: c for c in failed["conditions"]}
    assert conditions["Progressing"] == {
        "type": "Progressing",
        "status": "False",
        "reason": "PodNotFound",
        "message": "pod default/x not found",
        "lastTransitionTime": "2030-01-01T00:00:05.000000Z",
        "observedGeneration": 1,
    }
    assert conditions["Succeeded"]["status"] == "False"
    assert failed["reason"] == "PodNotFound" and failed["observedGeneration"] == 1


def test_last_transition_time_moves_only_when_status_changes():
    first = st.set_condition([], "Progressing", "True", "Preparing", "", T0, 1)
    later = st.set_condition(first, "Progressing", "True", "Checkpointing", "", T0 + timedelta(seconds=9), 1)
    assert later[0]["lastTransitionTime"] == first[0]["lastTransitionTime"]
    assert later[0]["reason"] == "Checkpointing"


def test_transition_refuses_illegal_moves():
    with pytest.raises(phases.InvalidTransition):
        st.transition(
            run(("Preparing", 1), ("Checkpointing", 2), ("Transferring", 3), ("Restoring", 4), ("Finalizing", 5)),
            "Failed",
            T0,
            1,
        )


def test_times_round_trip_with_microseconds():
    at = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert st.format_time(at) == "2030-01-01T12:00:00.123456Z"
    assert st.parse_time(st.format_time(at)) == at
