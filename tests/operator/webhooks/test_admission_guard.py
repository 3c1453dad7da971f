"""The handover-guard webhook: the StatefulSet controller's pod may use checkpoint images only as exactly the
restore the statefulset-handover webhook made of it, for a migration handing that pod over."""

import copy
from pathlib import Path

import kopf
import pytest
from pmfakes import CONFIG, FakeKube

from podmigration import api
from podmigration.controller.context import Deps
from podmigration.domain import guard, handover
from podmigration.webhooks import admission

UID = "0f1e2d3c-1111"
CHART_CEL = Path(__file__).resolve().parents[3] / "charts/podmigration/templates/_admission.tpl"


def migration(phase="Restoring", pod="web-0", volumes=None):
    return {
        "metadata": {"name": "web-mig", "namespace": "default", "uid": UID},
        "spec": {"podName": pod},
        "status": {
            "phase": phase,
            "targetNode": "worker-2",
            "handover": {"pod": pod},
            "volumes": volumes or [],
            "owner": {"kind": "StatefulSet", "name": "web", "uid": "sts-uid"},
        },
    }


def controllers_pod(name="web-0", owner_uid="sts-uid"):
    """The pod as the StatefulSet controller creates it from its template."""
    return {
        "metadata": {
            "name": name,
            "labels": {"app": "web"},
            "ownerReferences": [{"kind": "StatefulSet", "name": "web", "uid": owner_uid, "controller": True}],
        },
        "spec": {
            "initContainers": [{"name": "init", "image": "localhost/init:1"}],
            "containers": [{"name": "app", "image": "localhost/web:1"}, {"name": "side", "image": "localhost/side:1"}],
            "volumes": [{"name": "data", "emptyDir": {}}],
        },
    }


def restore(mig=None, pod=None):
    """What the mutating webhook statefulset-handover makes of the controller's pod."""
    mig = mig or migration(volumes=[{"name": "data"}])
    return handover.restore_of(pod or controllers_pod(), mig, CONFIG.image)


def test_checkpoint_images_are_found_wherever_a_pod_names_an_image():
    pod = {
        "spec": {
            "containers": [
                {"name": "a", "image": "localhost/podmigration-checkpoint/x-a:latest"},
                {"name": "b", "image": "localhost/b:1"},
            ],
            "initContainers": [{"name": "i", "image": "reg.example/podmigration-checkpoint/y@sha256:00"}],
            "ephemeralContainers": [{"name": "e", "image": "podmigration-checkpoint/z"}],
            "volumes": [
                {"name": "v", "image": {"reference": "localhost/podmigration-checkpoint/v:latest"}},
                {"name": "w", "emptyDir": {}},
            ],
        }
    }
    assert [where for where, _ in guard.checkpoint_images(pod)] == [
        "container a",
        "init container i",
        "ephemeral container e",
        "volume v",
    ]
    assert guard.checkpoint_images({"spec": {"containers": [{"name": "a", "image": "localhost/a:1"}]}}) == []


def test_own_annotations_are_those_of_the_podmigration_group():
    pod = {"metadata": {"annotations": {api.FENCED_BY_ANNOTATION: "m", "podmigration.dev.example/x": "1", "a": "b"}}}
    assert guard.own_annotations(pod) == {api.FENCED_BY_ANNOTATION: "m"}


def test_the_charts_cel_recognises_what_the_guard_does():
    """The policy and the webhook's matchConditions (CEL) and this module must agree on both markers."""
    cel = CHART_CEL.read_text()
    assert f"r.contains('{guard.CHECKPOINT_MARKER}')" in cel and f"k.startsWith('{guard.ANNOTATION_PREFIX}')" in cel


@pytest.mark.parametrize("volumes", [[], [{"name": "data"}]])
def test_the_restore_the_mutating_webhook_made_is_allowed(volumes):
    mig = migration(volumes=volumes)
    assert guard.handover_denial(restore(mig), [mig]) is None


def test_no_migration_handing_the_pod_over_is_denied():
    for mig in (migration("Succeeded"), migration(pod="web-1")):
        assert "no migration is handing it over" in guard.handover_denial(restore(migration()), [mig])


def _tampered(change):
    pod = copy.deepcopy(restore())
    change(pod)
    return pod


@pytest.mark.parametrize(
    "change, why",
    [
        # a StatefulSet of the same name, deleted and recreated by someone else during the move
        (lambda p: p["metadata"]["ownerReferences"][0].update(uid="other-sts"), "is not owned by StatefulSet web"),
        (lambda p: p["metadata"].pop("ownerReferences"), "is not owned by StatefulSet web"),
        (lambda p: p["metadata"]["annotations"].update({api.FENCED_BY_ANNOTATION: "x"}), "carries podmigration.dev/"),
        (
            lambda p: p["metadata"]["annotations"].update({api.MIGRATION_ANNOTATION: "other-mig"}),
            "carries podmigration.dev/",
        ),
        # another migration's checkpoint image, in the template or in an extra container, init container or volume
        (
            lambda p: p["spec"]["containers"][1].update(image=api.checkpoint_image("other-uid", "side")),
            "not the restore",
        ),
        (lambda p: p["spec"]["containers"][1].update(image="localhost/side:1"), "not the restore"),
        (
            lambda p: p["spec"]["initContainers"].append({"name": "peek", "image": api.checkpoint_image(UID, "app")}),
            "not the restore",
        ),
        (
            lambda p: p["spec"]["volumes"].append(
                {"name": "mem", "image": {"reference": api.checkpoint_image(UID, "app")}}
            ),
            "not the restore",
        ),
    ],
)
def test_anything_but_exactly_the_restore_is_denied(change, why):
    assert why in guard.handover_denial(_tampered(change), [migration(volumes=[{"name": "data"}])])


def test_webhook_answers_a_denial_with_403_and_allows_the_restore():
    kube = FakeKube()
    mig = migration()
    kube.migrations[("default", "web-mig")] = mig
    memo = kopf.Memo(deps=Deps(kube=kube, helpers=None, config=CONFIG, events=None))
    admission.handover_guard(body=kopf.Body(restore(mig)), namespace="default", memo=memo)
    with pytest.raises(kopf.AdmissionError) as denied:
        admission.handover_guard(
            body=kopf.Body(restore(mig, controllers_pod(owner_uid="x"))), namespace="default", memo=memo
        )
    assert denied.value.code == 403
