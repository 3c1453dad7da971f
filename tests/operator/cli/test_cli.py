import io

import pytest
from pmfakes import FakeApiError, FakeKube, make_helper_pod, make_node, make_pod

from podmigration import api, cli

NODES = [make_node("worker-1"), make_node("worker-2")]
HELPERS = [make_helper_pod("worker-1", "10.0.0.1"), make_helper_pod("worker-2", "10.0.0.2")]


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, seconds):
        self.t += seconds


def terminal():
    clock = Clock()
    return cli.Terminal(out=io.StringIO(), err=io.StringIO(), sleep=clock.sleep, clock=clock), clock


def scripted(kube, phases_and_status):
    """Each poll of the PodMigration moves it to the next scripted status, like the operator would."""
    script = list(phases_and_status)

    def advance(k):
        if script:
            for migration in k.migrations.values():
                migration["status"].update(script.pop(0))

    kube.on_get_migration.append(advance)


def transitions(*phase_seconds):
    """status.phaseTransitions for (phase, seconds after the start) pairs."""
    return {"phaseTransitions": [{"phase": p, "time": f"2026-01-01T00:00:{t:09.6f}Z"} for p, t in phase_seconds]}


def run(argv, kube):
    term, clock = terminal()
    code = cli.main(argv, kube=kube, term=term)
    return code, term.out.getvalue(), term.err.getvalue()


def test_parse_migrate_and_subcommands():
    args = cli.parse_args(["counter", "--to", "worker-2", "-n", "demo", "--timeout", "60", "--keep-source"])
    assert (args.command, args.pod, args.target, args.namespace, args.timeout, args.keep_source) == (
        "pod",
        "counter",
        "worker-2",
        "demo",
        60,
        True,
    )
    assert cli.parse_args(["list", "-A"]).all_namespaces
    assert cli.parse_args(["cancel", "m1"]).name == "m1"


@pytest.mark.parametrize(
    "argv",
    [
        ["counter", "--timeout", "5"],
        ["counter", "--timeout", "abc"],
        ["counter", "--compression", "gzip"],
        ["status"],
        ["counter", "--bogus"],
    ],
)
def test_bad_usage_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(argv)
    assert exc.value.code == 2


def test_migrate_creates_the_podmigration_and_shows_progress():
    kube = FakeKube(pods=[make_pod()])
    scripted(
        kube,
        [
            {"phase": "Preparing", "message": "validating", **transitions(("Preparing", 0))},
            {"phase": "Preparing", "message": "validating", **transitions(("Preparing", 0))},
            {
                "phase": "Checkpointing",
                "message": "checkpointing on worker-1",
                **transitions(("Preparing", 0), ("Checkpointing", 0.2)),
            },
            # Transferring passed between two polls: it is still shown, from phaseTransitions.
            {
                "phase": "Restoring",
                "message": "restoring",
                **transitions(("Preparing", 0), ("Checkpointing", 0.2), ("Transferring", 0.6), ("Restoring", 0.8)),
            },
            {
                "phase": "Succeeded",
                "message": "done",
                "targetPod": "counter-0f1e2",
                "targetNode": "worker-2",
                **transitions(
                    ("Preparing", 0),
                    ("Checkpointing", 0.2),
                    ("Transferring", 0.6),
                    ("Restoring", 0.8),
                    ("Succeeded", 2.5),
                ),
                "durations": {"checkpoint": 0.4, "transfer": 0.2, "restore": 1.3, "downtime": 1.9, "total": 2.5},
                "checkpointBytes": 262144,
                "transferredBytes": 65536,
                "containers": [{"name": "app", "criu": {"frozenTime": 150000, "pagesWritten": 64}}],
            },
        ],
    )
    code, out, err = run(["counter", "--to", "worker-2", "-n", "default", "--timeout", "60"], kube)
    assert code == 0, err
    (migration,) = kube.migrations.values()
    assert migration["metadata"]["name"].startswith("counter-")
    assert migration["spec"] == {
        "podName": "counter",
        "targetNode": "worker-2",
        "timeoutSeconds": 60,
        "compression": "zstd",
        "keepSource": False,
    }
    lines = out.splitlines()
    assert lines[0] == "podmigration.podmigration.dev/counter-x7k2q created: default/counter -> worker-2"
    phase_lines = [line.split()[:2] for line in lines[1:6]]
    assert phase_lines == [
        ["0.0s", "Preparing"],
        ["0.2s", "Checkpointing"],
        ["0.6s", "Transferring"],
        ["0.8s", "Restoring"],
        ["2.5s", "Succeeded"],
    ]  # one line per phase, none skipped
    assert "downtime     1.90s" in out and "total        2.50s" in out
    assert "checkpoint size 256.0 KiB, sent 64.0 KiB" in out
    assert "container app: frozen 0.150s, 64 pages written" in out
    assert out.rstrip().endswith("pod default/counter now runs as counter-0f1e2 on worker-2")


