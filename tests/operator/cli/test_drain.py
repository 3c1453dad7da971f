import pytest
from pmfakes import FakeApiError, FakeKube, make_helper_pod, make_node, make_pdb, make_pod, owned_by
from test_cli import terminal

from podmigration import api, cli
from podmigration.api import phases

NODES = [make_node("worker-1"), make_node("worker-2")]
HELPERS = [make_helper_pod("worker-1", "10.0.0.1"), make_helper_pod("worker-2", "10.0.0.2")]
HOSTPATH = [{"name": "scratch", "hostPath": {"path": "/srv"}}]
PATH = ("Pending", "Preparing", "Checkpointing", "Transferring", "Restoring", "Finalizing", "Succeeded")


class Operator:
    """Moves a PodMigration one phase on each time the drain polls it, deleting the source at Succeeded; ``fail``:
    pods whose migration fails at Checkpointing. ``most``: the most migrations under way at once."""

    def __init__(self, kube, fail=()):
        self.kube, self.fail, self.most = kube, set(fail), 0
        self._get, self._create = kube.get_migration, kube.create_migration
        kube.get_migration, kube.create_migration = self.get, self.create

    def create(self, namespace, body):
        created = self._create(namespace, body)
        self.most = max(
            self.most, sum(not phases.is_terminal(m["status"].get("phase")) for m in self.kube.migrations.values())
        )
        return created

    def get(self, namespace, name):
        migration = self.kube.migrations.get((namespace, name))
        if migration and not phases.is_terminal(migration["status"].get("phase")):
            self.advance(namespace, migration)
        return self._get(namespace, name)

    def advance(self, namespace, migration):
        status, pod = migration["status"], migration["spec"]["podName"]
        phase = PATH[PATH.index(status["phase"]) + 1] if status.get("phase") else PATH[0]
        if phase == "Checkpointing" and pod in self.fail:
            phase = "Failed"
            status.update(reason="CheckpointFailed", message="criu dump failed")
        status["phase"] = phase
        status.setdefault("phaseTransitions", []).append({"phase": phase, "time": "2030-01-01T00:00:00Z"})
        if phase == "Succeeded":
            status.update(targetPod=f"{pod}-b1b79", targetNode="worker-2")
            self.kube.delete_pod(namespace, pod)


def managed_cache():
    """A pod that cannot migrate (hostPath) and that its ReplicaSet would recreate: evicted without --force."""
    return owned_by(make_pod("cache", volumes=HOSTPATH), "ReplicaSet", "cache-5d8f9")


def cluster(*pods):
    """The pods' controllers exist, selecting them."""
    kube = FakeKube(pods=pods, nodes=NODES, helper_pods=HELPERS)
    for pod in pods:
        for ref in pod["metadata"].get("ownerReferences") or []:
            kube.owners[(ref["kind"], ref["name"])] = {
                "apiVersion": ref["apiVersion"],
                "metadata": {"name": ref["name"], "uid": "owner-uid", "generation": 1},
                "spec": {"selector": {"matchLabels": dict(pod["metadata"]["labels"])}},
            }
    return kube


def drain(kube, *argv):
    term, _ = terminal()
    code = cli.main(["drain", "worker-1", *argv], kube=kube, term=term)
    return code, term.out.getvalue(), term.err.getvalue()


