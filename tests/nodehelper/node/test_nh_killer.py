"""/v1/kill: every process of the pod's containers gets SIGKILL while frozen, conmon never; then thawed and gone."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from nodehelper.errors import HelperError
from nodehelper.node.freezer import Freezer
from nodehelper.node.killer import Killer

UID = "3f2a9c1e-0b7d-4c1a-9e2f-1234567890ab"


def cgroup(root: Path, name: str, pids: list[int]) -> Path:
    path = root / "freezer/kubepods/burstable" / f"pod{UID}" / name
    path.mkdir(parents=True, exist_ok=True)
    (path / "freezer.state").write_text("THAWED\n")
    (path / "cgroup.procs").write_text("".join(f"{pid}\n" for pid in pids))
    return path


class FakeKernel:
    """Records each signal with the freezer states at that moment; a killed pid leaves its cgroup.procs."""

    def __init__(self, cgroups: list[Path], immortal: frozenset[int] = frozenset()) -> None:
        self.cgroups = cgroups
        self.immortal = immortal
        self.sent: list[tuple[int, int, set[str]]] = []

    def __call__(self, pid: int, sig: int) -> None:
        states = {(c / "freezer.state").read_text().strip() for c in self.cgroups if (c / "freezer.state").exists()}
        self.sent.append((pid, sig, states))
        if pid in self.immortal:
            return
        for directory in self.cgroups:
            for procs in directory.rglob("cgroup.procs"):
                procs.write_text("".join(f"{p}\n" for p in map(int, procs.read_text().split()) if p != pid))


def test_kills_every_process_while_frozen_and_spares_conmon(tmp_path: Path) -> None:
    app = cgroup(tmp_path, "crio-aaa", [101, 102])
    nested = app / "inner"  # a container that made its own child cgroup
    nested.mkdir()
    (nested / "cgroup.procs").write_text("103\n")
    side = cgroup(tmp_path, "crio-bbb", [201])
    conmon = cgroup(tmp_path, "crio-conmon-aaa", [50])
    kernel = FakeKernel([app, side])
    killer = Killer(Freezer(tmp_path, timeout=0.5), timeout=0.5, send=kernel)

    assert killer.kill(UID) == 4
    assert sorted(pid for pid, _, _ in kernel.sent) == [101, 102, 103, 201]
    assert all(sig == signal.SIGKILL and states == {"FROZEN"} for _, sig, states in kernel.sent)
    assert (app / "freezer.state").read_text() == "THAWED" and (side / "freezer.state").read_text() == "THAWED"
    assert (conmon / "freezer.state").read_text() == "THAWED\n"  # never frozen, never signalled

    kernel.sent.clear()
    assert killer.kill(UID) == 0  # idempotent: nothing left to kill
    assert kernel.sent == []


def test_a_pod_without_cgroups_here_is_already_gone(tmp_path: Path) -> None:
    kernel = FakeKernel([])
    assert Killer(Freezer(tmp_path), send=kernel).kill(UID) == 0
    assert kernel.sent == []


def test_a_process_that_does_not_die_is_reported_after_the_timeout(tmp_path: Path) -> None:
    app = cgroup(tmp_path, "crio-aaa", [101, 102])
    kernel = FakeKernel([app], immortal=frozenset({102}))
    with pytest.raises(HelperError, match=r"still alive 0.2s after SIGKILL: .*crio-aaa': \[102\]"):
        Killer(Freezer(tmp_path, timeout=0.5), timeout=0.2, send=kernel).kill(UID)
    assert (app / "freezer.state").read_text() == "THAWED"  # thawed anyway, so the pending SIGKILLs are delivered


def test_without_thaw_the_kill_stays_pending_in_the_frozen_pod(tmp_path: Path) -> None:
    app = cgroup(tmp_path, "crio-aaa", [101])
    kernel = FakeKernel([app])
    assert Killer(Freezer(tmp_path, timeout=0.5), timeout=0.5, send=kernel).kill(UID, thaw=False) == 1
    assert kernel.sent[0][1:] == (signal.SIGKILL, {"FROZEN"})
    assert (app / "freezer.state").read_text() == "FROZEN"  # whoever thaws it next lets the SIGKILL land
