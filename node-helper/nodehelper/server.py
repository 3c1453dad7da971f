"""HTTPS API of the node-helper: routing, JSON errors, one log line per request, main()."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import ssl
import sys
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import authz, startup, transfer
from .api import Helper
from .config import DEFAULT_MAX_WORKERS, Config
from .errors import BadRequest, HelperError, MethodNotAllowed, NotFound
from .httpbody import BodyReader, write_chunked
from .identity import CsrIssuer, NodeIdentity
from .podapi import PodApi
from .tlsserver import TLSThreadingServer

log = logging.getLogger("nodehelper")

IDLE_TIMEOUT = 300.0
MAX_JSON_BYTES = 1 << 20


class HelperServer(TLSThreadingServer):
    """The node-helper's API on a mutual-TLS server: the Helper and PodApi objects behind the routes, each route
    allowed to the identities authz.py says."""

    def __init__(
        self,
        address: tuple[str, int],
        ctx: ssl.SSLContext,
        helper: Helper,
        pods: PodApi,
        max_workers: int = DEFAULT_MAX_WORKERS,
    ) -> None:
        self.helper = helper
        self.pods = pods
        # The endpoints that take a JSON object and answer one: POST path -> what does it.
        self.json_posts: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "/v1/checkpoint": helper.checkpoint,
            "/v1/freeze": helper.freeze,
            "/v1/thaw": helper.thaw,
            "/v1/send": helper.send,
            "/v1/images/checkpoint": helper.checkpoint_images.build,
            "/v1/images/ensure": helper.ensure_images,
            "/v1/network/cut": pods.cut_network,
            "/v1/network/restore": pods.restore_network,
            "/v1/kill": pods.kill,
            "/v1/volumes/pack": pods.pack_volume,
            "/v1/volumes/unpack": pods.unpack_volume,
            "/v1/volumes/release": pods.release_volume,
            "/v1/grants": helper.grants.add,
        }
        super().__init__(address, ctx, Handler, max_workers)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HelperServer
    timeout = IDLE_TIMEOUT

    # Everything else (server.json_posts are the JSON POST endpoints): method, path, handler _<name>.
    routes: list[tuple[str, re.Pattern[str], str]] = [
        ("GET", re.compile(r"/healthz"), "healthz"),
        ("PUT", re.compile(r"/v1/archives/(?P<id>[^/]+)"), "put_archive"),
        ("GET", re.compile(r"/v1/images/export"), "image_export"),
        ("GET", re.compile(r"/v1/restored"), "restored"),
        ("GET", re.compile(r"/v1/pods/(?P<uid>[^/]+)/memory"), "pod_memory"),
        ("GET", re.compile(r"/v1/progress/(?P<id>[^/]+)"), "progress"),
        ("DELETE", re.compile(r"/v1/migrations/(?P<uid>[^/]+)"), "delete_migration"),
    ]

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

    # --- dispatch -------------------------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        started = time.monotonic()
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        self.responded = False
        self.body: BodyReader | None = None
        status, error = 500, ""
        # The readiness probe's and the progress polls' requests are cheap and must answer while the workers are busy
        # (with the very streams whose progress is asked).
        probe = method == "GET" and (url.path == "/healthz" or url.path.startswith("/v1/progress/"))
        try:
            self.body = BodyReader(self.rfile, self.headers)
            action, params = self._route(method, url.path)
            authz.authorize(self.caller, action.__name__.lstrip("_"))
            with contextlib.nullcontext() if probe else self.server.worker():
                status = action(**params)
        except HelperError as exc:
            status, error = exc.status, str(exc)
            self._fail(status, error, exc.headers)
        except Exception as exc:  # a bug: answer JSON anyway and keep the traceback in the log
            log.exception("%s %s failed", method, url.path)
            error = f"internal error: {type(exc).__name__}: {exc}"
            self._fail(status, error)
        finally:
            log.log(
                logging.DEBUG if probe and status == 200 else logging.INFO,
                "%s %s %s -> %d in %.3fs (client %s, %d body bytes)%s",
                self.client_address[0],
                method,
                url.path,
                status,
                time.monotonic() - started,
                self.caller,
                self.body.wire_bytes if self.body else 0,
                f": {error}" if error else "",
            )
        if self.body is None or not self.body.done:
            self.close_connection = True

    def _fail(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        """Answers {"error": ...}, or, if a streamed answer already began, cuts it so the client sees a failure."""
        if self.responded:
            log.warning("%s failed after the answer started: %s", self.path, message)
            self.close_connection = True
        else:
            self._send_json(status, {"error": message}, headers)

    def _route(self, method: str, path: str) -> tuple[Callable[..., int], dict[str, str]]:
        if path in self.server.json_posts:
            if method != "POST":
                raise MethodNotAllowed(f"{method} not allowed on {path}")
            return self._json_post, {"path": path}
        allowed = False
        for route_method, pattern, name in self.routes:
            match = pattern.fullmatch(path)
            if match:
                allowed = True
                if route_method == method:
                    return getattr(self, f"_{name}"), {k: unquote(v) for k, v in match.groupdict().items()}
        if allowed:
            raise MethodNotAllowed(f"{method} not allowed on {path}")
        raise NotFound(f"no such endpoint: {method} {path}")

    @property
    def caller(self) -> authz.Caller:
        return authz.Caller(authz.common_name(self.request.getpeercert()))

    def _json_body(self) -> dict[str, Any]:
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

    def _param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def _send_json(self, status: int, payload: dict[str, Any], headers: Mapping[str, str] | None = None) -> int:
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

    # --- endpoints ------------------------------------------------------------------------------------------

    def _json_post(self, path: str) -> int:
        return self._send_json(200, self.server.json_posts[path](self._json_body()))

    def _healthz(self) -> int:
        return self._send_json(200, self.server.helper.health())

    def _put_archive(self, id: str) -> int:
        answer = self.server.helper.receive(
            id,
            self.body,
            peer=self.caller.node or "",
            content_encoding=(self.headers.get("Content-Encoding") or "identity").strip().lower(),
            sha256=self.headers.get("X-Content-Sha256"),
            decoded_length=self.headers.get(transfer.DECODED_LENGTH_HEADER),
            wire_length=self.body.length,
        )
        return self._send_json(200, answer)

    def _image_export(self) -> int:
        ref = self._param("image")
        if not ref:
            raise BadRequest("query parameter image is required")
        with self.server.helper.exported_image(ref, self.caller.node or "") as (archive, digest), open(archive, "rb") as f:
            self.responded = True
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Encoding", "zstd")
            self.send_header("X-Content-Sha256", digest)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            write_chunked(self.wfile, transfer.chunks(transfer.encoder(f, "zstd")))
        return 200

    def _restored(self) -> int:
        return self._send_json(200, self.server.helper.restored(self._param("namespace"), self._param("pod")))

    def _pod_memory(self, uid: str) -> int:
        return self._send_json(200, self.server.pods.memory(uid))

    def _progress(self, id: str) -> int:
        return self._send_json(200, self.server.helper.progress.get(id))

    def _delete_migration(self, uid: str) -> int:
        return self._send_json(200, self.server.helper.delete_migration(uid))


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("PM_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = Config.from_env()
        startup.configure_criu(config)
        identity = NodeIdentity(
            CsrIssuer(config.node_name, config.signer_name, config.cert_validity_seconds, config.csr_timeout_seconds),
            config.identity_dir,
        )
        identity.renew()
        assert identity.server_context and identity.client_context
        helper, pods = startup.build_apis(config, identity.client_context)
        server = HelperServer(
            (config.node_ip, config.port), identity.server_context, helper, pods, max_workers=config.max_workers
        )
    except Exception as exc:  # no identity, bad settings: say why and let the kubelet restart us
        log.error("node-helper cannot start: %s", exc)
        sys.exit(2)
    identity.on_renew(lambda new: startup.use_identity(new, server, helper))
    stop = threading.Event()
    threading.Thread(target=identity.keep_renewed, args=(stop,), name="renewal", daemon=True).start()
    if config.kubelet_insecure_tls:
        log.warning("KUBELET_INSECURE_TLS is set: the kubelet's certificate is not verified")
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    log.info("node-helper for node %s listening on https://%s:%d", config.node_name, config.node_ip, config.port)
    try:
        server.serve_forever()
    finally:
        stop.set()
        server.server_close()
        log.info("node-helper stopped")


if __name__ == "__main__":
    main()
