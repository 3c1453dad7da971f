"""Status writes carry the resourceVersion they were decided on: a second writer is never overwritten."""

from types import SimpleNamespace

from pmfakes import start

from podmigration import api
from podmigration.clients.kube import Kube


def _during(helpers, method, action):
    """Run ``action`` once inside the helper call ``method``, as another process would act meanwhile."""
    original = getattr(helpers, method)
    done = []

    def wrapped(*args, **kwargs):
        if not done:
            done.append(True)
            action()
        return original(*args, **kwargs)

    setattr(helpers, method, wrapped)
    return done


def test_a_write_decided_on_a_stale_status_yields_to_the_newer_one(world):
    kube, helpers, _, _, _ = world

    def other_operator_ends_it():
        # A second operator (say, one left running on a partitioned node) rolled the migration back meanwhile.
        kube.patch_migration_status(
            "default", "counter-mig", {"phase": "Failed", "reason": "Timeout", "message": "ended by the other operator"}
        )

    done = _during(helpers, "send", other_operator_ends_it)
    migration, _ = start(world, targetNode="worker-2")
    status = migration["status"]
    assert done and (status["phase"], status["reason"]) == ("Failed", "Timeout"), status
    assert status["message"] == "ended by the other operator"
    # Nothing this runner decided on the old status was written over it: no transfer result, no rollback of its own.
    assert "transferredBytes" not in status and "rollback" not in status
    assert [c[0] for c in helpers.calls].count("send") == 1 and "thaw" not in [c[0] for c in helpers.calls]


def test_a_metadata_change_under_a_write_does_not_redo_the_step(world):
    kube, helpers, _, _, _ = world
    done = _during(
        helpers,
        "checkpoint",
        lambda: kube.patch_migration(
            "default", "counter-mig", {"metadata": {"annotations": {"kopf.zalando.org/touched": "yes"}}}
        ),
    )
    migration, _ = start(world, targetNode="worker-2")
    assert done and migration["status"]["phase"] == "Succeeded", migration["status"]
    assert [c[0] for c in helpers.calls].count("checkpoint") == 2  # two containers, each dumped once


def test_a_cancel_during_a_step_is_seen_at_the_next_boundary(world):
    kube, helpers, _, _, _ = world
    _during(
        helpers,
        "send",
        lambda: kube.patch_migration(
            "default", "counter-mig", {"metadata": {"annotations": {api.CANCEL_ANNOTATION: "true"}}}
        ),
    )
    migration, _ = start(world, targetNode="worker-2")
    status = migration["status"]
    assert (status["phase"], status["reason"]) == ("Cancelled", "Cancelled"), status
    assert helpers.frozen == set() and ("default", "counter") in kube.pods


def test_the_status_patch_carries_the_resource_version():
    sent = []
    status_api = SimpleNamespace(patch=lambda **kw: sent.append(kw) or SimpleNamespace(to_dict=dict))
    kube = Kube.__new__(Kube)
    kube.__dict__["_migrations"] = SimpleNamespace(status=status_api)
    kube.patch_migration_status("default", "m", {"phase": "Preparing"}, "42")
    kube.patch_migration_status("default", "m", {"phase": "Preparing"})
    assert sent[0]["body"] == {"status": {"phase": "Preparing"}, "metadata": {"resourceVersion": "42"}}
    assert sent[1]["body"] == {"status": {"phase": "Preparing"}}
