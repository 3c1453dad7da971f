"""The background hasher gives the digest hashlib gives, whatever the sizes and buffers of the updates."""

import hashlib
import os
import threading

from nodehelper.streams.hashing import MAX_PENDING, SMALL, BackgroundSha256


def test_digest_matches_hashlib_for_mixed_update_sizes_and_reused_buffers() -> None:
    pieces = [os.urandom(n) for n in (10, SMALL, 3 * SMALL + 1, 100, 1 << 20, 0, 512)] * 5
    hasher, buffer = BackgroundSha256(), bytearray(1 << 20)
    for piece in pieces:
        buffer[: len(piece)] = piece
        hasher.update(memoryview(buffer)[: len(piece)])  # the caller reuses its buffer right away
        buffer[:] = b"\0" * len(buffer)
    assert hasher.hexdigest() == hashlib.sha256(b"".join(pieces)).hexdigest()


def test_close_ends_the_thread_and_is_idempotent() -> None:
    before = threading.active_count()
    hasher = BackgroundSha256()
    for _ in range(MAX_PENDING * 2):
        hasher.update(b"x" * SMALL)
    hasher.close()
    hasher.close()
    assert threading.active_count() == before
    assert hasher.hexdigest() == hashlib.sha256(b"x" * SMALL * MAX_PENDING * 2).hexdigest()
