from pmfakes import start
from prometheus_client import CollectorRegistry, generate_latest

from podmigration.controller.metrics import Metrics


def at(*phase_seconds):
    return [{"phase": p, "time": f"2030-01-01T00:00:{s:02d}Z"} for p, s in phase_seconds]


def value(metrics, name, **labels):
    return metrics.registry.get_sample_value(name, labels)


def test_a_finished_migration_is_counted_with_its_result_downtime_phases_and_bytes():
    metrics = Metrics(CollectorRegistry())
    path = [
        ("Pending", 0),
        ("Preparing", 1),
        ("Checkpointing", 2),
        ("Transferring", 5),
        ("Restoring", 6),
        ("Finalizing", 9),
        ("Succeeded", 10),
    ]
    for index in range(1, len(path)):
        status = {"phase": path[index][0], "phaseTransitions": at(*path[: index + 1])}
        if path[index][0] == "Succeeded":
            status.update(reason="Succeeded", durations={"downtime": 4.5}, checkpointBytes=1000, transferredBytes=600)
        metrics.transition(status, path[index - 1][0])
    assert value(metrics, "podmigration_migrations_started_total") == 1
    assert value(metrics, "podmigration_migrations_finished_total", result="Succeeded", reason="Succeeded") == 1
    assert value(metrics, "podmigration_downtime_seconds_count") == 1
    assert value(metrics, "podmigration_downtime_seconds_sum") == 4.5
    assert value(metrics, "podmigration_phase_duration_seconds_sum", phase="Checkpointing") == 3
    assert value(metrics, "podmigration_checkpoint_bytes_total") == 1000
    assert value(metrics, "podmigration_transferred_bytes_total") == 600


def test_a_failed_migration_counts_its_reason_and_no_downtime():
    metrics = Metrics(CollectorRegistry())
    metrics.transition(
        {"phase": "Failed", "reason": "CheckpointFailed", "phaseTransitions": at(("Checkpointing", 0), ("Failed", 3))},
        "Checkpointing",
    )
    assert value(metrics, "podmigration_migrations_finished_total", result="Failed", reason="CheckpointFailed") == 1
    assert value(metrics, "podmigration_downtime_seconds_count") == 0


def test_in_flight_and_queued_are_what_the_daemons_last_read():
    metrics = Metrics(CollectorRegistry())
    metrics.in_flight.track("a", "m1", {"phase": "Pending", "reason": "Queued"})
    metrics.in_flight.track("a", "m2", {"phase": "Transferring"})
    metrics.in_flight.track("a", "m3", {"phase": "Transferring"})
    assert value(metrics, "podmigration_migrations_in_flight", phase="Transferring") == 2
    assert value(metrics, "podmigration_migrations_in_flight", phase="Pending") == 1
    assert value(metrics, "podmigration_migrations_queued") == 1
    metrics.in_flight.track("a", "m2", {"phase": "Succeeded"})
    metrics.in_flight.forget("a", "m1")
    assert value(metrics, "podmigration_migrations_in_flight", phase="Transferring") == 1
    assert value(metrics, "podmigration_migrations_queued") == 0
    assert b"podmigration_migrations_in_flight" in generate_latest(metrics.registry)


def test_the_migration_runner_reports_a_migration_it_drives(world):
    deps = world[4]
    deps.metrics = Metrics(CollectorRegistry())
    migration, _ = start(world, targetNode="worker-2")
    assert migration["status"]["phase"] == "Succeeded"
    assert value(deps.metrics, "podmigration_migrations_finished_total", result="Succeeded", reason="Succeeded") == 1
    assert value(deps.metrics, "podmigration_transferred_bytes_total") == 800
    assert value(deps.metrics, "podmigration_phase_duration_seconds_count", phase="Restoring") == 1
    assert value(deps.metrics, "podmigration_migrations_in_flight", phase="Finalizing") == 0