@pytest.mark.parametrize("phase", ["Failed", "Cancelled"])
def test_failed_or_cancelled_exits_1_with_the_reason(phase):
    kube = FakeKube()
    scripted(kube, [{"phase": phase, "reason": "PodNotFound", "message": "pod default/counter not found"}])
    code, out, err = run(["counter", "-n", "default"], kube)
    assert code == 1
    assert f"migration {phase.lower()}: PodNotFound: pod default/counter not found" in err


def test_no_wait_returns_at_once():
    kube = FakeKube()
    code, out, _ = run(["counter", "-n", "default", "--no-wait", "--keep-source"], kube)
    assert code == 0 and "created" in out
    (migration,) = kube.migrations.values()
    assert migration["spec"]["keepSource"] is True and "targetNode" not in migration["spec"]


def test_gives_up_when_the_operator_never_answers():
    code, _, err = run(["counter", "-n", "default", "--timeout", "10"], FakeKube())
    assert code == 1 and "is still not started after 10s: is the podmigration operator running?" in err


def test_dry_run_ok_creates_nothing():
    kube = FakeKube(pods=[make_pod()], nodes=NODES, helper_pods=HELPERS)
    code, out, _ = run(["counter", "-n", "default", "--dry-run"], kube)
    assert code == 0 and kube.migrations == {}
    assert out.strip() == "pod default/counter can migrate from worker-1 to worker-2"


def test_dry_run_prints_every_blocker_and_exits_1():
    pod = make_pod(volumes=[{"name": "scratch", "hostPath": {"path": "/srv"}}])
    kube = FakeKube(pods=[pod], nodes=NODES, helper_pods=HELPERS[:1])
    code, out, _ = run(["counter", "-n", "default", "--dry-run", "--to", "worker-2"], kube)
    assert code == 1 and kube.migrations == {}
    assert out.splitlines() == [
        "pod default/counter cannot migrate:",
        "  UnsupportedVolume: volume scratch of pod default/counter is a hostPath whose content lives only on "
        "node worker-1; it cannot move with the pod",
        "  TargetNoHelper: target node worker-2 has no podmigration node-helper",
    ]


def test_dry_run_asks_the_api_server_first_and_prints_its_refusal():
    kube = FakeKube(pods=[make_pod()], nodes=NODES, helper_pods=HELPERS)
    sent = []

    def refuse(namespace, body, dry_run=False):
        sent.append((body["spec"]["podName"], dry_run))
        raise FakeApiError(403, "SameNode: pod default/counter already runs on worker-1")

    kube.create_migration = refuse
    code, out, _ = run(["counter", "-n", "default", "--to", "worker-1", "--dry-run"], kube)
    assert (code, sent, kube.migrations) == (1, [("counter", True)], {})
    assert out.splitlines() == [
        "pod default/counter cannot migrate: the API server refuses it:",
        "  SameNode: pod default/counter already runs on worker-1",
    ]


def test_dry_run_client_checks_here_only():
    kube = FakeKube(pods=[make_pod()], nodes=NODES, helper_pods=HELPERS)
    kube.create_migration = lambda *a, **k: pytest.fail("--dry-run=client sent the PodMigration")
    code, out, _ = run(["counter", "-n", "default", "--dry-run=client"], kube)
    assert code == 0 and out.strip() == "pod default/counter can migrate from worker-1 to worker-2"


