"""Downtime as a client sees it: a prober outside the pod opens a new connection to the workload every 10 ms and
checks each answer; the outage is the longest gap between two correct answers around the move.

A new connection is started on schedule even while earlier ones hang (a SYN into a cut or frozen pod is dropped,
and the kernel would retry it only a second later), so the gap is measured to about one interval whatever the
network does in between."""

from __future__ import annotations

import json
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    """One complete JSON line from the workload, stamped (wall clock) when it was read."""

    at: float
    token: str
    count: int


@dataclass(frozen=True)
class Outage:
    """What the client saw of one move: `seconds` from the last correct answer before it to the first one after;
    `wrong` answers, from another process or with state the restore rolled back (see outage()); `state_kept`
    whether the process answering at the end is the one answering at the start."""

    seconds: float
    wrong: int
    state_kept: bool


class Prober(threading.Thread):
    """Asks host:port every `interval` seconds on a fresh TCP connection, each given `timeout` seconds to answer;
    `answers` collects the complete ones in the order they arrived. Starts at once; stop() ends it."""

    def __init__(self, host: str, port: int, interval: float = 0.01, timeout: float = 1.0) -> None:
        super().__init__(daemon=True, name=f"prober-{host}:{port}")
        self.address, self.interval, self.timeout = (host, port), interval, timeout
        self.answers: list[Answer] = []
        self.failures = 0
        self._done = threading.Event()
        self._selector = selectors.DefaultSelector()
        self._pending: dict[socket.socket, tuple[float, bytearray]] = {}  # connection -> (deadline, bytes read)
        self.start()

    def run(self) -> None:
        due = time.monotonic()
        while not self._done.is_set():
            now = time.monotonic()
            if now >= due:
                self._connect(now)
                due = max(due + self.interval, now)
            for key, _ in self._selector.select(timeout=max(0.0, due - time.monotonic())):
                self._read(key.fileobj)  # type: ignore[arg-type]
            now = time.monotonic()
            for conn in [c for c, (deadline, _) in self._pending.items() if deadline < now]:
                self._close(conn, failed=True)
        for conn in list(self._pending):
            self._close(conn, failed=False)
        self._selector.close()

    def _connect(self, now: float) -> None:
        conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        conn.setblocking(False)
        conn.connect_ex(self.address)  # EINPROGRESS; a refusal shows up as readable with an error
        self._pending[conn] = (now + self.timeout, bytearray())
        self._selector.register(conn, selectors.EVENT_READ)

    def _read(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            self._close(conn, failed=True)
            return
        buffer = self._pending[conn][1]
        buffer += data
        if data and b"\n" not in buffer:
            return
        answer = _parse(bytes(buffer))
        if answer:
            self.answers.append(answer)
        self._close(conn, failed=answer is None)

    def _close(self, conn: socket.socket, failed: bool) -> None:
        self._selector.unregister(conn)
        del self._pending[conn]
        conn.close()
        self.failures += failed

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=5)

    def wait_for(self, what: str, accept: Callable[[Answer], bool], timeout: float) -> Answer:
        """Waits until the newest answer is one that `accept` takes, and returns it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.answers and accept(self.answers[-1]):
                return self.answers[-1]
            time.sleep(self.interval)
        raise TimeoutError(
            f"no answer from {self.address[0]}:{self.address[1]} {what} within {timeout:.0f} s "
            f"({len(self.answers)} answers, {self.failures} failed probes)"
        )


def _parse(line: bytes) -> Answer | None:
    try:
        data = json.loads(line)
        return Answer(time.time(), str(data["token"]), int(data["count"]))
    except (ValueError, KeyError, TypeError):
        return None


def outage(answers: list[Answer], start: float, keep_state: bool) -> Outage:
    """The longest gap between consecutive correct answers that ends after `start` (the beginning of the move).

    An answer is correct when no later answer of the same process reports a lower count: answers a source gave
    after its checkpoint, whose state the restore then rolls back, are wrong (the client saw updates that were
    lost), so they never shorten the gap. With `keep_state` only the first process's answers can be correct;
    without (a cold restart, whose state is lost by design) the new process's answers are correct too."""
    first = answers[0]
    lowest_later: dict[str, int] = {}
    correct: list[Answer] = []
    for answer in reversed(answers):
        if answer.count <= lowest_later.get(answer.token, answer.count) and (
            answer.token == first.token or not keep_state
        ):
            correct.append(answer)
        lowest_later[answer.token] = min(answer.count, lowest_later.get(answer.token, answer.count))
    correct.reverse()
    gaps = [b.at - a.at for a, b in zip(correct, correct[1:]) if b.at > start]
    if not gaps:
        raise ValueError("no correct answer after the move started")
    return Outage(max(gaps), len(answers) - len(correct), answers[-1].token == first.token)
