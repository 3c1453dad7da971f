"""Owner strategies: which owners' pods move, what the fence keeps, how a ReplicaSet gets its pod back."""

import json

import pytest
from pmfakes import FakeKube, make_node, make_pod

from podmigration import api
from podmigration.domain import owners
from podmigration.domain.owners.replicaset import DELETION_COST, LOWEST_COST
from podmigration.domain.preflight import preflight

NODES = [make_node("worker-1"), make_node("worker-2")]
HELPERS = {"worker-1": True, "worker-2": True}


def owned(kind, name="web-5d8", labels=None):
    pod = make_pod(labels=labels or {"app": "web", "pod-template-hash": "5d8"})
    pod["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "apps/v1",
            "kind": kind,
            "name": name,
            "uid": "rs-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    return pod


def replicaset(generation=1, match_labels=None):
    return {
        "apiVersion": "apps/v1",
        "metadata": {"name": "web-5d8", "uid": "rs-uid", "generation": generation},
        "spec": {
            "selector": {
                "matchLabels": match_labels if match_labels is not None else {"app": "web", "pod-template-hash": "5d8"}
            }
        },
    }


def check(pod, owner=None, **spec):
    plan = preflight(
        {"podName": "counter", "targetNode": "worker-2", **spec},
        "default",
        pod,
        NODES,
        HELPERS,
        owner=owner,
        around=None,
    )
    return [(r.reason, r.message) for r in plan.refusals]


@pytest.mark.parametrize(
    "kind, reason, words",
    [
        ("DaemonSet", "DaemonSetPod", "one pod on every node"),
        ("ReplicationController", "ControllerOwned", "pods of a ReplicationController cannot be migrated yet"),
        ("CronJob", "ControllerOwned", "pods of a CronJob cannot be migrated yet"),
        ("Node", "StaticPod", "static pod"),
    ],
)
def test_owners_without_a_strategy_are_refused_with_their_own_reason(kind, reason, words):
    ((got, message),) = check(owned(kind, name="x"))
    assert got == reason and words in message and f"managed by {kind} x" in message


def test_mirror_pod_without_owner_reference_is_a_static_pod():
    pod = make_pod()
    pod["metadata"]["annotations"]["kubernetes.io/config.mirror"] = "abc"
    assert [r for r, _ in check(pod)] == ["StaticPod"]


def test_plain_owner_reference_is_no_controller():
    pod = make_pod()
    pod["metadata"]["ownerReferences"] = [{"kind": "ConfigMap", "name": "x", "controller": False}]
    assert check(pod) == []


def test_replicaset_pod_moves_but_not_as_a_kept_copy():
    assert check(owned("ReplicaSet"), replicaset()) == []
    assert [r for r, _ in check(owned("ReplicaSet"), replicaset(), keepSource=True)] == ["KeepSourceOwned"]
    assert [r for r, _ in check(owned("ReplicaSet"), None)] == ["OwnerNotFound"]
    assert [r for r, _ in check(owned("ReplicaSet"), replicaset(match_labels={}))] == ["ControllerOwned"]


def test_read_owner_reads_only_kinds_with_a_strategy():
    kube = FakeKube()
    kube.owners[("ReplicaSet", "web-5d8")] = replicaset()
    assert owners.read_owner(owned("ReplicaSet"), kube.get_owner) == replicaset()
    assert owners.read_owner(owned("DaemonSet"), lambda *a: pytest.fail("read")) is None
    assert owners.read_owner(make_pod(), lambda *a: pytest.fail("read")) is None


def test_replicaset_fence_keeps_the_labels_the_replicaset_selects_on():
    strategy = owners.strategy_for(owned("ReplicaSet"))
    assert strategy.fence_keys(owned("ReplicaSet"), replicaset(), ["app", "tier"]) == ["tier"]
    assert owners.strategy_for(make_pod()).fence_keys(make_pod(), None, ["app", "tier"]) == ["app", "tier"]


def test_replicaset_replacement_is_neither_counted_nor_adopted_until_the_hand_over():
    source = owned("ReplicaSet")
    body = {"metadata": {"labels": {"app": "web", "pod-template-hash": "5d8"}, "annotations": {}}}
    owners.strategy_for(source).shape_replacement(body, source, replicaset())
    assert body["metadata"]["labels"] == {"app": "web"}  # still in the Service, not in the ReplicaSet
    assert json.loads(body["metadata"]["annotations"][api.HELD_LABELS_ANNOTATION]) == {"pod-template-hash": "5d8"}


def test_hand_over_gives_the_replicaset_its_pod_and_ranks_the_source_first_for_deletion():
    source = owned("ReplicaSet")
    source["metadata"]["name"] = "web-5d8-abcde"
    replacement = make_pod("web-5d8-abcde-0f1e2", node="worker-2", labels={"app": "web"})
    replacement["metadata"]["annotations"] = {api.HELD_LABELS_ANNOTATION: '{"pod-template-hash": "5d8"}'}
    kube = FakeKube(pods=[source, replacement])
    owners.strategy_for(source).hand_over(kube, "default", source, replacement)
    new = kube.pods[("default", "web-5d8-abcde-0f1e2")]
    assert new["metadata"]["labels"] == {"app": "web", "pod-template-hash": "5d8"}
    assert api.HELD_LABELS_ANNOTATION not in new["metadata"]["annotations"]
    assert new["metadata"]["ownerReferences"] == source["metadata"]["ownerReferences"]
    assert kube.pods[("default", "web-5d8-abcde")]["metadata"]["annotations"][DELETION_COST] == LOWEST_COST


def test_replicaset_scaled_or_replaced_during_the_move_is_a_change():
    strategy = owners.strategy_for(owned("ReplicaSet"))
    recorded = strategy.record(replicaset())
    assert strategy.changed(recorded, replicaset()) is None
    assert "scaled, or a Deployment rollout began" in strategy.changed(recorded, replicaset(generation=2))
    assert "was deleted" in strategy.changed(recorded, None)


def replicaset_world(world):
    kube = world[0]
    pod = kube.pods[("default", "counter")]
    pod["metadata"]["labels"] = {"app": "counter", "pod-template-hash": "5d8"}
    pod["metadata"]["ownerReferences"] = owned("ReplicaSet")["metadata"]["ownerReferences"]
    kube.owners[("ReplicaSet", "web-5d8")] = replicaset(match_labels={"app": "counter", "pod-template-hash": "5d8"})
    return kube


def test_replicaset_pod_migrates_and_ends_owned_by_its_replicaset(world):
    from pmfakes import start

    kube = replicaset_world(world)
    fenced = []
    original_patch = kube.patch_pod
    kube.patch_pod = lambda ns, name, patch: (fenced.append((name, patch)), original_patch(ns, name, patch))[1]
    migration, _ = start(world, targetNode="worker-2")
    status = migration["status"]
    assert status["phase"] == "Succeeded", status["message"]
    assert status["owner"] == {
        "kind": "ReplicaSet",
        "apiVersion": "apps/v1",
        "name": "web-5d8",
        "uid": "rs-uid",
        "generation": 1,
    }
    fence = next(
        p for name, p in fenced if name == "counter" and api.FENCED_BY_ANNOTATION in p["metadata"]["annotations"]
    )
    assert fence["metadata"]["labels"] == {}  # the Service selects app only: kept, or the pod would be orphaned
    created = kube.created_pods[0]
    assert created["metadata"]["labels"] == {"app": "counter"} and "ownerReferences" not in created["metadata"]
    new = kube.pods[("default", status["targetPod"])]
    assert new["metadata"]["labels"] == {"app": "counter", "pod-template-hash": "5d8"}
    assert new["metadata"]["ownerReferences"][0]["name"] == "web-5d8"
    assert ("default", "counter") not in kube.pods


def test_replicaset_changed_during_the_move_rolls_back(world):
    from pmfakes import start

    kube = replicaset_world(world)

    def scale_down(k):
        if k.created_pods:
            k.owners[("ReplicaSet", "web-5d8")]["metadata"]["generation"] = 2

    kube.on_get_migration.append(scale_down)
    migration, _ = start(world, targetNode="worker-2")
    status = migration["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "OwnerChanged"), status["message"]
    assert ("default", "counter") in kube.pods and kube.deleted_pods == [status["targetPod"]]


def test_job_hand_over_moves_the_tracking_finalizer_so_the_move_is_no_failure():
    uid_label = "batch.kubernetes.io/controller-uid"
    source = owned("Job", name="crunch", labels={uid_label: "job-uid", "job-name": "crunch"})
    source["metadata"]["name"] = "crunch-x7"
    source["metadata"]["finalizers"] = ["batch.kubernetes.io/job-tracking"]
    job = {
        "metadata": {"name": "crunch", "uid": "rs-uid", "generation": 1},
        "spec": {"selector": {"matchLabels": {uid_label: "job-uid"}}},
    }
    strategy = owners.strategy_for(source)
    body = {
        "metadata": {
            "name": "crunch-x7-0f1e2",
            "labels": {uid_label: "job-uid", "job-name": "crunch"},
            "annotations": {},
        },
        "spec": {"nodeName": "worker-2", "containers": []},
    }
    strategy.shape_replacement(body, source, job)
    assert body["metadata"]["labels"] == {"job-name": "crunch"}  # the Job does not count it while it restores
    kube = FakeKube(pods=[source])
    replacement = kube.create_pod("default", body)
    strategy.hand_over(kube, "default", source, replacement)
    assert "finalizers" not in kube.pods[("default", "crunch-x7")]["metadata"]
    new = kube.pods[("default", "crunch-x7-0f1e2")]["metadata"]
    assert new["finalizers"] == ["batch.kubernetes.io/job-tracking"]
    assert new["labels"][uid_label] == "job-uid" and new["ownerReferences"][0]["kind"] == "Job"


def statefulset_world(world):
    """The pod as web-0 of StatefulSet web; a fake StatefulSet controller recreates web-0 once it is gone,
    through the handover webhook when its match condition names it."""
    from podmigration.domain import handover

    kube = world[0]
    pod = kube.pods.pop(("default", "counter"))
    pod["metadata"].update(
        name="web-0",
        uid="uid-web-0",
        labels={"app": "counter", "statefulset": "web"},
        ownerReferences=[
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "sts-uid", "controller": True}
        ],
    )
    pod["spec"]["hostname"] = "web-0"
    kube.pods[("default", "web-0")] = pod
    kube.owners[("StatefulSet", "web")] = {
        "metadata": {"name": "web", "uid": "sts-uid", "generation": 3},
        "spec": {"selector": {"matchLabels": {"statefulset": "web"}}},
    }
    template = {k: v for k, v in pod.items() if k != "status"}

    def controller(k):
        if ("default", "web-0") in k.pods:
            return
        new = {**template, "metadata": {**template["metadata"], "annotations": {}}}
        new.pop("status", None)
        if k.webhook_matches and "'default/web-0'" in k.webhook_matches[-1][1]:
            new = handover.restore_of(new, k.migrations[("default", "web-mig")], "localhost/podmigration:test")
        created = k.create_pod("default", new)
        k.pods[("default", "web-0")]["metadata"]["uid"] = "uid-web-0-new"
        return created

    kube.on_get_migration.insert(0, controller)
    return kube


def run_statefulset(world):
    from pmfakes import FakeStop, run_migration

    kube, _, clock, _, deps = world
    kube.create_migration(
        "default", {"metadata": {"name": "web-mig"}, "spec": {"podName": "web-0", "targetNode": "worker-2"}}
    )
    run_migration(deps, "default", "web-mig", FakeStop(clock))
    return kube.migrations[("default", "web-mig")]["status"]


def test_statefulset_pod_keeps_its_name_and_is_the_restore_the_controller_created(world):
    kube = statefulset_world(world)
    helpers = world[1]
    status = run_statefulset(world)
    assert status["phase"] == "Succeeded", status["message"]
    assert status["targetPod"] == "web-0" and "handover" not in status
    new = kube.pods[("default", "web-0")]
    assert new["metadata"]["uid"] == "uid-web-0-new" and new["spec"]["nodeName"] == "worker-2"
    assert new["spec"]["hostname"] == "web-0" and new["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"
    assert new["spec"]["containers"][0]["image"].startswith(api.CHECKPOINT_IMAGE_REPOSITORY)
    assert kube.webhook_matches == [
        ("pm-statefulset-handover", "(object.metadata.namespace + '/' + object.metadata.name) in ['default/web-0']"),
        ("pm-statefulset-handover", "false"),
    ]
    names = [c[0] for c in helpers.calls]
    assert names.index("kill") < names.index("restored")  # the source ends before its name can be reused


def test_statefulset_pod_recreated_without_the_webhook_fails_and_says_the_state_is_lost(world):
    kube = statefulset_world(world)
    kube.set_webhook_match = lambda *a: None  # the webhook never matches
    status = run_statefulset(world)
    assert (status["phase"], status["reason"]) == ("Failed", "RestoringFailed")
    assert "recreated without its restore" in status["message"]


def test_statefulset_rollback_after_the_hand_over_stops_the_webhook_matching(world):
    """The source is gone, so the rollback deletes the restore; the webhook must no longer match the pod, or the
    controller's next create would be turned into a restore of a migration that ended."""
    kube = statefulset_world(world)
    world[1].restored_answer = {"app": False, "side": True}
    status = run_statefulset(world)
    assert (status["phase"], status["reason"]) == ("Failed", "RestoringFailed"), status["message"]
    assert "handover" not in status
    assert kube.webhook_matches[-1] == ("pm-statefulset-handover", "false")
    kube.on_get_migration[0](kube)  # the controller recreates web-0 after the rollback deleted the restore
    fresh = kube.pods[("default", "web-0")]
    assert api.MIGRATION_ANNOTATION not in fresh["metadata"]["annotations"]
    assert not fresh["spec"]["containers"][0]["image"].startswith(api.CHECKPOINT_IMAGE_REPOSITORY)
