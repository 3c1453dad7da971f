"""Bytes done of the archive streams running now, by archive id, for `GET /v1/progress/<id>`: the operator polls
it while its (blocking) send call runs, so a long transfer shows how far it is."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from . import validation
from .errors import NotFound
from .transfer import Reader


class Progress:
    """One entry per running stream; gone when the stream ends (its outcome is the answer of the call)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, dict[str, Any]] = {}

    @contextlib.contextmanager
    def reading(self, archive_id: str, step: str, expected: int, source: Reader) -> Iterator[Reader]:
        """Yields `source` wrapped so every read counts as done for `archive_id` during the block."""
        entry = {"id": archive_id, "step": step, "bytesDone": 0, "bytesExpected": expected,
                 "started": time.monotonic()}
        with self._lock:
            self._running[archive_id] = entry
        try:
            yield _Counting(source, self, entry)
        finally:
            with self._lock:
                if self._running.get(archive_id) is entry:
                    del self._running[archive_id]

    def add(self, entry: dict[str, Any], count: int) -> None:
        with self._lock:
            entry["bytesDone"] += count

    def get(self, archive_id: str) -> dict[str, Any]:
        archive_id = validation.archive_id(archive_id)
        with self._lock:
            entry = dict(self._running.get(archive_id) or {})
        if not entry:
            raise NotFound(f"no stream of archive {archive_id} is running on this node")
        seconds = time.monotonic() - entry.pop("started")
        entry["seconds"] = round(seconds, 3)
        entry["bytesPerSecond"] = int(entry["bytesDone"] / seconds) if seconds > 0 else 0
        return entry


class _Counting:
    def __init__(self, source: Reader, progress: Progress, entry: dict[str, Any]) -> None:
        self.source, self.progress, self.entry = source, progress, entry

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.progress.add(self.entry, len(data))
        return data
