"""sha256 computed in a thread beside the stream it hashes. hashlib releases the GIL on large buffers, so hashing
one chunk overlaps reading, decompressing and writing the next: a stream's digest then costs no extra wall time
where a second core is free (it was a third of the time of a transfer or of taking in the kubelet's archive)."""

from __future__ import annotations

import hashlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

#: Chunks waiting for the hasher at most (about 1 MiB each): bounds the memory a fast writer can hold.
MAX_PENDING = 8
#: Smaller updates with nothing pending are hashed in place (a tar header costs less than a hand-over).
SMALL = 1 << 16


class BackgroundSha256:
    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._pending: deque[Future[None]] = deque()
        self._pool: ThreadPoolExecutor | None = None

    def update(self, data: bytes) -> None:
        if len(data) < SMALL and not self._pending:
            self._digest.update(data)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
        # One worker runs the updates in order; a copy keeps a caller's reused buffer from changing under it.
        self._pending.append(self._pool.submit(self._digest.update, bytes(data)))
        while len(self._pending) > MAX_PENDING:
            self._pending.popleft().result()

    def hexdigest(self) -> str:
        self.close()
        return self._digest.hexdigest()

    def close(self) -> None:
        """Waits for the queued updates and ends the thread; idempotent (a failed stream calls it too)."""
        while self._pending:
            self._pending.popleft().result()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
