"""status.progress: the bytes done and expected of the step streaming now, written every few seconds while a
blocking helper call runs (the helper answers `GET /v1/progress/<archive id>`), never per chunk."""

from __future__ import annotations

import concurrent.futures
import contextvars
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from ..api.types import Obj, Progress
from ..domain.status import format_time

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds between two progress polls (and status writes) of one running call.
INTERVAL_SECONDS = 2.0


def entry(step: str, item: str, done: int, expected: int, per_second: int, at: datetime) -> Progress:
    """One status.progress value (see the CRD)."""
    return {
        "step": step,
        "item": item,
        "bytesDone": int(done),
        "bytesExpected": int(expected),
        "bytesPerSecond": int(per_second),
        "updatedAt": format_time(at),
    }


def watched(
    call: Callable[[], T], poll: Callable[[], Obj], report: Callable[[Obj], None], interval: float = INTERVAL_SECONDS
) -> T:
    """Runs `call` in a thread and returns (or raises) what it does; meanwhile, every `interval` seconds, hands
    what `poll` answers to `report`, in the caller's thread (so status writes stay in the migration's thread).
    A failed poll or report is logged and skipped: progress is shown on a best-effort basis, the call decides.
    The call runs in a copy of the caller's context, so its log lines still name the migration (logcontext)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="watched") as pool:
        future = pool.submit(contextvars.copy_context().run, call)
        while True:
            try:
                return future.result(timeout=interval)
            except concurrent.futures.TimeoutError:
                pass
            try:
                report(poll())
            except Exception as exc:
                log.debug("progress not recorded this time: %s", exc)
