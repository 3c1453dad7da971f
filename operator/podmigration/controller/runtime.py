"""What ends or suspends a migration's step: kopf's stop flag and the runner's three exceptions."""

from __future__ import annotations

from typing import Any, Protocol

from kopf import DaemonStoppingReason


class StopFlag(Protocol):
    """kopf's daemon stop flag (kopf.DaemonStopped): truthy when kopf wants the daemon to exit.

    ``reason`` is a kopf.DaemonStoppingReason (a flag, possibly combined) once it is raised.
    """

    def __bool__(self) -> bool: ...

    @property
    def reason(self) -> DaemonStoppingReason | None: ...

    def wait(self, timeout: float | None = None) -> Any: ...


class Interrupt(Exception):
    """Ends the forward path: rollback follows, then the migration ends in ``outcome``."""

    def __init__(self, outcome: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.outcome, self.reason, self.message = outcome, reason, message


class OperatorStopping(Exception):
    """The operator is exiting: leave the status as it is, a restarted operator resumes."""


class StaleStatus(Exception):
    """Another process wrote the status since this runner read it (HTTP 409 on a resourceVersion-guarded write).

    Not a failure of the step: the runner re-reads the PodMigration and decides again from what is there now,
    rather than overwriting the newer state.
    """


class WaitForSlot(Exception):
    """The migration waits in Pending for a slot: its thread is handed back, and it is looked at again in
    ``seconds`` (controller/threads.py), so queued migrations hold no thread."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"queued; next look in {seconds:g}s")
        self.seconds = seconds
