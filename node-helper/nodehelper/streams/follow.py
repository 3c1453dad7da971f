"""The sha256 of the kubelet's checkpoint archive, computed while CRI-O writes it. CRI-O tars the dump into the
kubelet's checkpoint directory with one sequential copy into a new file, so reading behind the writer sees the
final bytes in order: the digest is ready when the kubelet answers, and taking the archive in (a link) costs no
separate pass over it (~0.8 s for 1 GiB, on the migration's downtime)."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from nodehelper.streams.codec import CHUNK

log = logging.getLogger(__name__)

#: Seconds between two looks for the file, or for more of it, while the writer is slower than the hash.
POLL_SECONDS = 0.01


class GrowingFileHash:
    """Follows the file `find` names once it exists, hashing what is written, in a thread of its own."""

    def __init__(self, find: Callable[[], Path | None], poll: float = POLL_SECONDS) -> None:
        self._find, self._poll = find, poll
        self._digest = hashlib.sha256()
        self._bytes = 0
        self._ident: tuple[int, int] | None = None
        self._failed = False
        self._written = threading.Event()  # the writer is done: read to the end, then stop
        self._stop = threading.Event()  # give up: nobody wants the digest any more
        self._thread = threading.Thread(target=self._run, name="follow-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            path = self._find()
            while path is None:
                if self._stop.is_set() or self._written.is_set():
                    return
                self._stop.wait(self._poll)
                path = self._find()
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                self._ident = (st.st_dev, st.st_ino)
                while not self._stop.is_set():
                    written = self._written.is_set()  # before the read: what was written by then is read now
                    chunk = f.read(CHUNK)
                    if chunk:
                        self._digest.update(chunk)
                        self._bytes += len(chunk)
                    elif written:
                        return
                    else:
                        self._stop.wait(self._poll)
        except OSError as exc:
            self._failed = True
            log.info("archive not hashed while written (%s); it is hashed once moved in", exc)

    def finish(self, path: Path) -> str | None:
        """Once the writer is done: the sha256 of `path` if this followed that very file to its end, else None
        (the caller hashes the file itself then)."""
        self._written.set()
        self._thread.join()
        try:
            st = path.stat()
        except OSError:
            return None
        if self._failed or self._ident != (st.st_dev, st.st_ino) or self._bytes != st.st_size:
            return None
        return self._digest.hexdigest()

    def close(self) -> None:
        """Stops following (idempotent; after finish it only joins an ended thread)."""
        self._stop.set()
        self._thread.join()
