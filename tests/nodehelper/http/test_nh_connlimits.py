"""What an unauthenticated peer can hold on the helper's port is bounded: connections in count (in all, per address,
without a certificate), the handshake and each certificate-less request in time; verified clients are not cut."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nhcalls import call
from nhtestlib import RunningHelper

from nodehelper.http.connlimits import ConnectionLimits, refusal
from nodehelper.identity import tlsconfig

LIMITS = ConnectionLimits(total=40, per_peer=6, unauthenticated=16, handshake_seconds=3, header_seconds=3)
#: How long a test waits for the helper to close a connection: far past every deadline above.
GENEROUS = 20.0


@pytest.fixture
def bounded(tmp_path: Path, pki: dict[str, Path]) -> Iterator[RunningHelper]:
    helper = RunningHelper(tmp_path / "node", pki["node"], limits=LIMITS)
    yield helper
    helper.stop()


def test_a_connection_over_a_cap_is_refused_with_the_cap_named() -> None:
    assert refusal(LIMITS, total=39, from_peer=5, unauthenticated=15) == ""
    assert "PM_MAX_CONNECTIONS)" in refusal(LIMITS, total=40, from_peer=0, unauthenticated=0)
    assert "PM_MAX_CONNECTIONS_PER_PEER" in refusal(LIMITS, total=10, from_peer=6, unauthenticated=0)
    assert "PM_MAX_UNAUTHENTICATED" in refusal(LIMITS, total=16, from_peer=1, unauthenticated=16)


def connect_from(address: str, helper: RunningHelper) -> socket.socket:
    return socket.create_connection(("127.0.0.1", helper.port), timeout=GENEROUS, source_address=(address, 0))


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the helper closes `sock` (EOF or reset) before GENEROUS seconds pass."""
    sock.settimeout(GENEROUS)
    try:
        while sock.recv(4096):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_a_flood_of_idle_and_half_handshaken_connections_is_bounded(
    bounded: RunningHelper, pki: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nodehelper")
    threads_before = threading.active_count()
    idle = [connect_from("127.0.0.2", bounded) for _ in range(30)]
    half = [connect_from("127.0.0.3", bounded) for _ in range(30)]
    try:
        for sock in half:  # a TLS record header announcing a ClientHello that never comes
            sock.sendall(b"\x16\x03\x01\x00\x80")
        # A verified client is still answered; accept() takes connections in order, so every flood connection
        # has been admitted or refused by the time this one is.
        assert call(bounded, "GET", "/healthz", ctx=tlsconfig.client_context(pki["node"]))[0] == 200
        held = bounded.server.connections.total
        # Six per address are held (a thread each, a deadline timer for those in the handshake), with the verified
        # client's own if it is not closed yet; the rest are closed.
        assert held <= 2 * LIMITS.per_peer + 1
        assert threading.active_count() - threads_before <= 2 * held
        assert all(closed_by_peer(sock) for sock in idle + half)
        # The handshakes cut are an INFO line each, not a warning: only the start of the refusals warns.
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert warnings and all("refused" in w for w in warnings), warnings
        assert any("TLS handshake with 127.0.0.3 not done within 3" in r.getMessage() for r in caplog.records)
    finally:
        for sock in idle + half:
            sock.close()


def test_a_slow_header_client_is_dropped(bounded: RunningHelper) -> None:
    """A client without a certificate that sends its request a byte at a time (each read well within any per-read
    timeout) is cut after header_seconds in all."""
    raw = connect_from("127.0.0.1", bounded)
    tls = tlsconfig.probe_context().wrap_socket(raw)
    tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: helper\r\n")
    tls.settimeout(0.2)  # the pause between bytes
    deadline = time.monotonic() + GENEROUS
    closed = False
    try:
        while not closed and time.monotonic() < deadline:
            try:
                tls.sendall(b"X")
                closed = tls.recv(4096) == b""
            except TimeoutError:  # nothing to read: the helper still waits for the headers
                continue
            except OSError:  # reset, broken pipe, TLS EOF: the helper closed it
                closed = True
    finally:
        tls.close()
    assert closed


def test_a_verified_client_may_wait_past_the_header_timeout(bounded: RunningHelper, pki: dict[str, Path]) -> None:
    """The deadlines are for peers not yet known: an operator's connection idle (or a body streaming) for longer
    is still answered."""
    raw = connect_from("127.0.0.1", bounded)
    tls = tlsconfig.client_context(pki["node"]).wrap_socket(raw)
    try:
        time.sleep(LIMITS.header_seconds + 1)
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: helper\r\nConnection: close\r\n\r\n")
        tls.settimeout(GENEROUS)
        assert tls.makefile("rb").readline().split()[1] == b"200"
    finally:
        tls.close()
