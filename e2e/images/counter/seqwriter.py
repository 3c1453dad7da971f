"""A sequence writer with its state both in memory and in a file: the workload of the volume tests.

Every TICK seconds it counts one more in memory and appends that number, one per line, to SEQ_FILE (opened
O_APPEND, written unbuffered with os.write), which lives in an emptyDir. A moved volume must then hold every number
from 1 to its last exactly once, in order, and the restored process (same `token`) keeps counting from where its
memory was: its `count` is never below the file's last number.

Every TCP connection on SEQ_PORT gets one line of JSON: {"count": N, "token": T, "pid": P, "file": SEQ_FILE}.

SIGTERM leaves a trace: "SIGTERM" appended to the file and exit code SEQ_TERM_EXIT (77), so a source that was
stopped gracefully (its handler ran) is told apart from one killed by SIGKILL (137).
"""

import os
import signal
import threading
import time

from jsonline import serve

TICK = float(os.environ.get("SEQ_TICK", "0.05"))
PORT = int(os.environ.get("SEQ_PORT", "8080"))
PATH = os.environ.get("SEQ_FILE", "/data/seq.txt")
TERM_EXIT = int(os.environ.get("SEQ_TERM_EXIT", "77"))

state = {"count": 0, "token": os.urandom(8).hex()}
# O_WRONLY|O_APPEND is how logs are opened, and the case CRIU records no size for (only the position);
# SEQ_OPEN=rdwr opens O_RDWR|O_APPEND instead, for which CRIU records the file's size at the dump.
ACCESS = os.O_RDWR if os.environ.get("SEQ_OPEN", "wronly") == "rdwr" else os.O_WRONLY
fd = os.open(PATH, ACCESS | os.O_APPEND | os.O_CREAT, 0o644)


def on_sigterm(signum, frame) -> None:
    os.write(fd, b"SIGTERM\n")
    os._exit(TERM_EXIT)


def tick() -> None:
    # Memory first, then the file: at any instant count >= the file's last number, so a checkpoint (memory) taken
    # before the file's dump-time size is recorded never lags behind that file.
    while True:
        time.sleep(TICK)
        state["count"] += 1
        os.write(fd, b"%d\n" % state["count"])


def reply() -> dict:
    return {"count": state["count"], "token": state["token"], "pid": os.getpid(), "file": PATH}


signal.signal(signal.SIGTERM, on_sigterm)
threading.Thread(target=tick, daemon=True).start()
serve(PORT, f"seqwriter token={state['token']} writing {PATH}, listening on :{PORT}", reply)
