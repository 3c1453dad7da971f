"""An in-memory counter served over TCP: the test workload of the e2e suite and of `make demo`.

Every connection gets one line of JSON: {"count": N, "token": T, "pid": P, "container": C}. `count` grows by one
every TICK seconds and `token` is random per process start; both live only in process memory, so after a
migration the same token with a count at least as high proves the process continued instead of restarting.
COUNTER_BALLAST_MB adds that much memory (half random, half a repeated pattern), for benchmarks.
"""

import os
import socket
import threading
import time

from jsonline import serve

TICK = float(os.environ.get("COUNTER_TICK", "0.1"))
PORT = int(os.environ.get("COUNTER_PORT", "8080"))
NAME = os.environ.get("COUNTER_NAME", socket.gethostname())

state = {"count": 0, "token": os.urandom(8).hex()}
_mb = int(os.environ.get("COUNTER_BALLAST_MB", "0"))
ballast = os.urandom(_mb << 19) + b"podmigration" * ((_mb << 19) // 12)


def tick() -> None:
    while True:
        time.sleep(TICK)
        state["count"] += 1


def reply() -> dict:
    return {"count": state["count"], "token": state["token"], "pid": os.getpid(), "container": NAME}


threading.Thread(target=tick, daemon=True).start()
serve(PORT, f"counter {NAME} token={state['token']} listening on :{PORT}", reply)
