"""A node-helper that restarts during a migration (rolling update, crash, OOM kill): the step is repeated once it is
back, within timeoutSeconds; a failure an unchanged helper answered still rolls back."""

import dataclasses
from datetime import timedelta

import pytest
from pmfakes import make_helper_pod, start

from podmigration.domain import helperoutage
from podmigration.domain.helpers import Helper, HelperError
from podmigration.domain.refusals import Refusal


def _helper_pod(kube, node):
    return next(p for p in kube.helper_pods if p["spec"]["nodeName"] == node)


def _restart_helper(kube, node):
    """What a DaemonSet rolling update leaves: another pod (new uid), not ready until it holds its certificate."""
    pod = _helper_pod(kube, node)
    pod["metadata"]["uid"] = pod["metadata"].get("uid", "") + "-new"
    pod["status"]["conditions"] = [{"type": "Ready", "status": "False"}]


def _ready_after(kube, node, reads):
    """The restarted helper becomes ready after `reads` more reads of the PodMigration."""
    left = [reads]

    def tick(_):
        left[0] -= 1
        if left[0] == 0:
            _helper_pod(kube, node)["status"]["conditions"] = [{"type": "Ready", "status": "True"}]

    kube.on_get_migration.append(tick)


def _first_send_cut_off(helpers, target_dies):
    """The first send fails as when the target's helper dies mid-upload (`target_dies()` then); returns the ids
    of the archives whose send failed."""
    original, failed = helpers.send, []

    def send(source, archive_id, target, compression, timeout):
        if not failed:
            failed.append(archive_id)
            target_dies()
            raise HelperError("worker-1", "POST /v1/send", "HTTP 502: peer closed the connection during upload", 502)
        return original(source, archive_id, target, compression, timeout)

    helpers.send = send
    return failed


def test_target_helper_restarting_mid_send_is_waited_for_and_the_send_repeated(world):
    kube, helpers, _, _, _ = world
    failed = _first_send_cut_off(
        helpers, lambda: (_restart_helper(kube, "worker-2"), _ready_after(kube, "worker-2", 5))
    )
    migration, _ = start(world, targetNode="worker-2")
    status = migration["status"]
    assert (status["phase"], status["reason"]) == ("Succeeded", "Succeeded"), status["message"]
    sends = [c for c in helpers.calls if c[0] == "send"]
    assert sends[0][2] == failed[0], "the archive that failed is sent again first"
    assert "rollback" not in status and helpers.killed == {"uid-counter"}


def test_source_helper_gone_mid_checkpoint_is_waited_for_and_the_dump_redone(world):
    kube, helpers, _, _, _ = world
    original = helpers.checkpoint
    seen = []

    def checkpoint(source, namespace, pod, container, archive_id, timeout, since=None):
        seen.append(since)
        if len(seen) == 1:
            _restart_helper(kube, "worker-1")
            _ready_after(kube, "worker-1", 3)
            raise HelperError("worker-1", "POST /v1/checkpoint", "request failed: connection reset", unreachable=True)
        return original(source, namespace, pod, container, archive_id, timeout)

    helpers.checkpoint = checkpoint
    migration, uid = start(world, targetNode="worker-2")
    assert migration["status"]["phase"] == "Succeeded", migration["status"]["message"]
    names = [c[0] for c in helpers.calls]
    # The repeated step starts over: archives of the first try deleted, then every container dumped.
    assert ("cleanup", "worker-1", uid) in helpers.calls[names.index("network_cut") + 1 :]
    assert len(seen) == 3 and seen[0] is not None and len(set(seen)) == 1, "kubelet leftovers since the phase"


