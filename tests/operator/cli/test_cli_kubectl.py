"""`kubectl migrate` as kubectl users expect it: -o, -w, Ctrl-C, queued migrations, cancel by pod, any pod name,
durations, --version, --as, help and completion."""

import argparse
import json

import pytest
import yaml
from pmfakes import FakeKube, make_node, make_pod
from test_cli import run, terminal, write_kubeconfig

from podmigration import cli
from podmigration.cli import complete, entry

SUCCEEDED = {
    "phase": "Succeeded",
    "targetPod": "counter-0f1e2",
    "targetNode": "worker-2",
    "durations": {},
    "phaseTransitions": [{"phase": "Succeeded", "time": "2030-01-01T00:00:01Z"}],
}


def with_migration(name="counter-x7k2q", pod="counter", status=None, namespace="default"):
    kube = FakeKube(pods=[make_pod(pod)], nodes=[make_node("worker-1"), make_node("worker-2")])
    kube.create_migration(namespace, {"metadata": {"name": name}, "spec": {"podName": pod, "timeoutSeconds": 10}})
    kube.migrations[(namespace, name)]["status"] = dict(status or {})
    return kube


def becomes(kube, statuses):
    """The migration takes each status in turn, one per poll, then keeps the last."""
    script = list(statuses)

    def advance(k):
        if script:
            for migration in k.migrations.values():
                migration["status"] = dict(script.pop(0))

    kube.on_get_migration.append(advance)


