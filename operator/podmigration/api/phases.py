"""The migration phase state machine: which phase may follow which, and what is final."""

from __future__ import annotations

from typing import TypeGuard

PENDING = "Pending"
PREPARING = "Preparing"
CHECKPOINTING = "Checkpointing"
TRANSFERRING = "Transferring"
RESTORING = "Restoring"
FINALIZING = "Finalizing"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
CANCELLED = "Cancelled"

#: The forward path, in order.
FORWARD: tuple[str, ...] = (PENDING, PREPARING, CHECKPOINTING, TRANSFERRING, RESTORING, FINALIZING, SUCCEEDED)
TERMINAL: frozenset[str] = frozenset({SUCCEEDED, FAILED, CANCELLED})
ALL: tuple[str, ...] = FORWARD + (FAILED, CANCELLED)

#: From Finalizing on, the replacement is verified running: the migration only goes forward.
POINT_OF_NO_RETURN = FINALIZING


class InvalidTransition(ValueError):
    """A phase change the state machine does not allow (a bug or a hand-edited status)."""


def is_terminal(phase: str | None) -> TypeGuard[str]:
    return phase in TERMINAL


def can_roll_back(phase: str | None) -> bool:
    """Whether a failure, timeout or cancel in this phase rolls back to the source.

    Before Finalizing the source pod is intact (frozen at worst), so rolling back is safe; after
    it the replacement is serving and the source may already be deleted.
    """
    phase = phase or PENDING
    return phase in FORWARD and FORWARD.index(phase) < FORWARD.index(POINT_OF_NO_RETURN)


def allowed_next(phase: str | None) -> frozenset[str]:
    """Phases reachable in one step from ``phase`` (``None`` is a new object: Pending)."""
    phase = phase or PENDING
    if phase not in ALL:
        raise InvalidTransition(f"unknown phase {phase!r}")
    if phase in TERMINAL:
        return frozenset()
    allowed = {FORWARD[FORWARD.index(phase) + 1]}
    if can_roll_back(phase):
        allowed |= {FAILED, CANCELLED}
    return frozenset(allowed)


def check_transition(current: str | None, new: str) -> None:
    if new not in allowed_next(current):
        raise InvalidTransition(f"phase {current or PENDING!r} cannot change to {new!r}")
