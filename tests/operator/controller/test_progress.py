"""status.progress while a transfer streams, and how `kubectl migrate` shows it."""

import io
import threading
from datetime import UTC, datetime

import pytest
from pmfakes import FakeKube, make_pod, start
from test_cli import run, scripted, transitions

from podmigration.controller import progress
from podmigration.domain.progressview import ProgressView


def test_watched_reports_polls_while_the_call_runs_and_returns_its_answer():
    polled, reported, release = [], [], threading.Event()

    def poll():
        polled.append(len(polled))
        if len(polled) == 2:
            raise RuntimeError("helper restarting")  # skipped: progress is best effort
        if len(polled) == 3:
            release.set()
        return {"bytesDone": len(polled)}

    answer = progress.watched(lambda: release.wait(5) and {"bytes": 3}, poll, reported.append, interval=0.01)
    assert answer == {"bytes": 3}
    assert reported[:2] == [{"bytesDone": 1}, {"bytesDone": 3}]


def test_watched_raises_what_the_call_raises():
    with pytest.raises(ValueError, match="refused"):
        progress.watched(lambda: (_ for _ in ()).throw(ValueError("refused")), dict, print, interval=0.01)


def test_each_archive_step_ends_with_all_bytes_done(world, monkeypatch):
    written = []
    kube = world[0]
    patch = kube.patch_migration_status

    def recording(namespace, name, status, resource_version=None):
        if status.get("progress"):
            written.append(status["progress"])
        return patch(namespace, name, status, resource_version)

    monkeypatch.setattr(kube, "patch_migration_status", recording)
    migration, _ = start(world, targetNode="worker-2")
    steps = [(p["step"], p["item"], p["bytesDone"], p["bytesExpected"]) for p in written]
    assert steps == [
        (step, item, 1000, 1000) for step in ("checkpoint", "transfer", "image") for item in ("app", "side")
    ]
    assert written[2]["bytesPerSecond"] == 10000  # the send's bytes over its seconds
    done = migration["status"]["progress"]
    assert done == written[-1] and done["item"] and done["updatedAt"].endswith("Z")


def test_progress_entry():
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert progress.entry("transfer", "app", 5, 10, 2, at) == {
        "step": "transfer",
        "item": "app",
        "bytesDone": 5,
        "bytesExpected": 10,
        "bytesPerSecond": 2,
        "updatedAt": "2026-01-01T00:00:00.000000Z",
    }


class Tty(io.StringIO):
    def isatty(self):
        return True


GIB = 1 << 30


def test_progress_bar_on_a_terminal_is_redrawn_in_place():
    out = Tty()
    view = ProgressView(out)
    view.update(
        {"step": "transfer", "item": "app", "bytesDone": GIB // 4, "bytesExpected": GIB, "bytesPerSecond": 300 << 20}
    )
    view.update({"step": "transfer", "item": "app", "bytesDone": GIB // 4, "bytesExpected": GIB})  # unchanged
    view.update(
        {"step": "transfer", "item": "app", "bytesDone": GIB, "bytesExpected": GIB, "bytesPerSecond": 400 << 20}
    )
    view.end_line()
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n")
    assert "[" + "#" * 7 + "." * 23 + "] transfer app   25% 256.0 MiB / 1.0 GiB  300.0 MiB/s" in text
    assert "[" + "#" * 30 + "] transfer app  100% 1.0 GiB / 1.0 GiB  400.0 MiB/s" in text


def test_progress_without_a_terminal_is_plain_lines():
    out = io.StringIO()
    view = ProgressView(out)
    view.update({"step": "transfer", "item": "app", "bytesDone": 512, "bytesExpected": 1024, "bytesPerSecond": 1})
    view.end_line()
    assert out.getvalue() == "         progress: transfer app   50% 512 B / 1.0 KiB  1 B/s\n"


def test_kubectl_migrate_shows_the_transfer_progress():
    kube = FakeKube(pods=[make_pod()])
    moving = transitions(("Preparing", 0), ("Checkpointing", 0.2), ("Transferring", 0.6))
    part = {"step": "transfer", "item": "counter", "bytesExpected": 1 << 20, "bytesPerSecond": 1 << 19}
    scripted(
        kube,
        [
            {"phase": "Transferring", "message": "sending", **moving, "progress": {**part, "bytesDone": 1 << 19}},
            {"phase": "Transferring", "message": "sending", **moving, "progress": {**part, "bytesDone": 1 << 20}},
            {
                "phase": "Succeeded",
                "message": "done",
                "targetPod": "counter-1",
                "targetNode": "worker-2",
                **transitions(("Preparing", 0), ("Checkpointing", 0.2), ("Transferring", 0.6), ("Succeeded", 2.0)),
            },
        ],
    )
    code, out, _ = run(["counter", "-n", "default", "--to", "worker-2"], kube)
    assert code == 0
    assert "progress: transfer counter   50% 512.0 KiB / 1.0 MiB  512.0 KiB/s" in out
    assert "progress: transfer counter  100% 1.0 MiB / 1.0 MiB  512.0 KiB/s" in out
