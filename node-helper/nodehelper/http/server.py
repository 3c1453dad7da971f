"""The helper's HTTPS server: the objects behind the endpoints on a mutual-TLS server (HelperServer), and one
request on its connections (Handler): its route found (routes.py), its caller checked against the route's access,
the endpoint run in a worker slot, errors answered as JSON, one log line."""

from __future__ import annotations

import contextlib
import json
import logging
import ssl
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from nodehelper.errors import BadRequest, HelperError
from nodehelper.http import authz, routes
from nodehelper.http.body import BodyReader, write_chunked
from nodehelper.http.connlimits import ConnectionLimits
from nodehelper.http.tlsserver import DEFAULT_MAX_WORKERS, BoundedHandler, TLSThreadingServer, linger
from nodehelper.services.helper import Helper
from nodehelper.services.nodefacts import NodeFacts
from nodehelper.services.pods import PodApi
from pmcontract.names import common_name

log = logging.getLogger("nodehelper")

IDLE_TIMEOUT = 300.0
MAX_JSON_BYTES = 1 << 20


class HelperServer(TLSThreadingServer):
    """The node-helper's API on a mutual-TLS server: the Helper and PodApi objects behind the routes."""

    def __init__(
        self,
        address: tuple[str, int],
        ctx: ssl.SSLContext,
        helper: Helper,
        pods: PodApi,
        max_workers: int = DEFAULT_MAX_WORKERS,
        criu_config: Path | None = None,
        limits: ConnectionLimits = ConnectionLimits(),
        node_facts: NodeFacts | None = None,
    ) -> None:
        self.helper = helper
        #: What GET /v1/node answers (None: 404, for the tests' servers that have no node).
        self.node_facts = node_facts
        self.pods = pods
        #: The node's runc.conf whose managed block DELETE /v1/criu-options removes (at uninstall).
        self.criu_config = criu_config
        super().__init__(address, ctx, Handler, max_workers, limits)


class Handler(BoundedHandler):
    protocol_version = "HTTP/1.1"
    server: HelperServer
    timeout = IDLE_TIMEOUT
    unread_body = False  # the last answer left part of a request body unread: linger before closing

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Replaced by the one summary line _dispatch writes."""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _dispatch(self, method: str) -> None:
        started = time.monotonic()
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        self.responded = False
        self._body: BodyReader | None = None
        status, error = 500, ""
        quiet = False  # a cheap call that must answer while the workers are busy: its successes log at DEBUG
        try:
            self._body = BodyReader(self.rfile, self.headers)  # type: ignore[arg-type]  # a binary stream
            route, params = routes.resolve(method, url.path)
            quiet = not route.needs_worker
            authz.authorize(self.caller, route.access)
            with self.server.worker() if route.needs_worker else contextlib.nullcontext():
                status = route.endpoint(self, params)
        except HelperError as exc:
            status, error = exc.status, str(exc)
            self._fail(status, error, exc.headers)
        except Exception as exc:  # a bug: answer JSON anyway and keep the traceback in the log
            log.exception("%s %s failed", method, url.path)
            error = f"internal error: {type(exc).__name__}: {exc}"
            self._fail(status, error)
        finally:
            log.log(
                logging.DEBUG if quiet and status == 200 else logging.INFO,
                "%s %s %s -> %d in %.3fs (client %s, %d body bytes)%s",
                self.client_address[0],
                method,
                url.path,
                status,
                time.monotonic() - started,
                self.caller,
                self._body.wire_bytes if self._body else 0,
                f": {error}" if error else "",
            )
        if self._body is None or not self._body.done:
            self.close_connection = True
            self.unread_body = True

    def finish(self) -> None:
        super().finish()
        if self.unread_body:
            linger(self.connection)

    def _fail(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        """Answers {"error": ...}, or, if a streamed answer already began, cuts it so the client sees a failure."""
        if self.responded:
            log.warning("%s failed after the answer started: %s", self.path, message)
            self.close_connection = True
        else:
            self.send_json(status, {"error": message}, headers)

    # --- the exchange (exchange.Exchange) the endpoints see ----------------------------------------------------

    @property
    def caller(self) -> authz.Caller:
        return authz.Caller(common_name(self.request.getpeercert()))

    @property
    def body(self) -> BodyReader:
        assert self._body is not None, "the body is read once the request's framing is known"
        return self._body

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> dict[str, Any]:
        # read(n) stops at the end of a chunk: keep reading until the body ends or is too large.
        parts: list[bytes] = []
        size = 0
        while size <= MAX_JSON_BYTES:
            part = self.body.read(MAX_JSON_BYTES + 1 - size)
            if not part:
                break
            parts.append(part)
            size += len(part)
        if size > MAX_JSON_BYTES:
            raise BadRequest(f"JSON body larger than {MAX_JSON_BYTES} bytes")
        raw = b"".join(parts)
        try:
            body = json.loads(raw or b"{}")
        except ValueError as exc:
            raise BadRequest(f"invalid JSON body: {exc}") from None
        if not isinstance(body, dict):
            raise BadRequest("JSON body must be an object")
        return body

    def send_json(self, status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> int:
        data = json.dumps(payload).encode()
        self.responded = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if status >= 400:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)
        return status

    def send_stream(self, headers: Mapping[str, str], chunks: Iterable[bytes]) -> int:
        self.responded = True
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        write_chunked(self.wfile, chunks)  # type: ignore[arg-type]  # a binary stream
        return 200
