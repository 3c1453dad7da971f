"""Following one PodMigration to its end: a line per phase, progress of every step that reports it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TextIO

from ..api import phases
from ..api.types import Obj, status_of
from ..clients.kube import Kube
from ..domain.progressview import ProgressView
from ..domain.status import parse_time
from .output import timings
from .terminal import EXIT_FAILED, EXIT_OK, OPERATOR_GRACE_SECONDS, Terminal

#: status.reason of a Pending migration held back by the operator's limits (see README, Limits).
QUEUED = "Queued"


def _offset(transition: Mapping[str, Any], origin: Mapping[str, Any]) -> float:
    """Seconds between two phaseTransitions entries."""
    return (parse_time(transition["time"]) - parse_time(origin["time"])).total_seconds()


def queued(status: Mapping[str, Any]) -> bool:
    return (status.get("phase") in (None, phases.PENDING)) and status.get("reason") == QUEUED


def follow(kube: Kube, namespace: str, name: str, term: Terminal, out: TextIO | None = None) -> tuple[int, Obj | None]:
    """Prints one line per phase the migration went through (from status.phaseTransitions, so a phase shorter than
    the poll interval is shown too) and its progress until it ends; (exit status, the last object read).

    A migration the operator queues behind its limits is followed for as long as it stays queued: its timeout
    counts from Preparing, so the CLI's patience does too."""
    out = out or term.out
    give_up: float | None = None
    shown = 0
    view = ProgressView(out)
    while True:
        migration = kube.get_migration(namespace, name)
        if migration is None:
            view.end_line()
            print(f"PodMigration {namespace}/{name} was deleted", file=term.err)
            return EXIT_FAILED, None
        status = status_of(migration)
        phase = status.get("phase")
        transitions = status.get("phaseTransitions") or []
        if len(transitions) > shown:
            view.end_line()
        for index in range(shown, len(transitions)):
            latest = index == len(transitions) - 1
            print(
                f"{_offset(transitions[index], transitions[0]):7.1f}s  {transitions[index]['phase']:<13}  "
                f"{status.get('message', '') if latest else ''}".rstrip(),
                file=out,
            )
        shown = len(transitions)
        if phases.is_terminal(phase):
            view.end_line()
            print(timings(status), file=out)
            if phase == phases.SUCCEEDED:
                print(
                    f"pod {namespace}/{migration['spec']['podName']} now runs as {status.get('targetPod')} "
                    f"on {status.get('targetNode')}",
                    file=out,
                )
                return EXIT_OK, migration
            print(f"migration {phase.lower()}: {status.get('reason')}: {status.get('message')}", file=term.err)
            return EXIT_FAILED, migration
        view.update(status.get("progress"))
        timeout = migration["spec"].get("timeoutSeconds", 300)
        if queued(status):
            give_up = None
        elif give_up is None:
            give_up = term.clock() + timeout + OPERATOR_GRACE_SECONDS
        elif term.clock() > give_up:
            view.end_line()
            print(
                f"PodMigration {namespace}/{name} is still {phase or 'not started'} after {timeout}s: "
                "is the podmigration operator running?",
                file=term.err,
            )
            return EXIT_FAILED, migration
        term.sleep(0.5)
