"""Liveness-probe risk before a migration, and evidence that the kubelet restarted a frozen source."""

from datetime import UTC, datetime

from pmfakes import make_pod

from podmigration.domain import sourcehealth

SINCE = datetime(2030, 1, 1, 12, 0, 0, 500000, tzinfo=UTC)


def probed(**probe):
    pod = make_pod(containers=("app", "side"))
    pod["spec"]["containers"][0]["livenessProbe"] = {"tcpSocket": {"port": 80}, **probe}
    return pod


def test_expected_downtime_grows_with_memory():
    assert sourcehealth.expected_downtime(0, 2.0, 30.0) == 2.0
    assert sourcehealth.expected_downtime(1 << 30, 2.0, 30.0) == 32.0


def test_default_liveness_probe_gives_up_after_thirty_seconds():
    assert sourcehealth.liveness_tolerance(probed()["spec"]["containers"][0]) == 30.0
    assert sourcehealth.liveness_tolerance(probed()["spec"]["containers"][1]) is None


def test_warns_only_for_probes_that_give_up_before_the_expected_downtime():
    assert sourcehealth.liveness_warnings(probed(), 12.0) == []
    (warning,) = sourcehealth.liveness_warnings(probed(periodSeconds=2, failureThreshold=3), 12.0)
    assert warning.startswith("container app: its liveness probe gives up after 6s of failures")
    assert "SourceRestarted" in warning


def test_higher_restart_count_is_a_restart():
    pod = make_pod(containers=("app", "side"))
    pod["status"]["containerStatuses"][1]["restartCount"] = 1
    why = sourcehealth.restart_evidence(pod, {"app": 0, "side": 0}, [], SINCE)
    assert why == "the kubelet restarted container(s) side of the source while it was frozen"


def test_kubelet_kill_since_the_fence_is_a_restart_before_it_shows():
    pod = make_pod()
    old = {"reason": "Killing", "lastTimestamp": "2030-01-01T11:59:00Z", "message": "Stopping container app"}
    assert sourcehealth.restart_evidence(pod, {"app": 0}, [old], SINCE) is None
    new = {
        "reason": "Killing",
        "lastTimestamp": "2030-01-01T12:00:00Z",
        "message": "Container app failed liveness probe, will be restarted",
    }
    assert sourcehealth.restart_evidence(pod, {"app": 0}, [old, new], SINCE) == (
        "the kubelet killed the source while it was frozen: Container app failed liveness probe, will be restarted"
    )


def test_probe_failures_alone_are_no_restart():
    unhealthy = {"reason": "Unhealthy", "lastTimestamp": "2030-01-01T12:00:05Z", "message": "Liveness probe failed"}
    assert sourcehealth.restart_evidence(make_pod(), {"app": 0}, [unhealthy], SINCE) is None
