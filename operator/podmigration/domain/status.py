"""Pure builders of PodMigration status patches, following Kubernetes conventions.

Durations are derived from ``phaseTransitions`` alone, so they can be recomputed after an
operator restart and checked by hand from ``kubectl get -o yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..api import phases

#: A status patch (what the builders return); what they read is any status, typed or not (``StatusView``).
Status = dict[str, Any]
StatusView = Mapping[str, Any]

PROGRESSING = "Progressing"
SUCCEEDED_CONDITION = "Succeeded"


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_time(at: datetime) -> str:
    """RFC 3339 with microseconds: phases can be shorter than a second."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def phase_times(status: StatusView) -> dict[str, datetime]:
    """First entry time of every phase recorded in ``phaseTransitions``."""
    times: dict[str, datetime] = {}
    for item in status.get("phaseTransitions") or []:
        times.setdefault(item["phase"], parse_time(item["time"]))
    return times


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


def durations(status: StatusView) -> dict[str, float]:
    """Seconds spent per stage, for the stages that happened.

    downtime runs from the start of Checkpointing (the pod leaves Service traffic) to the start of
    Finalizing (the replacement is Running, Ready and confirmed restored).
    """
    t = phase_times(status)
    end = next((t[p] for p in (phases.SUCCEEDED, phases.FAILED, phases.CANCELLED) if p in t), None)
    spans = {
        "checkpoint": (t.get(phases.CHECKPOINTING), t.get(phases.TRANSFERRING)),
        "transfer": (t.get(phases.TRANSFERRING), t.get(phases.RESTORING)),
        "restore": (t.get(phases.RESTORING), t.get(phases.FINALIZING)),
        "downtime": (t.get(phases.CHECKPOINTING), t.get(phases.FINALIZING)),
        "total": (t.get(phases.PENDING), end),
    }
    result = {name: _seconds(start, stop) for name, (start, stop) in spans.items()}
    return {name: value for name, value in result.items() if value is not None}


def set_condition(
    conditions: list[dict[str, Any]],
    type_: str,
    status: str,
    reason: str,
    message: str,
    at: datetime,
    generation: int | None,
) -> list[dict[str, Any]]:
    """Return ``conditions`` with ``type_`` set; lastTransitionTime moves only when status changes."""
    old = next((c for c in conditions if c.get("type") == type_), None)
    changed = old is None or old.get("status") != status
    new = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": format_time(at) if changed or old is None else old["lastTransitionTime"],
    }
    if generation is not None:
        new["observedGeneration"] = generation
    return [c for c in conditions if c.get("type") != type_] + [new]


def conditions_for(
    conditions: list[dict[str, Any]], phase: str, reason: str, message: str, at: datetime, generation: int | None
) -> list[dict[str, Any]]:
    """Progressing is True until a terminal phase; Succeeded is Unknown until then."""
    terminal = phases.is_terminal(phase)
    conditions = set_condition(
        conditions, PROGRESSING, "False" if terminal else "True", reason, message, at, generation
    )
    succeeded = {phases.SUCCEEDED: "True", phases.FAILED: "False", phases.CANCELLED: "False"}.get(phase, "Unknown")
    return set_condition(conditions, SUCCEEDED_CONDITION, succeeded, reason, message, at, generation)


def transition(
    status: StatusView,
    new_phase: str,
    at: datetime,
    generation: int | None,
    *,
    reason: str | None = None,
    message: str | None = None,
) -> Status:
    """Status patch that moves to ``new_phase`` (validated against the state machine).

    Returns the full lists (merge patches replace lists) and the durations known so far.
    """
    phases.check_transition(status.get("phase"), new_phase)
    reason = reason or new_phase
    message = message if message is not None else f"migration is {new_phase.lower()}"
    transitions = list(status.get("phaseTransitions") or [])
    transitions.append({"phase": new_phase, "time": format_time(at)})
    patch: Status = {
        "phase": new_phase,
        "reason": reason,
        "message": message,
        "phaseTransitions": transitions,
        "conditions": conditions_for(list(status.get("conditions") or []), new_phase, reason, message, at, generation),
    }
    if generation is not None:
        patch["observedGeneration"] = generation
    patch["durations"] = durations({"phaseTransitions": transitions})
    return patch


def progress(
    status: StatusView, message: str, at: datetime, generation: int | None, *, reason: str | None = None
) -> Status:
    """Status patch for news inside the current phase (a step done, a retry, a rollback starting)."""
    phase = status.get("phase") or phases.PENDING
    reason = reason or phase
    patch: Status = {
        "message": message,
        "reason": reason,
        "conditions": conditions_for(list(status.get("conditions") or []), phase, reason, message, at, generation),
    }
    if generation is not None:
        patch["observedGeneration"] = generation
    return patch


def merged(status: StatusView, patch: Status) -> Status:
    """The status after a merge patch (top-level keys; ``None`` deletes), for chaining builders."""
    result = dict(status)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result