def table(out, header):
    """{pod: (action, result)} from the table that starts with ``header``."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:3] == header)
    rows = [line.split(None, 2) for line in lines[start + 1 :] if not line.startswith(("  ", "node/"))]
    return {row[0]: (row[1], row[2]) for row in rows}


def every_kind():
    mirror = make_pod("etcd-worker-1")
    mirror["metadata"]["annotations"]["kubernetes.io/config.mirror"] = "abc"
    return [
        make_pod("web"),
        managed_cache(),
        make_pod("done", phase="Succeeded"),
        mirror,
        owned_by(make_pod("agent-x1", namespace="kube-system"), "DaemonSet", "agent"),
        make_pod("operator-7f", namespace="podmigration-system"),
        make_pod("elsewhere", node="worker-2"),
    ]


def test_dry_run_prints_the_plan_and_changes_nothing():
    kube = cluster(*every_kind())
    code, out, _ = drain(kube, "--dry-run", "--ignore-daemonsets")
    assert code == 0
    assert kube.migrations == {} and kube.evicted == [] and not kube.nodes[0]["spec"]["unschedulable"]
    plan = table(out, ["POD", "ACTION", "WHY"])
    assert plan == {
        "default/cache": (
            "evict",
            "UnsupportedVolume: volume scratch of pod default/cache is a hostPath whose content "
            "lives only on node worker-1; it cannot move with the pod",
        ),
        "default/done": ("skip", "Succeeded: nothing runs any more"),
        "default/etcd-worker-1": (
            "skip",
            "static pod: its node's kubelet runs it from a manifest, the API object is a mirror",
        ),
        "default/web": ("migrate", "to worker-2"),
        "kube-system/agent-x1": ("skip", "DaemonSet pod (--ignore-daemonsets)"),
        "podmigration-system/operator-7f": ("evict", "the operator's own pod: evicted, never migrated"),
    }


def test_dry_run_exits_1_when_pods_would_stay():
    code, out, _ = drain(cluster(*every_kind()), "--dry-run")
    assert code == 1 and table(out, ["POD", "ACTION", "WHY"])["kube-system/agent-x1"][0] == "block"
    code, out, _ = drain(cluster(make_pod("cache", volumes=HOSTPATH)), "--dry-run", "--no-evict")
    assert code == 1 and table(out, ["POD", "ACTION", "WHY"])["default/cache"][0] == "stay"


def test_the_plan_reads_the_pods_around_the_targets_once_for_all_pods():
    kube = cluster(make_pod("web"), make_pod("api"), make_pod("db", namespace="data"))
    code, out, _ = drain(kube, "--dry-run")
    assert code == 0 and kube.lists == ["pods"] and "note:" not in out


def test_a_plan_without_rights_on_namespaces_checks_each_pod_against_its_namespace_and_says_so():
    """A term selects namespaces by label and the user may not list them: each pod is checked against the pods of
    its own namespace (read once each), and one line says what is left to the operator."""
    term = {"labelSelector": {}, "topologyKey": "kubernetes.io/hostname", "namespaceSelector": {}}
    web = make_pod("web", affinity={"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}})
    kube = cluster(web, make_pod("api"), make_pod("db", namespace="data"))
    kube.forbidden = {"namespaces"}
    code, out, _ = drain(kube, "--dry-run")
    assert code == 0 and kube.lists == ["pods", "pods in data", "pods in default"]
    assert out.splitlines()[0] == (
        "note: your rights do not let you list every pod (or namespace) of the cluster, only the pods in data, "
        "default: rules about pods in other namespaces were not checked; the operator checks them in Preparing"
    )


def test_daemonset_pods_refuse_the_drain_before_anything_changes():
    kube = cluster(*every_kind())
    code, _, err = drain(kube)
    assert code == 1 and "DaemonSet pods kube-system/agent-x1" in err and "--ignore-daemonsets" in err
    assert kube.migrations == {} and kube.evicted == [] and not kube.nodes[0]["spec"]["unschedulable"]


def test_drain_migrates_evicts_and_skips_then_summarises():
    kube = cluster(*every_kind())
    Operator(kube)
    code, out, err = drain(kube, "--ignore-daemonsets")
    assert code == 0, err
    assert kube.nodes[0]["spec"]["unschedulable"] and out.startswith("node/worker-1 cordoned\n")
    assert "  default/web  Transferring" in out.splitlines()
    assert kube.evicted == ["cache", "operator-7f"]  # the operator's own pod once no migration needs it
    summary = table(out, ["POD", "ACTION", "RESULT"])
    assert summary["default/web"] == ("migrated", "web-b1b79 on worker-2")
    assert summary["default/cache"][0] == "evicted" and summary["default/cache"][1].startswith("UnsupportedVolume: ")
    assert summary["default/done"][0] == summary["kube-system/agent-x1"][0] == "skipped"
    assert summary["podmigration-system/operator-7f"][0] == "evicted" and "default/elsewhere" not in summary
    assert out.rstrip().endswith("node/worker-1 drained")


def test_the_podmigration_spec():
    kube = cluster(make_pod("web"))
    Operator(kube)
    assert drain(kube, "--to", "worker-2", "--timeout", "120")[0] == 0
    (migration,) = kube.migrations.values()
    assert migration["metadata"]["name"] == "web-x7k2q"
    assert migration["spec"] == {
        "podName": "web",
        "targetNode": "worker-2",
        "timeoutSeconds": 120,
        "compression": "zstd",
        "keepSource": False,
    }


@pytest.mark.parametrize("parallel", [1, 2, 3])
def test_parallel_bounds_the_migrations_under_way(parallel):
    kube = cluster(*(make_pod(f"web-{i}") for i in range(6)))
    operator = Operator(kube)
    code, out, _ = drain(kube, "--parallel", str(parallel))
    assert code == 0 and operator.most == parallel
    assert [a for a, _ in table(out, ["POD", "ACTION", "RESULT"]).values()] == ["migrated"] * 6


def test_a_disruption_budget_holds_a_migration_back_until_it_allows_one():
    kube = cluster(make_pod("web"))
    kube.budgets = [make_pdb("web-pdb", 0, {"app": "web"})]
    Operator(kube)
    reads = []
    original = kube.list_disruption_budgets

    def budgets(namespace):
        reads.append(namespace)
        if len(reads) == 3:
            kube.budgets[0]["status"]["disruptionsAllowed"] = 1
        return original(namespace)

    kube.list_disruption_budgets = budgets
    code, out, _ = drain(kube)
    assert code == 0 and out.count("  default/web  held back by PodDisruptionBudget web-pdb") == 1
    assert table(out, ["POD", "ACTION", "RESULT"])["default/web"][0] == "migrated"


def test_a_budget_that_never_allows_it_leaves_the_pod_at_the_deadline():
    kube = cluster(make_pod("web"), make_pod("db", labels={"app": "db"}))
    kube.budgets = [make_pdb("web-pdb", 0, {"app": "web"})]
    Operator(kube)
    code, out, err = drain(kube, "--timeout", "10")
    assert code == 1 and "not drained" in err
    summary = table(out, ["POD", "ACTION", "RESULT"])
    assert summary["default/web"] == (
        "failed",
        "not done by the deadline (10s): held back by PodDisruptionBudget web-pdb",
    )
    assert summary["default/db"][0] == "migrated" and [m["spec"]["podName"] for m in kube.migrations.values()] == ["db"]


def test_the_drains_own_migrations_count_against_a_budget():
    kube = cluster(make_pod("web-1", labels={"app": "web"}), make_pod("web-2", labels={"app": "web"}))
    kube.budgets = [make_pdb("web-pdb", 1, {"app": "web"})]
    operator = Operator(kube)
    assert drain(kube, "--parallel", "2")[0] == 0 and operator.most == 1


def test_an_eviction_refused_with_429_is_retried():
    kube = cluster(managed_cache())
    kube.eviction_errors["cache"] = [429, 429, 429]
    code, out, _ = drain(kube)
    assert code == 0 and kube.evicted == ["cache"]
    assert (
        out.count(
            "  default/cache  eviction refused, retrying: Cannot evict pod as it would violate the pod's "
            "disruption budget."
        )
        == 1
    )


def test_an_eviction_error_other_than_429_fails_the_pod():
    kube = cluster(managed_cache())
    kube.eviction_errors["cache"] = [500]
    code, out, _ = drain(kube)
    assert code == 1 and table(out, ["POD", "ACTION", "RESULT"])["default/cache"][1].startswith("eviction failed: ")


def test_an_evicted_pod_that_never_goes_is_not_drained():
    kube = cluster(managed_cache())
    kube.delete_pod = lambda *args, **kwargs: None  # stuck terminating
    code, out, _ = drain(kube, "--timeout", "10")
    assert code == 1
    assert table(out, ["POD", "ACTION", "RESULT"])["default/cache"] == (
        "failed",
        "not done by the deadline (10s): evicted, still terminating",
    )


def test_no_evict_leaves_the_pods_that_cannot_move():
    kube = cluster(make_pod("web"), make_pod("cache", volumes=HOSTPATH))
    Operator(kube)
    code, out, _ = drain(kube, "--no-evict")
    summary = table(out, ["POD", "ACTION", "RESULT"])
    assert code == 1 and kube.evicted == [] and summary["default/web"][0] == "migrated"
    assert summary["default/cache"][0] == "failed"
    assert summary["default/cache"][1].startswith("not evicted (--no-evict): UnsupportedVolume: ")


def test_an_unmanaged_pod_that_cannot_migrate_stays_without_force():
    kube = cluster(
        make_pod("web"), owned_by(make_pod("api"), "ReplicaSet", "api-5d8f9"), make_pod("cache", volumes=HOSTPATH)
    )
    Operator(kube)
    code, out, err = drain(kube)
    assert code == 1 and kube.evicted == [] and "node/worker-1 not drained" in err
    summary = table(out, ["POD", "ACTION", "RESULT"])
    assert summary["default/web"][0] == summary["default/api"][0] == "migrated"
    assert summary["default/cache"][0] == "failed"
    assert summary["default/cache"][1].startswith("UnsupportedVolume: ")
    assert summary["default/cache"][1].endswith("; unmanaged pod: use --force to evict it anyway")


def test_force_evicts_an_unmanaged_pod_that_cannot_migrate():
    kube = cluster(make_pod("web"), make_pod("cache", volumes=HOSTPATH))
    Operator(kube)
    code, out, _ = drain(kube, "--force")
    summary = table(out, ["POD", "ACTION", "RESULT"])
    assert code == 0 and kube.evicted == ["cache"] and summary["default/web"][0] == "migrated"
    assert summary["default/cache"][0] == "evicted" and "--force" not in summary["default/cache"][1]


def test_dry_run_shows_the_unmanaged_decision():
    pods = make_pod("cache", volumes=HOSTPATH), make_pod("web")
    code, out, _ = drain(cluster(*pods), "--dry-run")
    plan = table(out, ["POD", "ACTION", "WHY"])
    assert code == 1 and plan["default/cache"][0] == "stay" and plan["default/web"] == ("migrate", "to worker-2")
    assert plan["default/cache"][1].endswith("unmanaged pod: use --force to evict it anyway")
    code, out, _ = drain(cluster(*pods), "--dry-run", "--force")
    assert code == 0 and table(out, ["POD", "ACTION", "WHY"])["default/cache"][0] == "evict"


def test_a_pod_under_another_migration_is_never_evicted():
    pod = make_pod("web")
    pod["metadata"]["annotations"][api.FENCED_BY_ANNOTATION] = "web-abcde"
    kube = cluster(pod)
    code, out, _ = drain(kube, "--force")
    assert code == 1 and kube.evicted == []
    assert "AlreadyMigrating" in table(out, ["POD", "ACTION", "RESULT"])["default/web"][1]


def test_a_failed_migration_is_reported_with_its_reason():
    kube = cluster(make_pod("web"), make_pod("api"))
    Operator(kube, fail={"web"})
    code, out, _ = drain(kube)
    assert code == 1
    summary = table(out, ["POD", "ACTION", "RESULT"])
    assert summary["default/web"] == ("failed", "PodMigration web-x7k2q failed: CheckpointFailed: criu dump failed")
    assert summary["default/api"][0] == "migrated"


def test_a_podmigration_the_api_refuses_fails_the_pod():
    kube = cluster(make_pod("web"))

    def forbidden(namespace, body):
        raise FakeApiError(403, "podmigrations.podmigration.dev is forbidden")

    kube.create_migration = forbidden
    code, out, _ = drain(kube)
    assert code == 1 and table(out, ["POD", "ACTION", "RESULT"])["default/web"] == (
        "failed",
        "PodMigration not created: podmigrations.podmigration.dev is forbidden",
    )


def test_gives_up_on_migrations_the_operator_never_answers():
    kube = cluster(make_pod("web"))
    code, out, _ = drain(kube, "--timeout", "10")
    assert (
        code == 1
        and "is the podmigration operator running?" in table(out, ["POD", "ACTION", "RESULT"])["default/web"][1]
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--to", "worker-1"], "error: --to worker-1 is the node being drained"),
        (["--to", "worker-9"], "error: node worker-9 not found"),
    ],
)
def test_bad_nodes_are_bad_usage(argv, message):
    kube = cluster(make_pod("web"))
    code, _, err = drain(kube, *argv)
    assert code == 2 and err.strip() == message and not kube.nodes[0]["spec"]["unschedulable"]


def test_unknown_node_is_bad_usage():
    term, _ = terminal()
    assert cli.main(["drain", "worker-9"], kube=cluster(), term=term) == 2


@pytest.mark.parametrize(
    "argv", [["drain"], ["drain", "worker-1", "--parallel", "0"], ["drain", "worker-1", "--timeout", "5"]]
)
def test_bad_arguments_exit_2(argv):
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(argv)
    assert exc.value.code == 2


def test_a_pod_refused_for_a_full_namespace_queue_waits_for_room_and_then_migrates():
    """QueueFull is lifted by time, as a budget is: the drain retries the create until --timeout, never fails it."""
    kube = cluster(make_pod("web"))
    operator = Operator(kube)
    refusals = [1, 1]

    def full_then_room(namespace, body):
        if refusals:
            refusals.pop()
            raise FakeApiError(403, "admission webhook denied the request: QueueFull: namespace default already has 1")
        return operator.create(namespace, body)

    kube.create_migration = full_then_room
    code, out, _ = drain(kube)
    assert code == 0 and table(out, ["POD", "ACTION", "RESULT"])["default/web"][0] == "migrated"
    assert out.count("waiting for room in the queue: admission webhook denied the request: QueueFull") == 1
