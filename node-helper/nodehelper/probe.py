"""Readiness probe (`python3 -m nodehelper.probe`, an exec probe): GET /healthz over TLS, without a client
certificate (the helper's key exists only in its memory; /healthz is the one endpoint that answers without one).
The helper listens only once it holds its signed certificate, so ready means it serves the API. A bare TCP check
would only show that the port is open, and each one made the server log a failed handshake."""

from __future__ import annotations

import http.client
import json
import sys

from nodehelper.config import Config
from nodehelper.identity import tlsconfig
from nodehelper.peers import client
from pmcontract import paths

TIMEOUT = 4.0


def check(config: Config) -> str:
    """Returns the failure, or "" when the helper answered {"ok": true}."""
    host = f"[{config.node_ip}]" if ":" in config.node_ip else config.node_ip
    try:
        conn = client.connect(config.node_ip, config.port, tlsconfig.probe_context(), TIMEOUT)
        try:
            conn.request("GET", paths.HEALTHZ)
            resp = conn.getresponse()
            body = resp.read(1 << 16)
        finally:
            conn.close()
    except (OSError, http.client.HTTPException) as exc:
        return f"GET https://{host}:{config.port}/healthz failed: {exc}"
    try:
        ok = resp.status == 200 and json.loads(body).get("ok") is True
    except (ValueError, AttributeError):
        ok = False
    return "" if ok else f"GET https://{host}:{config.port}/healthz answered {resp.status}: {body[:200]!r}"


def main() -> None:
    try:
        failure = check(Config.from_env())
    except ValueError as exc:
        failure = str(exc)
    if failure:
        print(failure, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
