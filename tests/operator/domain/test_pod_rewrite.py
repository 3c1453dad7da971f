import json

from pmfakes import make_pod

from podmigration import api
from podmigration.domain.podspec import base_images, replacement_name, replacement_pod

UID = "6f9c1a2b-0000-4000-8000-1234567890ab"


def source_pod():
    pod = make_pod(
        "counter",
        containers=("app", "sidecar"),
        labels={"app": "counter", "tier": "web"},
        initContainers=[{"name": "init", "image": "localhost/init:1"}],
        volumes=[{"name": "cfg", "configMap": {"name": "cfg"}}],
        nodeSelector={"disk": "ssd"},
        ephemeralContainers=[{"name": "debug"}],
    )
    pod["spec"]["containers"][0].update(
        env=[{"name": "A", "value": "1"}],
        ports=[{"containerPort": 8080}],
        volumeMounts=[{"name": "cfg", "mountPath": "/cfg"}],
    )
    pod["metadata"].update(
        creationTimestamp="2030-01-01T00:00:00Z",
        managedFields=[{}],
        generation=1,
        ownerReferences=[{"kind": "Thing", "name": "t"}],
        finalizers=["x/y"],
    )
    # fenced: "app" was removed to take the pod out of its Service
    pod["metadata"]["labels"] = {"tier": "web"}
    pod["metadata"]["annotations"] = {
        "note": "kept",
        api.FENCED_BY_ANNOTATION: "counter-x",
        api.FENCED_LABELS_ANNOTATION: json.dumps({"app": "counter"}),
        "kopf.zalando.org/last-handled-configuration": "{}",
    }
    return pod


def test_replacement_runs_checkpoint_images_on_the_target():
    new = replacement_pod(source_pod(), migration_name="counter-x", migration_uid=UID, target_node="worker-2")
    assert new["spec"]["nodeName"] == "worker-2"
    assert [(c["name"], c["image"], c["imagePullPolicy"]) for c in new["spec"]["containers"]] == [
        ("app", f"localhost/podmigration-checkpoint/{UID}-app:latest", "Never"),
        ("sidecar", f"localhost/podmigration-checkpoint/{UID}-sidecar:latest", "Never"),
    ]


def test_init_and_ephemeral_containers_are_dropped_the_rest_is_kept():
    new = replacement_pod(source_pod(), migration_name="counter-x", migration_uid=UID, target_node="worker-2")
    assert "initContainers" not in new["spec"] and "ephemeralContainers" not in new["spec"]
    app = new["spec"]["containers"][0]
    assert app["env"] == [{"name": "A", "value": "1"}]
    assert app["ports"] == [{"containerPort": 8080}]
    assert app["volumeMounts"] == [{"name": "cfg", "mountPath": "/cfg"}]
    assert new["spec"]["volumes"] == [{"name": "cfg", "configMap": {"name": "cfg"}}]
    assert new["spec"]["nodeSelector"] == {"disk": "ssd"}


def test_identity_and_server_fields_are_stripped_and_original_labels_restored():
    new = replacement_pod(source_pod(), migration_name="counter-x", migration_uid=UID, target_node="worker-2")
    meta = new["metadata"]
    assert meta["name"] == "counter-6f9c1"
    for key in (
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "managedFields",
        "generation",
        "ownerReferences",
        "finalizers",
    ):
        assert key not in meta, key
    assert "status" not in new
    assert meta["labels"] == {"app": "counter", "tier": "web"}
    assert meta["annotations"] == {
        "note": "kept",
        api.MIGRATION_ANNOTATION: "counter-x",
        api.MIGRATED_FROM_ANNOTATION: "counter",
        api.ORIGINAL_IMAGES_ANNOTATION: '{"app":"localhost/app:1","sidecar":"localhost/sidecar:1"}',
    }


def test_source_pod_is_not_modified():
    pod = source_pod()
    before = json.dumps(pod, sort_keys=True)
    replacement_pod(pod, migration_name="m", migration_uid=UID, target_node="worker-2")
    assert json.dumps(pod, sort_keys=True) == before


def test_replacement_name_is_stable_and_fits():
    assert replacement_name("counter", UID) == replacement_name("counter", UID) == "counter-6f9c1"
    assert len(replacement_name("x" * 253, UID)) == 253


def test_base_images_are_the_running_containers_images_once():
    pod = make_pod(containers=("a", "b"))
    pod["spec"]["containers"][1]["image"] = "localhost/a:1"
    pod["spec"]["initContainers"] = [{"name": "i", "image": "localhost/init:1"}]
    assert base_images(pod) == ["localhost/a:1"]


def test_a_replacement_moved_again_and_again_keeps_its_original_images_and_its_spec_does_not_grow():
    """Issue 14 part 2: base images are found by the original image, not by the checkpoint image a replacement's
    spec names, and the Nth replacement is the first one apart from names."""
    uids = [f"{n}{n}{n}{n}{n}{n}{n}{n}-0000-4000-8000-1234567890ab" for n in "abc"]
    replacements, pod = [], source_pod()
    for n, uid in enumerate(uids):
        pod = replacement_pod(
            pod, migration_name=f"counter-{n}", migration_uid=uid, target_node=("worker-2", "worker-1")[n % 2]
        )
        replacements.append(pod)
        pod = {**pod, "metadata": {**pod["metadata"], "uid": f"pod-{n}"}}  # as created
    assert [r["metadata"]["name"] for r in replacements] == ["counter-aaaaa", "counter-bbbbb", "counter-ccccc"]
    assert base_images(replacements[-1]) == ["localhost/app:1", "localhost/sidecar:1"]

    def without_names(replacement):
        text = json.dumps(replacement, sort_keys=True)
        for n, uid in enumerate(uids):
            text = text.replace(uid, "UID").replace(f"counter-{n}", "MIGRATION")
        for name in ("counter-aaaaa", "counter-bbbbb", "counter-ccccc"):
            text = text.replace(name, "NAME")
        return json.loads(text)

    first, third = without_names(replacements[0]), without_names(replacements[2])
    first["metadata"]["annotations"][api.MIGRATED_FROM_ANNOTATION] = "NAME"  # from "counter", then a replacement
    assert first == third
