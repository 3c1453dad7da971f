"""The connection side of the helper's HTTPS server: a thread and a TLS handshake per connection, as many as
connlimits.py admits, quiet about TCP checks, loud about real TLS failures, and a bounded number of requests at
work."""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from nodehelper.errors import Busy
from nodehelper.http.connlimits import ConnectionLimits, Connections, deadline

log = logging.getLogger("nodehelper")

#: How long a connection's unread request body is read and dropped before it is closed (see `linger`).
LINGER_SECONDS = 2.0

#: Requests at work at once (PM_MAX_WORKERS).
DEFAULT_MAX_WORKERS = 16


class TLSThreadingServer(ThreadingHTTPServer):
    """One thread per admitted connection; the TLS handshake runs in that thread so a slow client cannot block
    accept(). At most `max_workers` requests work at once (see `worker`)."""

    daemon_threads = True
    #: accept() keeps up with a flood (refusals are cheap); a short backlog would drop legitimate SYNs meanwhile.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        ctx: ssl.SSLContext,
        handler: type[BaseHTTPRequestHandler],
        max_workers: int,
        limits: ConnectionLimits,
    ) -> None:
        self.ctx = ctx
        self.max_workers = max_workers
        self._workers = threading.BoundedSemaphore(max_workers)
        self.limits = limits
        self.connections = Connections(limits)
        self._refusing = False
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """A connection over a cap is closed at once, in accept()'s thread: no thread, no handshake. One warning
        when refusals begin, not one per connection of a flood."""
        why = self.connections.admit(client_address[0])
        if why:
            log.log(
                logging.DEBUG if self._refusing else logging.WARNING,
                "connection from %s refused: %s",
                client_address[0],
                why,
            )
        self._refusing = bool(why)
        return not why

    def process_request(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started: nothing else releases the connection's slot
            self.connections.release(client_address[0], authenticated=False)
            raise

    def finish_request(self, request: Any, client_address: Any) -> None:
        """TLS over the accepted connection, unless the peer closes it without a word (a TCP check, a port scan):
        that is no failed handshake worth a warning. The peer has `handshake_seconds` for its first byte and as
        many for the handshake."""
        authenticated = False
        try:
            request.settimeout(self.limits.handshake_seconds)
            if not _says_anything(request):
                log.debug("connection from %s closed without sending anything", client_address[0])
                return
            tls = self.ctx.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
            try:
                with deadline(tls, self.limits.handshake_seconds) as cut:
                    try:
                        tls.do_handshake()
                    except OSError as exc:
                        if not (cut.is_set() or isinstance(exc, TimeoutError)):
                            raise
                        # A peer that holds a connection open without finishing: no failure of ours to warn about.
                        log.info(
                            "TLS handshake with %s not done within %s s: closed",
                            client_address[0],
                            self.limits.handshake_seconds,
                        )
                        return
                if tls.getpeercert():  # CERT_OPTIONAL: a certificate presented is one the CA signed
                    self.connections.authenticated()
                    authenticated = True
                self.RequestHandlerClass(tls, client_address, self)  # type: ignore[arg-type]  # typeshed: Self
            finally:
                self.shutdown_request(tls)
        finally:
            self.connections.release(client_address[0], authenticated)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Failed handshakes (e.g. a client without a certificate) are one warning line, not a traceback."""
        exc = sys.exc_info()[1]
        what = "TLS handshake with" if isinstance(exc, ssl.SSLError) else "connection from"
        log.warning("%s %s failed: %s", what, client_address[0], exc)

    @contextlib.contextmanager
    def worker(self) -> Iterator[None]:
        """A request beyond `max_workers` is told to come back (503, Retry-After) instead of queued: it would wait,
        holding its client's timeout, behind transfers and builds that take minutes."""
        if not self._workers.acquire(blocking=False):
            raise Busy(
                f"node-helper busy: {self.max_workers} requests in progress (PM_MAX_WORKERS); "
                f"retry in {Busy.retry_after_seconds} s"
            )
        try:
            yield
        finally:
            self._workers.release()


class BoundedHandler(BaseHTTPRequestHandler):
    """A connection without a client certificate (the probe's, or anyone's) has `header_seconds` for each request,
    the wait for it included; a verified client waits up to its idle timeout, and its bodies stream as long as
    they take (uploads of minutes)."""

    server: TLSThreadingServer

    def handle_one_request(self) -> None:
        if self.request.getpeercert():
            super().handle_one_request()
            return
        with deadline(self.connection, self.server.limits.header_seconds):
            super().handle_one_request()


def _says_anything(sock: socket.socket) -> bool:
    """Whether the peer sends a first byte (left unread for TLS) within the handshake timeout."""
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except (ConnectionResetError, TimeoutError):
        return False


def linger(sock: socket.socket) -> None:
    """Read and drop what the client still sends (for LINGER_SECONDS at most), before the connection is closed
    after an answer that refused a request body without reading it (413, 507): closing on unread input resets the
    connection, and the reset can destroy the answer in the client's buffers before it is read (the refusal then
    looks like a broken connection, SSLEOFError)."""
    deadline = time.monotonic() + LINGER_SECONDS
    try:
        sock.settimeout(LINGER_SECONDS)
        while time.monotonic() < deadline and sock.recv(1 << 16):
            pass
    except (OSError, ValueError):  # reset, timed out, TLS closed: nothing more to wait for
        pass