def kept_apart(pod, **selector):
    term = {"labelSelector": {"matchLabels": selector}, "topologyKey": "kubernetes.io/hostname"}
    pod["spec"]["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    return pod


def test_dry_run_checks_the_rules_about_other_pods_against_every_pod():
    kube = FakeKube(
        pods=[kept_apart(make_pod(), app="db"), make_pod("db", "worker-2")], nodes=NODES, helper_pods=HELPERS
    )
    code, out, _ = run(["counter", "-n", "default", "--to", "worker-2", "--dry-run=client"], kube)
    assert code == 1 and "AffinityNotSatisfied: node worker-2 breaks the pod's required podAntiAffinity" in out
    assert kube.lists == ["pods"]


def test_a_dry_run_without_rights_on_other_namespaces_checks_the_own_and_says_so():
    """A tenant may list pods in its namespace only: the cluster-wide list answers 403, and the dry run checks the
    rules against its own pods instead of failing, and says in one line what it left to the operator."""
    loner = kept_apart(make_pod("loner", "worker-2", namespace="other"), app="counter")
    loner["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]["namespaces"] = [
        "default"
    ]
    kube = FakeKube(pods=[make_pod(), loner], nodes=NODES, helper_pods=HELPERS)
    dry_run = ["counter", "-n", "default", "--to", "worker-2", "--dry-run=client"]
    assert run(dry_run, kube)[0] == 1  # the loner's anti-affinity keeps it off worker-2
    kube.forbidden = {"pods"}
    kube.lists.clear()
    code, out, _ = run(dry_run, kube)
    assert code == 0 and kube.lists == ["pods in default"]
    assert out.splitlines() == [
        "pod default/counter can migrate from worker-1 to worker-2",
        "note: your rights do not let you list every pod (or namespace) of the cluster, only the pods in default: "
        "rules about pods in other namespaces were not checked; the operator checks them in Preparing",
    ]
    # Its own pods still count.
    kube.pods[("default", "db")] = make_pod("db", "worker-2")
    kept_apart(kube.pods[("default", "counter")], app="db")
    code, out, _ = run(dry_run, kube)
    assert code == 1 and "AffinityNotSatisfied" in out and out.splitlines()[-1].startswith("note: ")


def test_admission_rejection_is_bad_usage():
    kube = FakeKube()

    def reject(namespace, body):
        raise FakeApiError(422, "spec.podName: Invalid value: Bad")

    kube.create_migration = reject
    code, _, err = run(["Bad", "-n", "default", "--no-wait"], kube)
    assert code == 2 and err.startswith("error: spec.podName: Invalid value")


def test_list_status_and_cancel():
    kube = FakeKube()
    kube.create_migration("default", {"metadata": {"name": "m1"}, "spec": {"podName": "counter"}})
    kube.migrations[("default", "m1")]["status"] = {
        "phase": "Transferring",
        "sourceNode": "worker-1",
        "targetNode": "worker-2",
    }
    code, out, _ = run(["list", "-n", "default"], kube)
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["NAME", "POD", "SOURCE", "TARGET", "PHASE", "DOWNTIME", "AGE"]
    assert row.split()[:6] == ["m1", "counter", "worker-1", "worker-2", "Transferring", "-"]

    code, out, _ = run(["status", "m1", "-n", "default"], kube)
    assert code == 0 and "Phase:      Transferring" in out

    code, out, _ = run(["cancel", "m1", "-n", "default"], kube)
    assert code == 0 and "cancel requested for PodMigration m1 (phase Transferring)" in out
    assert kube.migrations[("default", "m1")]["metadata"]["annotations"] == {api.CANCEL_ANNOTATION: "true"}


def test_cancel_refused_when_finished_or_past_the_point_of_no_return():
    kube = FakeKube()
    kube.create_migration("default", {"metadata": {"name": "m1"}, "spec": {"podName": "counter"}})
    kube.migrations[("default", "m1")]["status"] = {"phase": "Succeeded"}
    assert run(["cancel", "m1", "-n", "default"], kube)[0] == 1
    kube.migrations[("default", "m1")]["status"] = {"phase": "Finalizing"}
    code, _, err = run(["cancel", "m1", "-n", "default"], kube)
    assert code == 1 and "past the point of no return" in err


def test_status_of_unknown_migration_is_usage_error():
    code, _, err = run(["status", "nope", "-n", "default"], FakeKube())
    assert code == 2 and err == "error: PodMigration default/nope not found, nor a migration of a pod nope\n"


def test_list_all_namespaces_shows_namespace_column():
    kube = FakeKube()
    kube.create_migration("a", {"metadata": {"name": "m1"}, "spec": {"podName": "p"}})
    kube.create_migration("b", {"metadata": {"name": "m2"}, "spec": {"podName": "q"}})
    code, out, _ = run(["list", "-A"], kube)
    lines = out.splitlines()
    assert lines[0].split()[0] == "NAMESPACE" and [line.split()[0] for line in lines[1:]] == ["a", "b"]


def write_kubeconfig(tmp_path):
    """A kubeconfig whose context names namespace team-a (its server is never reached)."""
    config = tmp_path / "config"
    config.write_text("""
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: ctx, context: {cluster: c, user: u, namespace: team-a}}]
current-context: ctx
""")
    return config


def test_namespace_defaults_to_the_kubeconfig_context(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path)))
    kube = FakeKube()
    code, _, _ = run(["counter", "--no-wait"], kube)
    assert code == 0 and list(kube.migrations) == [("team-a", "counter-x7k2q")]


def test_timings_show_each_moved_volume_and_the_warnings():
    from podmigration.cli import timings

    text = timings(
        {
            "durations": {"downtime": 1.5},
            "checkpointBytes": 4096,
            "transferredBytes": 1024,
            "volumes": [
                {
                    "name": "data",
                    "medium": "Memory",
                    "bytes": 3 << 20,
                    "packSeconds": 0.12,
                    "transferSeconds": 0.05,
                    "unpackSeconds": 0.08,
                }
            ],
            "warnings": ["container app: its liveness probe gives up after 6s of failures"],
        }
    )
    assert "volume data (Memory): 3.0 MiB, copied in 0.12s, sent in 0.05s, in place in 0.08s" in text
    assert text.endswith("warning: container app: its liveness probe gives up after 6s of failures")
