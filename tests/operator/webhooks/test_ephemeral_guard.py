"""The ephemeral-guard webhook: no ephemeral container on a replacement until its migration has ended (it would
start before the volumes gate and run unfrozen beside the restore); an ordinary migrated pod is left alone."""

import kopf
import pytest
from pmfakes import CONFIG, FakeKube

from podmigration import api
from podmigration.controller.context import Deps
from podmigration.domain import guard
from podmigration.webhooks import admission


def migration(phase="Restoring", name="web-mig", target="web-7f3a"):
    return {
        "metadata": {"name": name, "namespace": "default", "uid": "u-1"},
        "status": {"phase": phase, "targetPod": target},
    }


def replacement(name="web-7f3a", migration_name="web-mig"):
    return {
        "metadata": {"name": name, "annotations": {api.MIGRATION_ANNOTATION: migration_name}},
        "spec": {
            "containers": [{"name": "app", "image": "localhost/web:1"}],
            "ephemeralContainers": [{"name": "debugger", "image": "busybox"}],
        },
    }


@pytest.mark.parametrize("phase", ["Restoring", "Finalizing"])
def test_a_replacement_of_an_unfinished_migration_is_denied(phase):
    denial = guard.ephemeral_denial(replacement(), [migration(phase)])
    assert denial and "being restored by PodMigration web-mig" in denial and phase in denial


@pytest.mark.parametrize(
    "pod, migrations",
    [
        (replacement(), [migration("Succeeded")]),  # the migration ended: an ordinary pod again
        (replacement(), [migration("Failed")]),
        (replacement(), [migration("Cancelled")]),
        (replacement(), []),  # its PodMigration was deleted
        (replacement(migration_name="other"), [migration()]),  # the annotation names another migration ...
        (replacement(name="web-other"), [migration()]),  # ... or the migration restores another pod
    ],
)
def test_anything_but_a_replacement_being_restored_is_allowed(pod, migrations):
    assert guard.ephemeral_denial(pod, migrations) is None


def test_webhook_answers_a_denial_with_403():
    kube = FakeKube()
    memo = kopf.Memo(deps=Deps(kube=kube, helpers=None, config=CONFIG, events=None))
    kube.migrations[("default", "web-mig")] = migration("Finalizing")
    with pytest.raises(kopf.AdmissionError) as denied:
        admission.ephemeral_guard(body=kopf.Body(replacement()), namespace="default", memo=memo)
    assert denied.value.code == 403
    kube.migrations[("default", "web-mig")] = migration("Succeeded")
    admission.ephemeral_guard(body=kopf.Body(replacement()), namespace="default", memo=memo)