def test_a_helper_that_does_not_come_back_rolls_back_at_the_timeout(world):
    kube, helpers, _, _, _ = world

    def send(*_, **__):
        _restart_helper(kube, "worker-2")
        raise HelperError("worker-1", "POST /v1/send", "HTTP 502: peer gone", 502)

    helpers.send = send
    migration, _ = start(world, targetNode="worker-2", timeoutSeconds=60)
    status = migration["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "Timeout"), status["message"]
    assert helpers.frozen == set() and helpers.cut == set()


def test_a_failure_an_unchanged_helper_answered_still_rolls_back_at_once(world):
    _, helpers, _, _, _ = world
    helpers.fail["send"] = HelperError("worker-1", "POST /v1/send", "HTTP 422: sha256 mismatch", 422)
    migration, _ = start(world, targetNode="worker-2")
    assert migration["status"]["reason"] == "TransferringFailed"
    assert len([c for c in helpers.calls if c[0] == "send"]) == 1


def test_repeats_of_one_phase_are_bounded(world):
    kube, helpers, _, _, _ = world

    def send(*_, **__):
        pod = _helper_pod(kube, "worker-2")
        pod["metadata"]["uid"] = pod["metadata"].get("uid", "") + "+"  # restarted, and ready again at once
        raise HelperError("worker-1", "POST /v1/send", "HTTP 502: peer gone", 502)

    helpers.send = send
    migration, _ = start(world, targetNode="worker-2")
    assert migration["status"]["reason"] == "TransferringFailed"
    assert len([c for c in helpers.calls if c[0] == "checkpoint"]) == 2  # one checkpoint, two containers


def test_preparing_waits_for_a_target_helper_being_restarted(world):
    kube, helpers, _, _, _ = world
    _restart_helper(kube, "worker-2")
    _ready_after(kube, "worker-2", 4)
    migration, _ = start(world, targetNode="worker-2")
    assert migration["status"]["phase"] == "Succeeded", migration["status"]["message"]


def test_a_target_without_any_helper_is_still_refused_after_the_grace(world):
    kube, helpers, clock, _, deps = world
    kube.helper_pods = [p for p in kube.helper_pods if p["spec"]["nodeName"] != "worker-2"]
    world = world[:4] + (dataclasses.replace(deps, config=dataclasses.replace(deps.config, helper_restart_seconds=20)),)
    migration, _ = start(world, targetNode="worker-2")
    status = migration["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "TargetNoHelper"), status["message"]
    assert not [c for c in helpers.calls if c[0] in ("network_cut", "checkpoint")]


def _helpers(**incarnations):
    return {
        node: Helper(node, "https://x:1", ready=inc is not None, incarnation=inc or "")
        for node, inc in incarnations.items()
    }


@pytest.mark.parametrize(
    "error, before, now, expected",
    [
        (
            HelperError("w1", "POST /v1/send", "HTTP 502", 502),
            {"w1": "a/0", "w2": "b/0"},
            _helpers(w1="a/0", w2="c/0"),
            "the node-helper on node w2 restarted",
        ),
        (
            HelperError("w1", "POST /v1/send", "HTTP 502", 502),
            {"w1": "a/0", "w2": "b/0"},
            _helpers(w1="a/0", w2="b/1"),
            "the node-helper on node w2 restarted",
        ),
        (
            HelperError("w1", "POST /v1/thaw", "refused", unreachable=True),
            {},
            _helpers(w1="a/0", w2="b/0"),
            "did not answer",
        ),
        (HelperError("w1", "POST /v1/send", "HTTP 502", 502), {}, _helpers(w1="a/0", w2=None), "no ready node-helper"),
        (
            HelperError("w1", "POST /v1/send", "HTTP 422", 422),
            {"w1": "a/0", "w2": "b/0"},
            _helpers(w1="a/0", w2="b/0"),
            None,
        ),
        (RuntimeError("replacement pod vanished"), {}, _helpers(w1=None, w2=None), None),
    ],
)
def test_outage_decision(error, before, now, expected):
    why = helperoutage.outage(error, ["w1", "w2"], before, now)
    assert (why is None) if expected is None else (expected in why)


def test_preparing_waits_only_for_helper_refusals_and_only_for_the_grace():
    helper = Refusal("TargetNoHelper", "not ready")
    assert helperoutage.preparing_wait([helper], 10, 60)
    assert not helperoutage.preparing_wait([helper], 60, 60)
    assert not helperoutage.preparing_wait([helper, Refusal("TargetNotReady", "node down")], 10, 60)
    assert not helperoutage.preparing_wait([], 10, 60)


def test_helper_incarnation_changes_with_a_restart_and_not_with_readiness():
    pod = make_helper_pod("w1", "10.0.0.1")
    pod["metadata"]["uid"] = "u1"
    pod["status"]["containerStatuses"] = [{"restartCount": 2}]
    from podmigration.domain.helpers import helpers_from_pods

    assert helpers_from_pods([pod], 9443)["w1"].incarnation == "u1/2"


def test_a_peer_failure_waits_for_the_pods_to_show_the_restart(world):
    """The target's helper died mid-upload; the source answered 502 before the kubelet reported the restart."""
    kube, helpers, clock, _, _ = world

    def restart_shows_later():
        start, listed = clock.now, kube.list_pods

        def list_pods(namespace, selector):
            if clock.now - start > timedelta(seconds=2):
                _helper_pod(kube, "worker-2")["status"]["containerStatuses"] = [{"restartCount": 1}]
            return listed(namespace, selector)

        kube.list_pods = list_pods

    _first_send_cut_off(helpers, restart_shows_later)
    migration, _ = start(world, targetNode="worker-2")
    assert migration["status"]["phase"] == "Succeeded", migration["status"]["message"]
