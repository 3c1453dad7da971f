"""What a peer may hold on the helper's port before it is known: the port is on the node's host network, where a
NetworkPolicy rarely guards it, and TLS completes with clients without a certificate (the readiness probe). Caps on
open connections (in all, per peer address, not yet authenticated) are checked at accept(), before a thread or a
handshake is spent; deadlines bound the handshake and an unauthenticated request in total, not per read."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class ConnectionLimits:
    #: Open connections in all: each is a thread, so this bounds the helper's threads and memory.
    total: int = 512
    #: Open connections from one address: one peer cannot take every slot (the operator needs a few at once).
    per_peer: int = 32
    #: Connections without a verified client certificate (yet): handshaking, or a client without a certificate.
    unauthenticated: int = 128
    #: Seconds from accept() to the end of the TLS handshake.
    handshake_seconds: float = 5.0
    #: Seconds a connection without a client certificate has for each request (waiting for it included).
    header_seconds: float = 5.0


def refusal(limits: ConnectionLimits, total: int, from_peer: int, unauthenticated: int) -> str:
    """Why one more connection is refused, given those already open ("" if it is admitted)."""
    if total >= limits.total:
        return f"{total} connections open (PM_MAX_CONNECTIONS)"
    if from_peer >= limits.per_peer:
        return f"{from_peer} connections open from this address (PM_MAX_CONNECTIONS_PER_PEER)"
    if unauthenticated >= limits.unauthenticated:
        return f"{unauthenticated} connections open without a client certificate (PM_MAX_UNAUTHENTICATED)"
    return ""


class Connections:
    """The open connections, counted as `refusal` needs them (thread-safe: each connection has its thread)."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self.total = 0
        self.unauthenticated = 0
        self._peers: Counter[str] = Counter()

    def admit(self, peer: str) -> str:
        """Counts a new (unauthenticated) connection from `peer` and returns "", or returns why it is refused."""
        with self._lock:
            why = refusal(self.limits, self.total, self._peers[peer], self.unauthenticated)
            if not why:
                self.total += 1
                self.unauthenticated += 1
                self._peers[peer] += 1
            return why

    def authenticated(self) -> None:
        """The connection's client certificate was verified: it no longer counts as unauthenticated."""
        with self._lock:
            self.unauthenticated -= 1

    def release(self, peer: str, authenticated: bool) -> None:
        with self._lock:
            self.total -= 1
            self.unauthenticated -= 0 if authenticated else 1
            self._peers[peer] -= 1
            if not self._peers[peer]:
                del self._peers[peer]


def _cut(sock: socket.socket, cut: threading.Event) -> None:
    """Shuts the connection's TCP stream down under whoever reads it (plain socket's shutdown: an SSLSocket's own
    would drop its TLS state under a reading thread); that read then ends."""
    cut.set()
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


@contextlib.contextmanager
def deadline(sock: socket.socket, seconds: float) -> Iterator[threading.Event]:
    """Cuts `sock` if the block has not ended after `seconds` in total: a socket timeout bounds each read only,
    and a peer sending a byte at a time would renew it forever. Yields the event set when it cut."""
    sock.settimeout(seconds)
    cut = threading.Event()
    timer = threading.Timer(seconds, _cut, (sock, cut))
    timer.daemon = True
    timer.start()
    try:
        yield cut
    finally:
        timer.cancel()
