"""domain/baseimages.py: the pod that has the target's kubelet pull a pod's base images, and what its status says."""

from pmfakes import make_pod

from podmigration import api
from podmigration.domain import baseimages, podspec

MIGRATION = {"metadata": {"name": "counter-mig", "uid": "mig-uid"}}


def _prepull(pod):
    return baseimages.prepull_pod(
        pod, baseimages.containers_to_pull(pod), migration=MIGRATION, target_node="worker-2", deadline_seconds=120
    )


def _with_states(prepull, *states):
    prepull["status"] = {
        "phase": "Pending",
        "containerStatuses": [
            {"name": c["name"], "state": s} for c, s in zip(prepull["spec"]["containers"], states, strict=True)
        ],
    }
    return prepull


def test_each_container_keeps_its_policy_and_a_replacement_gets_the_api_servers_default_for_its_original_image():
    pod = make_pod(containers=("app", "side", "edge"))
    pod["spec"]["containers"][0]["imagePullPolicy"] = "Never"
    pod["spec"]["containers"][1]["imagePullPolicy"] = "Always"
    pod["spec"]["containers"][2]["imagePullPolicy"] = "IfNotPresent"
    assert [c["imagePullPolicy"] for c in baseimages.containers_to_pull(pod)] == ["Never", "Always", "IfNotPresent"]
    originals = {"app": "team/app", "side": "team/side:latest", "edge": "team/edge:2"}
    replacement = make_pod(containers=("app", "side", "edge"))
    replacement["metadata"]["annotations"][api.ORIGINAL_IMAGES_ANNOTATION] = podspec.original_images_annotation(
        originals
    )
    for c in replacement["spec"]["containers"]:
        c.update(image=api.checkpoint_image("old", c["name"]), imagePullPolicy="Never")
    assert [(c["image"], c["imagePullPolicy"]) for c in baseimages.containers_to_pull(replacement)] == [
        ("team/app", "Always"),
        ("team/side:latest", "Always"),
        ("team/edge:2", "IfNotPresent"),
    ]
    assert baseimages.pull_policy({"image": "x"}, "team/app@sha256:" + "a" * 64) == "IfNotPresent"


def test_the_prepull_pod_has_the_pods_credentials_and_nothing_else_and_never_runs_the_workload():
    pod = make_pod(
        serviceAccountName="app-sa",
        imagePullSecrets=[{"name": "tenant-pull"}],
        tolerations=[{"operator": "Exists"}],
        volumes=[{"name": "data", "emptyDir": {}}],
    )
    pod["spec"]["containers"][0].update(env=[{"name": "SECRET", "value": "x"}], volumeMounts=[{"name": "data"}])
    body = _prepull(pod)
    spec = body["spec"]
    assert spec["nodeName"] == "worker-2" and spec["restartPolicy"] == "Never"
    assert spec["serviceAccountName"] == "app-sa" and spec["imagePullSecrets"] == [{"name": "tenant-pull"}]
    assert spec["automountServiceAccountToken"] is False and spec["activeDeadlineSeconds"] == 120
    assert "volumes" not in spec and spec["tolerations"] == [{"operator": "Exists"}]
    (container,) = spec["containers"]
    assert container["command"] == [baseimages.NEVER_RUNS] and container["image"] == "localhost/app:1"
    assert "env" not in container and "volumeMounts" not in container
    assert container["securityContext"]["runAsNonRoot"] is True
    assert body["metadata"]["name"] == baseimages.prepull_name("mig-uid")
    assert body["metadata"]["labels"] == {api.PREPULL_LABEL: "mig-uid"}
    assert body["metadata"]["ownerReferences"][0]["uid"] == "mig-uid"
    assert "annotations" not in body["metadata"], "pod-guard refuses podmigration.dev/ annotations"
    assert (
        baseimages.prepull_pod(make_pod(), [], migration=MIGRATION, target_node="n", deadline_seconds=1)["spec"][
            "serviceAccountName"
        ]
        == "default"
    )


def test_a_start_failure_after_the_pull_means_pulled_and_a_pull_refusal_names_the_image_and_the_kubelets_words():
    prepull = _prepull(make_pod(containers=("app", "side")))
    assert baseimages.outcome(prepull) is None
    pulled = {"waiting": {"reason": "CreateContainerError"}}
    creating = {"waiting": {"reason": "ContainerCreating"}}
    assert baseimages.outcome(_with_states(prepull, pulled, creating)) is None
    done = baseimages.outcome(_with_states(prepull, pulled, {"terminated": {"reason": "StartError"}}))
    assert done is not None and done.reason is None
    never = {"waiting": {"reason": "ErrImageNeverPull", "message": "image not present with pull policy of Never"}}
    refused = baseimages.outcome(_with_states(prepull, pulled, never))
    assert refused is not None and refused.reason == "ImageNotOnTarget"
    assert "localhost/side:1" in refused.message and "pull policy of Never" in refused.message
    denied = {"waiting": {"reason": "ErrImagePull", "message": "unauthorized"}}
    failed = baseimages.outcome(_with_states(prepull, denied, creating))
    assert failed is not None and failed.reason == "ImagePullFailed" and "unauthorized" in failed.message
    prepull = _with_states(prepull, pulled, creating)
    prepull["status"].update(phase="Failed", reason="DeadlineExceeded", message="active deadline")
    ended = baseimages.outcome(prepull)
    assert ended is not None and ended.reason == "ImagePullFailed" and "localhost/side:1" in ended.message


def test_always_set_by_admission_on_a_checkpoint_image_is_named():
    pod = make_pod(containers=("app", "side"))
    replacement = podspec.replacement_pod(pod, migration_name="m", migration_uid="u", target_node="worker-2")
    assert baseimages.always_pull_forced(replacement) is None
    replacement["spec"]["containers"][1]["imagePullPolicy"] = "Always"
    forced = baseimages.always_pull_forced(replacement)
    assert forced is not None and "side" in forced and "app," not in forced and "AlwaysPullImages" in forced
    assert (
        baseimages.always_pull_forced({"spec": {"containers": [{"image": "a:1", "imagePullPolicy": "Always"}]}}) is None
    )
