"""The runner against fakes: network cut, volumes moved while frozen, the source killed frozen, restarts told."""

from pmfakes import run_migration, start

from podmigration import api
from podmigration.domain.helpers import HelperError


def with_volume(kube, medium=None):
    pod = kube.pods[("default", "counter")]
    pod["spec"]["volumes"] = [{"name": "data", "emptyDir": {"medium": medium} if medium else {}}]
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    return pod


def test_network_is_cut_before_the_first_dump_and_restored_on_rollback(world):
    kube, helpers, _, _, _ = world
    helpers.fail["send"] = HelperError("worker-1", "POST /v1/send", "HTTP 502: peer gone")
    migration, _ = start(world, targetNode="worker-2")
    names = [c[0] for c in helpers.calls]
    assert names.index("network_cut") < names.index("checkpoint")
    assert names.index("network_restore") > names.index("thaw")
    assert helpers.cut == set() and helpers.frozen == set()
    assert migration["status"]["reason"] == "TransferringFailed"


def test_keep_source_reconnects_and_thaws_the_source(world):
    kube, helpers, _, _, _ = world
    migration, _ = start(world, targetNode="worker-2", keepSource=True)
    assert migration["status"]["phase"] == "Succeeded"
    assert helpers.cut == set() and helpers.frozen == set() and helpers.killed == set()
    assert ("default", "counter") in kube.pods


def test_empty_dir_is_copied_frozen_and_in_place_before_the_restored_containers_start(world):
    kube, helpers, _, _, _ = world
    with_volume(kube, medium="Memory")
    helpers.open_files = {"app": [{"path": "/data/seq", "size": 4096}, {"path": "/etc/hosts", "size": 10}]}
    migration, uid = start(world, targetNode="worker-2")
    status = migration["status"]
    assert status["phase"] == "Succeeded", status["message"]
    archive = api.volume_archive_id(uid, "data")
    (volume,) = status["volumes"]
    assert volume["name"] == "data" and volume["medium"] == "Memory" and volume["bytes"] == 500
    assert volume["wireBytes"] == 400 and volume["truncate"] == {"seq": 4096} and volume["truncated"] == ["seq"]
    assert status["transferredBytes"] == 3 * 400  # two container archives and the volume
    names = [c[0] for c in helpers.calls]
    assert names.index("freeze") < names.index("pack_volume") < names.index("send")
    assert ("send", "worker-1", archive, "worker-2", "zstd") in helpers.calls
    replacement = kube.created_pods[0]
    (gate,) = replacement["spec"]["initContainers"]
    assert gate["name"] == api.VOLUMES_GATE_CONTAINER and gate["image"] == "localhost/podmigration:test"
    unpack = next(c for c in helpers.calls if c[0] == "unpack_volume")
    assert unpack == ("unpack_volume", "worker-2", replacement["metadata"]["uid"], "data", archive, {"seq": 4096})
    assert names.index("unpack_volume") < names.index("release_volumes") < names.index("restored")


def test_a_resumed_restore_never_unpacks_twice(world, monkeypatch):
    kube, helpers, _, _, deps = world
    with_volume(kube)
    helpers.fail["restored"] = RuntimeError("operator killed here")
    from pmfakes import FakeStop

    from podmigration.controller import runner

    kube.create_migration(
        "default", {"metadata": {"name": "counter-mig"}, "spec": {"podName": "counter", "targetNode": "worker-2"}}
    )
    with monkeypatch.context() as patched:
        # the operator dies in Restoring
        patched.setattr(runner, "step_failed", lambda *a: (_ for _ in ()).throw(SystemExit("crash")))
        try:
            run_migration(deps, "default", "counter-mig", FakeStop(deps.clock))
        except SystemExit:
            pass
    del helpers.fail["restored"]
    helpers.calls.clear()
    run_migration(deps, "default", "counter-mig", FakeStop(deps.clock))
    assert kube.migrations[("default", "counter-mig")]["status"]["phase"] == "Succeeded"
    assert "unpack_volume" not in [c[0] for c in helpers.calls]
    assert "release_volumes" in [c[0] for c in helpers.calls]


def test_source_killed_by_its_kubelet_while_frozen_ends_source_restarted(world):
    kube, helpers, _, _, _ = world
    pod = kube.pods[("default", "counter")]
    pod["status"]["containerStatuses"][0]["restartCount"] = 2
    helpers.fail["send"] = HelperError("worker-1", "POST /v1/send", "HTTP 502: peer gone")
    kube.events.append(
        {
            "involvedObject": {"name": "counter", "uid": "uid-counter"},
            "reason": "Killing",
            "lastTimestamp": "2030-01-01T00:00:05Z",
            "message": "Container app failed liveness probe, will be restarted",
        }
    )
    migration, _ = start(world, targetNode="worker-2")
    status = migration["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "SourceRestarted")
    assert status["sourceRestarts"] == {"app": 2, "side": 0}
    assert "failed liveness probe" in status["message"] and "peer gone" in status["message"]


def test_rollback_without_restart_keeps_its_reason(world):
    kube, helpers, _, _, _ = world
    helpers.fail["send"] = HelperError("worker-1", "POST /v1/send", "HTTP 502: peer gone")
    kube.events.append(
        {
            "involvedObject": {"name": "counter", "uid": "uid-counter"},
            "reason": "Killing",
            "lastTimestamp": "2029-12-31T23:00:00Z",
            "message": "Stopping container app",
        }
    )
    migration, _ = start(world, targetNode="worker-2")
    assert migration["status"]["reason"] == "TransferringFailed"


def test_liveness_probe_that_gives_up_sooner_than_the_expected_downtime_is_warned(world):
    kube, helpers, _, events, _ = world
    helpers.memory = 1 << 30
    kube.pods[("default", "counter")]["spec"]["containers"][0]["livenessProbe"] = {"exec": {"command": ["true"]}}
    migration, _ = start(world, targetNode="worker-2")
    status = migration["status"]
    assert status["expectedDowntime"] == 32.0
    (warning,) = status["warnings"]
    assert warning.startswith("container app: its liveness probe gives up after 30s")
    assert ("PodMigration", "Warning", "LivenessProbeRisk", warning) in events


def test_source_is_deleted_after_it_was_killed_frozen(world):
    kube, helpers, _, _, _ = world
    order = []
    original_delete = kube.delete_pod
    kube.delete_pod = lambda *a, **k: (order.append(("delete", set(helpers.killed))), original_delete(*a, **k))
    migration, _ = start(world, targetNode="worker-2")
    assert migration["status"]["phase"] == "Succeeded"
    assert order == [("delete", {"uid-counter"})]  # SIGKILL queued before the kubelet hears of the deletion


def test_an_archive_the_target_already_has_counts_as_delivered(world):
    """Write-once archives: a send whose answer an operator restart lost is refused (409) the second time."""
    kube, helpers, _, _, _ = world
    original = helpers.send

    def already_there(source, archive_id, target, compression, timeout):
        if archive_id.endswith("-side"):
            helpers.calls.append(("send", source.node, archive_id, target.node, compression))
            raise HelperError(source.node, "POST /v1/send", "HTTP 409: archive already exists", 409)
        return original(source, archive_id, target, compression, timeout)

    helpers.send = already_there
    migration, _ = start(world, targetNode="worker-2")
    status = migration["status"]
    assert status["phase"] == "Succeeded", status["message"]
    side = next(c for c in status["containers"] if c["name"] == "side")
    assert side["transferredBytes"] == side["checkpointBytes"]
