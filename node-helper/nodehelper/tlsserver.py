"""The connection side of the helper's HTTPS server: a thread and a TLS handshake per connection, quiet about TCP
checks, loud about real TLS failures, and a bounded number of requests at work."""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .errors import Busy

log = logging.getLogger("nodehelper")

HANDSHAKE_TIMEOUT = 10.0


class TLSThreadingServer(ThreadingHTTPServer):
    """One thread per connection; the TLS handshake runs in that thread so a slow client cannot block accept().
    At most `max_workers` requests work at once (see `worker`)."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], ctx: ssl.SSLContext, handler: type[BaseHTTPRequestHandler], max_workers: int
    ) -> None:
        self.ctx = ctx
        self.max_workers = max_workers
        self._workers = threading.BoundedSemaphore(max_workers)
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """TLS over the accepted connection, unless the peer closes it without a word (a TCP check, a port scan):
        that is no failed handshake worth a warning."""
        request.settimeout(HANDSHAKE_TIMEOUT)
        if not _says_anything(request):
            log.debug("connection from %s closed without sending anything", client_address[0])
            return
        tls = self.ctx.wrap_socket(request, server_side=True)
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            self.shutdown_request(tls)

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


def _says_anything(sock: socket.socket) -> bool:
    """Whether the peer sends a first byte (left unread for TLS) within the handshake timeout."""
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except (ConnectionResetError, TimeoutError):
        return False
