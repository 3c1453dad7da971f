"""Bytes done of the archive steps running now, by archive id, for `GET /v1/progress/<id>`: the operator polls it
while its (blocking) call runs (checkpoint, send, image build), so a long step shows how far it is."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from nodehelper import validation
from nodehelper.errors import NotFound
from nodehelper.streams.codec import Reader


class Progress:
    """One entry per running stream; gone when the stream ends (its outcome is the answer of the call)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, dict[str, Any]] = {}

    @contextlib.contextmanager
    def reading(self, archive_id: str, step: str, expected: int, source: Reader) -> Iterator[Reader]:
        """Yields `source` wrapped so every read counts as done for `archive_id` during the block."""
        with self._entry(archive_id, step, expected, None) as entry:
            yield _Counting(source, self, entry)

    @contextlib.contextmanager
    def measuring(self, archive_id: str, step: str, expected: int, measure: Callable[[], int]) -> Iterator[None]:
        """For a step whose bytes another process writes (the kubelet's checkpoint, skopeo's copy): `measure` is
        asked for the bytes done when someone asks, never in between."""
        with self._entry(archive_id, step, expected, measure):
            yield

    @contextlib.contextmanager
    def _entry(
        self, archive_id: str, step: str, expected: int, measure: Callable[[], int] | None
    ) -> Iterator[dict[str, Any]]:
        entry = {
            "id": archive_id,
            "step": step,
            "bytesDone": 0,
            "bytesExpected": expected,
            "started": time.monotonic(),
            "measure": measure,
        }
        with self._lock:
            self._running[archive_id] = entry
        try:
            yield entry
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
            raise NotFound(f"no step on archive {archive_id} is running on this node")
        measure = entry.pop("measure")
        if measure is not None:
            entry["bytesDone"] = measure()
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
