"""Checkpointing's failures and their rollback: the source back in its Services, thawed, on the network, its archives
gone; the fence that keeps it out of traffic meanwhile; a rollback step the node-helper refuses ends, reported."""

import pytest
from pmfakes import SERVICE, start

from podmigration import api
from podmigration.domain import fencing
from podmigration.domain.helpers import HelperError


@pytest.fixture
def bounded(world):
    """Fails a run whose rollback never ends (pytest.fail is a BaseException: the runner does not retry it)."""
    reads = []

    def count(_):
        reads.append(1)
        if len(reads) > 300:
            pytest.fail("the migration never ends")

    world[0].on_get_migration.append(count)
    return world


def assert_source_released(kube, helpers):
    """The source is as before the migration: in its Service, unfenced, thawed, on the network; nothing created."""
    source = kube.pods[("default", "counter")]
    assert source["metadata"]["labels"] == {"app": "counter"}
    assert fencing.selecting_services(source["metadata"]["labels"], kube.services) == [SERVICE]
    assert not {api.FENCED_BY_ANNOTATION, api.FENCED_LABELS_ANNOTATION} & set(source["metadata"]["annotations"])
    assert helpers.frozen == set() and helpers.cut == set() and helpers.killed == set()
    assert kube.created_pods == [] and kube.deleted_pods == []


@pytest.mark.parametrize("step", ["network_cut", "checkpoint", "freeze", "pack_volume"])
def test_a_failure_in_checkpointing_rolls_back_to_the_source(bounded, step):
    kube, helpers, _, events, _ = bounded
    kube.pods[("default", "counter")]["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    helpers.fail[step] = HelperError("worker-1", step, "HTTP 500: boom", 500)
    migration, uid = start(bounded, targetNode="worker-2")
    status = migration["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "CheckpointingFailed"), status["message"]
    assert "HTTP 500: boom" in status["message"] and "rollback" not in status
    assert_source_released(kube, helpers)
    names = [c[0] for c in helpers.calls]
    # Released first, then this migration's archives go from both nodes.
    assert names[-4:] == ["thaw", "network_restore", "cleanup", "cleanup"]
    assert {c[1:3] for c in helpers.calls[-2:]} == {("worker-1", uid), ("worker-2", uid)}
    assert "send" not in names
    assert ("PodMigration", "Warning", "CheckpointingFailed") in [e[:3] for e in events]


def test_a_failed_second_dump_rolls_back_after_the_first(bounded):
    kube, helpers, _, _, _ = bounded
    dump = helpers.checkpoint

    def second_fails(source, namespace, pod, container, archive_id, timeout, since=None):
        if container == "side":
            raise HelperError("worker-1", "POST /v1/checkpoint", "HTTP 502: kubelet checkpoint failed", 502)
        return dump(source, namespace, pod, container, archive_id, timeout, since)

    helpers.checkpoint = second_fails
    migration, _ = start(bounded, targetNode="worker-2")
    status = migration["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "CheckpointingFailed")
    assert [c["name"] for c in status["containers"]] == ["app"]  # the first dump was recorded
    assert_source_released(kube, helpers)


def test_the_source_is_out_of_its_services_while_it_is_dumped(world):
    kube, helpers, _, _, _ = world
    migration, _ = start(world, targetNode="worker-2")
    assert migration["status"]["phase"] == "Succeeded"
    assert len(helpers.dumped_metadata) == 2
    for meta in helpers.dumped_metadata:
        assert fencing.selecting_services(meta["labels"], kube.services) == [], meta
        assert meta["annotations"][api.FENCED_BY_ANNOTATION] == "counter-mig"
        assert fencing.original_labels({"metadata": meta}) == {"app": "counter"}


@pytest.mark.parametrize("refused", ["network_restore", "thaw"])
def test_a_rollback_step_the_helper_refuses_is_reported_and_the_rollback_goes_on(bounded, refused):
    """A 4xx is the helper's final word (a pod in the node's network has no cut to undo): retrying it forever would
    keep the source out of its Services."""
    kube, helpers, _, events, _ = bounded
    helpers.fail["send"] = HelperError("worker-1", "POST /v1/send", "HTTP 502: peer gone", 502)
    helpers.fail[refused] = HelperError("worker-1", f"POST /v1/{refused}", "HTTP 400: not this pod", 400)
    migration, _ = start(bounded, targetNode="worker-2")
    status = migration["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "TransferringFailed"), status["message"]
    assert "peer gone" in status["message"]
    assert (
        "while rolling back the node-helper refused" in status["message"]
        and "HTTP 400: not this pod" in status["message"]
    )
    assert [c[0] for c in helpers.calls].count(refused) == 1  # not asked again
    source = kube.pods[("default", "counter")]
    assert fencing.selecting_services(source["metadata"]["labels"], kube.services) == [SERVICE]
    assert api.FENCED_BY_ANNOTATION not in source["metadata"]["annotations"]
    assert ("PodMigration", "Warning", "RollbackStepRefused") in [e[:3] for e in events]


def test_a_rollback_step_the_helper_could_not_do_is_retried(bounded):
    kube, helpers, _, _, _ = bounded
    helpers.fail["send"] = HelperError("worker-1", "POST /v1/send", "HTTP 502: peer gone", 502)
    restore = helpers.network_restore
    answers = [HelperError("worker-1", "POST /v1/network/restore", "request failed: connection refused")]

    def flaky(helper, pod_uid):
        if answers:
            raise answers.pop()
        return restore(helper, pod_uid)

    helpers.network_restore = flaky
    migration, _ = start(bounded, targetNode="worker-2")
    status = migration["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "TransferringFailed")
    assert "refused" not in status["message"]
    assert helpers.cut == set() and answers == []
    assert [c[0] for c in helpers.calls].count("thaw") == 2  # the whole release again


def test_a_host_network_pod_is_refused_in_preparing(world):
    kube, helpers, _, _, _ = world
    kube.pods[("default", "counter")]["spec"]["hostNetwork"] = True
    migration, _ = start(world, targetNode="worker-2")
    status = migration["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "HostNetwork"), status["message"]
    assert helpers.calls == [] and kube.created_pods == []


def test_a_cleanup_the_helper_refuses_ends_the_rollback_reported(bounded):
    kube, helpers, _, _, _ = bounded
    helpers.fail["send"] = HelperError("worker-1", "POST /v1/send", "HTTP 502: peer gone", 502)
    cleanup = helpers.cleanup

    def refused_while_rolling_back(helper, migration_uid, aliases=False):  # the checkpoint step's own cleanup goes
        if kube.migrations[("default", "counter-mig")]["status"].get("rollback"):
            raise HelperError(helper.node, "DELETE /v1/migrations", "HTTP 400: bad id", 400)
        return cleanup(helper, migration_uid, aliases)

    helpers.cleanup = refused_while_rolling_back
    migration, _ = start(bounded, targetNode="worker-2")
    status = migration["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "TransferringFailed"), status["message"]
    assert "refused" in status["message"] and "HTTP 400: bad id" in status["message"]
    assert_source_released(kube, helpers)
