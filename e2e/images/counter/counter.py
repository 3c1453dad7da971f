"""An in-memory counter served over TCP: the test workload of the e2e suite, of `make demo` and of `make bench`.

Every connection gets one line of JSON: {"count": N, "token": T, "pid": P, "container": C}. `count` grows by one
every TICK seconds and `token` is random per process start; both live only in process memory, so after a
migration the same token with a count at least as high proves the process continued instead of restarting.
COUNTER_BALLAST_MB adds that much memory (half random, half a repeated pattern), for benchmarks; it is written once,
before the port listens, so the first answer means the memory is in place. COUNTER_REWRITE_MBPS > 0 keeps writing
it again at that many MiB per second: a workload whose memory changes all the time.
"""

import os
import socket
import threading
import time

from jsonline import serve

TICK = float(os.environ.get("COUNTER_TICK", "0.1"))
PORT = int(os.environ.get("COUNTER_PORT", "8080"))
NAME = os.environ.get("COUNTER_NAME", socket.gethostname())
BALLAST_MB = int(os.environ.get("COUNTER_BALLAST_MB", "0"))
REWRITE_MBPS = float(os.environ.get("COUNTER_REWRITE_MBPS", "0"))
CHUNK = 1 << 20

state = {"count": 0, "token": os.urandom(8).hex()}


def make_ballast(mb: int) -> tuple[memoryview, list[range]]:
    """`mb` MiB filled 1 MiB at a time (building it never takes twice its size): the first half random, the rest a
    repeated pattern. Returns the memory and the offsets of the chunks of each half."""
    ballast = memoryview(bytearray(mb * CHUNK))
    random_chunks = (mb + 1) // 2
    pattern = (b"podmigration" * (CHUNK // 12 + 1))[:CHUNK]
    for i in range(mb):
        ballast[i * CHUNK : (i + 1) * CHUNK] = os.urandom(CHUNK) if i < random_chunks else pattern
    return ballast, [range(0, random_chunks * CHUNK, CHUNK), range(random_chunks * CHUNK, mb * CHUNK, CHUNK)]


def rewrite(ballast: memoryview, halves: list[range], mbps: float) -> None:
    """Writes the ballast again, 1 MiB at a time, round and round at `mbps` MiB/s: each chunk gets a copy of the
    next chunk of its half, so every page keeps being written and its content keeps moving, while the mix of random
    and repeated bytes (what compression sees) stays the same."""
    moves = [(dst, half[(i + 1) % len(half)]) for half in halves for i, dst in enumerate(half)]
    due = time.monotonic()
    while True:
        for dst, src in moves:
            ballast[dst : dst + CHUNK] = ballast[src : src + CHUNK]
            due += 1 / mbps
            time.sleep(max(0.0, due - time.monotonic()))


def tick() -> None:
    while True:
        time.sleep(TICK)
        state["count"] += 1


def reply() -> dict:
    return {"count": state["count"], "token": state["token"], "pid": os.getpid(), "container": NAME}


ballast, halves = make_ballast(BALLAST_MB)
if REWRITE_MBPS > 0 and BALLAST_MB > 0:
    threading.Thread(target=rewrite, args=(ballast, halves, REWRITE_MBPS), daemon=True).start()
threading.Thread(target=tick, daemon=True).start()
serve(PORT, f"counter {NAME} token={state['token']} listening on :{PORT}", reply)