def test_bare_command_prints_help_with_examples(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.parse_args([])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "kubectl migrate status" in out and "drain" in out


@pytest.mark.parametrize(
    "argv", [["pod", "list"], ["--", "list"], ["-n", "demo", "--", "status"], ["pod", "-n", "demo", "drain"]]
)
def test_any_pod_name_can_be_migrated(argv):
    args = cli.parse_args(argv)
    assert args.command == "pod" and args.pod == argv[-1]


def test_a_pod_named_list_migrates():
    kube = FakeKube(pods=[make_pod("list")])
    code, out, err = run(["pod", "list", "-n", "default", "--no-wait"], kube)
    assert code == 0, err
    (((_, name), migration),) = kube.migrations.items()
    assert migration["spec"]["podName"] == "list" and name.startswith("list-")


@pytest.mark.parametrize("text, seconds", [("5m", 300), ("90s", 90), ("1h", 3600), ("1m30s", 90), ("600", 600)])
def test_kubectl_style_durations(text, seconds):
    assert cli.parse_args(["counter", "--timeout", text]).timeout == seconds
    assert cli.parse_args(["drain", "worker-1", "--timeout", text]).timeout == seconds


@pytest.mark.parametrize("text", ["2h", "5", "soon", "-5m"])
def test_durations_out_of_range_or_malformed_are_usage_errors(text, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(["counter", "--timeout", text])
    assert exc.value.code == 2 and "--timeout" in capsys.readouterr().err


def test_output_json_yaml_and_name():
    kube = FakeKube(pods=[make_pod()])
    code, out, err = run(["counter", "-n", "default", "--no-wait", "-o", "json"], kube)
    assert code == 0 and json.loads(out)["spec"]["podName"] == "counter" and "created" in err

    code, out, _ = run(["list", "-n", "default", "-o", "json"], kube)
    listed = json.loads(out)
    assert listed["kind"] == "List" and [m["metadata"]["name"] for m in listed["items"]] == ["counter-x7k2q"]
    code, out, _ = run(["status", "counter-x7k2q", "-n", "default", "-o", "yaml"], kube)
    assert yaml.safe_load(out)["metadata"]["name"] == "counter-x7k2q"
    code, out, _ = run(["list", "-n", "default", "-o", "name"], kube)
    assert out == "podmigration.podmigration.dev/counter-x7k2q\n"


def test_followed_with_output_prints_only_the_final_object_on_stdout():
    kube = FakeKube(pods=[make_pod()])
    becomes(kube, [SUCCEEDED])
    code, out, err = run(["counter", "-n", "default", "-o", "json"], kube)
    assert code == 0 and json.loads(out)["status"]["phase"] == "Succeeded" and "Succeeded" in err


@pytest.mark.parametrize("final, code", [(SUCCEEDED, 0), ({"phase": "Failed", "reason": "X", "message": "m"}, 1)])
def test_status_watch_reattaches_until_the_end(final, code):
    kube = with_migration(status={"phase": "Transferring"})
    becomes(kube, [{"phase": "Transferring"}, {"phase": "Restoring"}, final])
    got, out, err = run(["status", "counter-x7k2q", "-n", "default", "-w"], kube)
    assert got == code, err
    # by the pod's name too
    assert run(["status", "counter", "-n", "default", "-w"], kube)[0] == code


def test_progress_of_every_step_is_shown():
    kube = with_migration(status={"phase": "Checkpointing"})
    becomes(
        kube,
        [
            {"phase": "Checkpointing"},
            {
                "phase": "Checkpointing",
                "progress": {"step": "checkpoint", "item": "app", "bytesDone": 10, "bytesExpected": 0},
            },
            {"phase": "Restoring", "progress": {"step": "image", "item": "app", "bytesDone": 5, "bytesExpected": 10}},
            SUCCEEDED,
        ],
    )
    code, out, _ = run(["status", "counter-x7k2q", "-n", "default", "-w"], kube)
    assert code == 0
    assert "progress: checkpoint app" in out and "progress: image app   50%" in out


def test_a_queued_migration_is_followed_for_as_long_as_it_is_queued():
    queued = {"phase": "Pending", "reason": "Queued", "message": "waiting for a slot on worker-1"}
    kube = with_migration(status=queued)
    becomes(kube, [queued] * 1000 + [{"phase": "Preparing"}, SUCCEEDED])  # 500 s queued, past timeout + grace
    code, out, err = run(["status", "counter-x7k2q", "-n", "default", "-w"], kube)
    assert code == 0, err
    assert "is the podmigration operator running" not in err


def test_ctrl_c_exits_130_quietly_and_the_migration_goes_on():
    kube = FakeKube(pods=[make_pod()])
    term, _ = terminal()

    def interrupt(_):
        raise KeyboardInterrupt

    term.sleep = interrupt
    code = cli.main(["counter", "-n", "default"], kube=kube, term=term)
    assert code == 130
    err = term.err.getvalue()
    assert "the migration goes on; follow it with: kubectl migrate status counter-x7k2q -n default -w" in err
    assert "Traceback" not in err
    (migration,) = kube.migrations.values()
    assert "annotations" not in migration["metadata"]  # not cancelled


def test_cancel_by_pod_name():
    kube = with_migration(status={"phase": "Transferring"})
    kube.create_migration("default", {"metadata": {"name": "counter-old"}, "spec": {"podName": "counter"}})
    kube.migrations[("default", "counter-old")]["status"] = {"phase": "Failed"}
    code, out, err = run(["cancel", "counter", "-n", "default"], kube)
    assert code == 0, err and "counter-x7k2q" in out
    assert kube.migrations[("default", "counter-x7k2q")]["metadata"]["annotations"]
    assert "annotations" not in kube.migrations[("default", "counter-old")]["metadata"]

    kube.create_migration("default", {"metadata": {"name": "counter-2"}, "spec": {"podName": "counter"}})
    code, _, err = run(["cancel", "counter", "-n", "default"], kube)
    assert code == 2 and "several migrations under way" in err


class Versioned(FakeKube):
    def __init__(self, version):
        super().__init__()
        self.version = version

    def list_pods(self, namespace, label_selector):
        assert (namespace, label_selector) == ("podmigration-system", "app.kubernetes.io/name=podmigration-operator")
        return [{"metadata": {"name": "op", "labels": {"app.kubernetes.io/version": self.version}}}]


def test_version_shows_both_and_warns_on_skew(monkeypatch):
    monkeypatch.setattr("podmigration.cli.version.client_version", lambda: "0.1.0")
    code, out, err = run(["--version"], Versioned("0.1.0"))
    assert code == 0 and "Client Version: 0.1.0" in out and "Operator Version: 0.1.0" in out and not err
    code, out, err = run(["--version"], Versioned("0.2.0"))
    assert code == 0 and "WARNING: version difference" in err


def test_as_and_as_group_impersonate(tmp_path, monkeypatch):
    config = write_kubeconfig(tmp_path)
    made = []
    monkeypatch.setattr(entry, "Kube", lambda client: made.append(client.default_headers))
    args = cli.parse_args(["list", "--kubeconfig", str(config), "--as", "alice", "--as-group", "team"])
    cli.connect(args)
    assert made[0]["Impersonate-User"] == "alice" and made[0]["Impersonate-Group"] == "team"
    code, _, err = run(["list", "--kubeconfig", str(config), "--as-group", "team"], None)
    assert code == 2 and "--as-group needs --as" in err


def test_completion_lists_pods_migrations_and_nodes():
    kube = with_migration()
    kube.list_pods = lambda namespace, selector: [make_pod("web-0"), make_pod("worker-app")]
    assert complete.completions([], "w", kube) == ["web-0", "worker-app"]
    assert "list" in complete.completions([], "", kube) and "web-0" in complete.completions([], "", kube)
    assert complete.completions(["pod"], "web", kube) == ["web-0"]
    assert complete.completions(["-n", "default"], "web", kube) == ["web-0"]
    assert complete.completions(["status", "-n", "default"], "", kube) == ["counter-x7k2q"]
    assert complete.completions(["web-0", "--to"], "worker-", kube) == ["worker-1", "worker-2"]
    assert complete.completions(["drain"], "", kube) == ["worker-1", "worker-2"]


def test_completion_entry_point_speaks_cobra(monkeypatch, capsys):
    monkeypatch.setattr(complete, "completions", lambda words, partial: [f"{words}|{partial}"])
    assert complete.main(["status", "co"]) == 0
    assert capsys.readouterr().out == "['status']|co\n:4\n"
    assert isinstance(cli.parse_args(["list"]), argparse.Namespace)
