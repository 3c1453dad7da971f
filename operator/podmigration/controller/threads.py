"""The migrations' own threads, apart from kopf's executor, so that the admission webhooks and the CSR signer never
wait behind a migration.

kopf runs every sync handler, daemons and webhooks alike, in one executor, ``settings.execution.executor``
(kopf/_core/actions/invocation.py, ``invoke``: ``loop.run_in_executor(settings.execution.executor, ...)``), and a
sync daemon holds its thread until it returns (kopf/_core/engines/daemons.py: "the sync functions are called in
thread executors as part of a regular handler invocation"). Migrations last minutes and a queued one waits for as
long as the queue is: sharing that pool, enough of them left no thread for a webhook or the signer. So the daemon is
async (it runs on kopf's event loop) and runs the migration's steps (runner.advance) on this executor; a migration
queued in Pending gives its thread back between two looks for a slot, waiting on the event loop instead.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from kopf import DaemonStopped, DaemonStoppingReason

from . import logcontext
from .context import Deps, Run, only_deleted
from .runner import advance

T = TypeVar("T")


class ThreadStop:
    """kopf's stop flag of an async daemon as the runner's StopFlag: its ``wait`` blocks the migration's thread (the
    async flag's would return an awaitable); ``relay`` wakes that wait when kopf raises the flag."""

    def __init__(self, flag: DaemonStopped) -> None:
        self._flag = flag
        self._raised = threading.Event()

    def __bool__(self) -> bool:
        return bool(self._flag)

    @property
    def reason(self) -> DaemonStoppingReason | None:
        return self._flag.reason

    def wait(self, timeout: float | None = None) -> ThreadStop:
        self._raised.wait(timeout)
        return self

    async def relay(self) -> None:
        await self._flag.wait()
        self._raised.set()


class MigrationThreads:
    """Runs each migration's steps on a thread of its own pool (``operator.maxConcurrentMigrations`` threads)."""

    def __init__(self, deps: Deps, workers: int) -> None:
        self.deps = deps
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="migration")

    async def drive(self, namespace: str, name: str, stopped: DaemonStopped) -> None:
        """The daemon of one PodMigration: until it is terminal, or the operator stops or pauses."""
        stop = ThreadStop(stopped)
        relay = asyncio.create_task(stop.relay())
        run = Run(self.deps, namespace, name, stop)
        try:
            with logcontext.migration(namespace, name):
                while (queued := await self.in_thread(advance, run)) is not None:
                    await stopped.wait(queued)
                    if stopped and not only_deleted(stopped.reason):
                        return  # the operator exits or pauses: the status stays for the next run
                    if stopped:
                        await asyncio.sleep(queued)  # deleted: the next look rolls it back (its flag stays raised)
        finally:
            relay.cancel()

    async def in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on this pool, with the caller's context (the log fields). As kopf's ``invoke`` does for sync
        handlers, a cancellation waits for the thread to end: an orphaned thread would go on acting on the
        migration."""
        call = functools.partial(contextvars.copy_context().run, fn, *args)
        future = asyncio.get_running_loop().run_in_executor(self.executor, call)
        cancelled: asyncio.CancelledError | None = None
        while not future.done():
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError as exc:
                cancelled = exc
        if cancelled is not None:
            raise cancelled
        return future.result()
