"""`kubectl migrate drain` as safe as `kubectl drain`: emptyDir data, --pod-selector, --grace-period."""

from pmfakes import FakeApiError, make_pod
from test_drain import HOSTPATH, Operator, cluster, drain, managed_cache, table

SCRATCH = [{"name": "scratch", "emptyDir": {}}]


def with_scratch(pod):
    pod["spec"]["volumes"] = HOSTPATH + SCRATCH  # hostPath: cannot migrate; emptyDir: data eviction loses
    return pod


def test_a_pod_with_emptydir_data_that_cannot_migrate_stays_without_delete_emptydir_data():
    kube = cluster(with_scratch(managed_cache()))
    code, out, err = drain(kube)
    assert code == 1 and kube.evicted == []
    _, result = table(out, ["POD", "ACTION", "RESULT"])["default/cache"]
    assert "local data in emptyDir scratch would be lost: use --delete-emptydir-data" in result, out
    assert "not drained" in err


def test_delete_emptydir_data_evicts_it():
    kube = cluster(with_scratch(managed_cache()))
    code, _, err = drain(kube, "--delete-emptydir-data")
    assert code == 0, err
    assert kube.evicted == ["cache"]


def test_grace_period_is_asked_of_the_eviction():
    kube = cluster(managed_cache())
    code, _, err = drain(kube, "--grace-period", "7")
    assert code == 0, err
    assert kube.eviction_graces == {"cache": 7}


def test_pod_selector_drains_only_the_matching_pods():
    kube = cluster(managed_cache(), make_pod("web"))
    Operator(kube)
    code, out, err = drain(kube, "--pod-selector", "app=cache")
    assert code == 0, err
    assert list(table(out, ["POD", "ACTION", "RESULT"])) == ["default/cache"]
    assert kube.evicted == ["cache"] and not kube.migrations and ("default", "web") in kube.pods


def test_dry_run_client_and_server():
    kube = cluster(managed_cache(), make_pod("web"))
    sent = []

    def create(namespace, body, dry_run=False):
        sent.append(("migrate", body["spec"]["podName"], dry_run))
        raise FakeApiError(403, "podmigrations is forbidden for this user")

    def evict(namespace, name, uid, grace=None, dry_run=False):
        sent.append(("evict", name, dry_run))

    kube.create_migration, kube.evict_pod = create, evict
    code, out, _ = drain(kube, "--dry-run")
    assert code == 0 and "dry run (client)" in out and sent == []  # the client alone decides

    code, out, _ = drain(kube, "--dry-run=server")
    assert sorted(sent) == [("evict", "cache", True), ("migrate", "web", True)]
    assert code == 1 and not kube.nodes[0]["spec"]["unschedulable"]
    assert (
        "the API server refuses it: podmigrations is forbidden"
        in table(out, ["POD", "ACTION", "WHY"])["default/web"][1]
    )
