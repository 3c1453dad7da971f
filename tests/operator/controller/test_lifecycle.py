"""A migrated pod stays an ordinary pod (issue 14): its restore settles on its original images, its restart count
carried over from the checkpoint is no restart, it migrates again from its original images; status publishes no
archive sha256 (issue 15, F4)."""

import json

from pmfakes import FakeStop, run_migration, start

from podmigration import api
from podmigration.domain.podspec import replacement_name

SECOND_UID = "5e6d7c8b-aaaa-bbbb-cccc-000000000002"


def run_second(world, pod: str, target: str) -> dict:
    """A second PodMigration (its own name and uid) of ``pod``, run to its end."""
    kube, _, clock, _, deps = world
    kube.create_migration(
        "default", {"metadata": {"name": "back"}, "spec": {"podName": pod, "timeoutSeconds": 300, "targetNode": target}}
    )
    kube.migrations[("default", "back")]["metadata"]["uid"] = SECOND_UID
    run_migration(deps, "default", "back", FakeStop(clock))
    return kube.migrations[("default", "back")]


def test_the_restore_settles_on_the_original_images_and_status_publishes_no_sha256(world):
    kube, helpers, _, _, _ = world
    migration, uid = start(world, targetNode="worker-2")
    status = migration["status"]
    assert status["phase"] == "Succeeded", status["message"]
    originals = {"app": "localhost/app:1", "side": "localhost/side:1"}
    assert status["originalImages"] == originals
    expected = ("worker-2", status["targetPod"], uid, originals)
    assert helpers.settled and all(call == expected for call in helpers.settled)
    new = kube.pods[("default", status["targetPod"])]
    assert json.loads(new["metadata"]["annotations"][api.ORIGINAL_IMAGES_ANNOTATION]) == originals
    assert "sha256" not in json.dumps(status) and "ab" * 32 not in json.dumps(status)
    key = status["digestKey"]
    assert [c["digest"] for c in status["containers"]] == [api.keyed_digest(key, "ab" * 32)] * 2
    # The target keeps the names the restored pod restarts from; only a rollback or a later move removes them.
    assert ("cleanup", "worker-2", uid) in helpers.calls
    assert not [c for c in helpers.calls if c[0] == "cleanup" and "aliases" in c]


def test_a_restart_count_carried_over_from_the_checkpoint_is_not_a_restart(world):
    kube, helpers, _, _, _ = world
    source = kube.pods[("default", "counter")]
    source["status"]["containerStatuses"] = [
        {"name": "app", "restartCount": 1, "state": {"running": {}}},
        {"name": "side", "restartCount": 0, "state": {"running": {}}},
    ]

    def restored_with_the_checkpoints_count(k, restarts=(1, 0)):
        for pod in k.pods.values():
            if api.MIGRATION_ANNOTATION in pod["metadata"]["annotations"] and pod["status"]["phase"] == "Running":
                pod["status"]["containerStatuses"] = [
                    {"name": n, "restartCount": r, "state": {"running": {}}} for n, r in zip(("app", "side"), restarts)
                ]

    kube.on_get_migration.append(restored_with_the_checkpoints_count)
    migration, _ = start(world, targetNode="worker-2")
    assert migration["status"]["phase"] == "Succeeded", migration["status"]["message"]


def test_a_restore_that_restarted_fails_and_its_target_names_go(world):
    kube, helpers, _, _, _ = world

    def restarted(k):
        for pod in k.pods.values():
            if api.MIGRATION_ANNOTATION in pod["metadata"]["annotations"] and pod["status"]["phase"] == "Running":
                pod["status"]["containerStatuses"] = [{"name": "app", "restartCount": 1, "state": {"running": {}}}]

    kube.on_get_migration.append(restarted)
    migration, uid = start(world, targetNode="worker-2")
    status = migration["status"]
    assert status["phase"] == "Failed" and "restarted" in status["message"], status["message"]
    assert ("cleanup", "worker-2", uid, "aliases") in helpers.calls


def test_a_replacement_moves_again_from_its_original_images_and_its_old_names_go_with_it(world):
    kube, helpers, _, _, _ = world
    first, first_uid = start(world, targetNode="worker-2")
    replacement = kube.pods[("default", first["status"]["targetPod"])]
    replacement["metadata"]["uid"] = "uid-replacement"
    replacement["status"] = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [{"name": c, "state": {"running": {}}} for c in ("app", "side")],
    }
    replacement["spec"]["nodeName"] = "worker-2"
    helpers.calls.clear()
    status = run_second(world, replacement["metadata"]["name"], "worker-1")["status"]
    assert status["phase"] == "Succeeded", status["message"]
    assert [c for c in helpers.calls if c[0] == "ensure_images"] == [
        ("ensure_images", "worker-1", ("localhost/app:1", "localhost/side:1"), "worker-2")
    ]
    assert status["sourceRestoredBy"] == first_uid
    assert ("cleanup", "worker-2", first_uid, "aliases") in helpers.calls
    assert status["targetPod"] == replacement_name("counter", SECOND_UID), "names do not grow per move"
    again = kube.pods[("default", status["targetPod"])]
    assert [c["image"] for c in again["spec"]["containers"]] == [
        api.checkpoint_image(SECOND_UID, c) for c in ("app", "side")
    ]
