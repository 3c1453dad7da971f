"""The kubelet's archive hashed while CRI-O writes it: the digest of exactly the file the kubelet reports, or none."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

from nodehelper.streams.follow import GrowingFileHash

PIECES = [os.urandom(300_000) for _ in range(8)]
DATA = b"".join(PIECES)


def found(path: Path):
    return lambda: path if path.exists() else None


def slow_writer(path: Path, started: threading.Event) -> threading.Thread:
    """Creates the file a little later, then appends in pieces with pauses, like a tar copy under load."""

    def write() -> None:
        time.sleep(0.03)
        with open(path, "wb") as f:
            started.set()
            for piece in PIECES:
                f.write(piece)
                f.flush()
                time.sleep(0.005)

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def test_the_digest_of_a_file_followed_while_written_from_before_it_existed(tmp_path: Path) -> None:
    path, started = tmp_path / "checkpoint.tar", threading.Event()
    follower = GrowingFileHash(found(path), poll=0.001)
    slow_writer(path, started).join()
    assert started.is_set()
    assert follower.finish(path) == hashlib.sha256(DATA).hexdigest()
    follower.close()


def test_no_digest_for_another_file_than_the_one_reported(tmp_path: Path) -> None:
    older, reported = tmp_path / "older.tar", tmp_path / "reported.tar"
    older.write_bytes(DATA)
    reported.write_bytes(DATA)
    follower = GrowingFileHash(found(older), poll=0.001)
    assert follower.finish(reported) is None
    follower.close()


def test_no_digest_when_the_file_never_showed_up_or_cannot_be_read(tmp_path: Path) -> None:
    follower = GrowingFileHash(lambda: None, poll=0.001)
    assert follower.finish(tmp_path / "missing.tar") is None
    follower.close()

    def unreadable() -> Path:
        raise PermissionError("denied")

    follower = GrowingFileHash(unreadable, poll=0.001)
    (tmp_path / "there.tar").write_bytes(DATA)
    assert follower.finish(tmp_path / "there.tar") is None
    follower.close()


def test_close_alone_stops_a_follower_still_waiting(tmp_path: Path) -> None:
    follower = GrowingFileHash(lambda: None, poll=0.001)
    follower.close()  # a kubelet call that failed: nobody asks for the digest
    follower.close()
