"""Each helper says at start whether its node's CRI-O restores foreign checkpoint images (F2), from the
configuration CRI-O itself answers on its socket."""

from __future__ import annotations

import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from nodehelper.runtime import criocheck

# As CRI-O v1.36 encodes it (GET /config on its socket), cut to what matters here.
CRIO_TOML = """
[crio]
root = "/var/lib/containers/storage"
[crio.runtime]
default_runtime = "runc"
enable_criu_support = {criu}
[crio.image]
signature_policy = "{policy}"
signature_policy_dir = "/etc/crio/policies"
"""


def config(criu: bool = True, policy: str = "", level: str | None = None) -> dict:
    text = CRIO_TOML.format(criu=str(criu).lower(), policy=policy)
    if level:
        text += f'[crio.checkpoint_restore]\ncontainer_level_enabled = "{level}"\n'
    return criocheck.tomllib.loads(text)


def test_restore_without_a_signature_policy_is_reported_as_open_to_any_checkpoint_image():
    [finding] = criocheck.findings(config())
    assert "restores ANY checkpoint image" in finding and "signature_policy_dir" in finding


def test_a_node_wide_signature_policy_is_reported_as_refusing_every_restore():
    [finding] = criocheck.findings(config(policy="/etc/containers/policy.json"))
    assert "refuses every restore" in finding and "migrations to this node fail" in finding


@pytest.mark.parametrize("criu, level", [(False, None), (True, "checkpoint_only"), (True, "none")])
def test_a_node_that_does_not_restore_is_reported(criu, level):
    [finding] = criocheck.findings(config(criu=criu, level=level))
    assert "does not restore checkpoints" in finding


def test_newer_crio_restore_level_counts_as_on():
    assert "ANY checkpoint image" in criocheck.findings(config(criu=False, level="checkpoint_restore"))[0]


class _Unix(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def test_the_configuration_is_read_from_crios_socket(tmp_path: Path, caplog):
    caplog.set_level("INFO", logger="nodehelper.runtime.criocheck")
    body = CRIO_TOML.format(criu="true", policy="").encode()

    class Handler(BaseHTTPRequestHandler):
        def address_string(self) -> str:
            return "unix"

        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/config" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    path = tmp_path / "crio.sock"
    server = _Unix(str(path), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert criocheck.read_config(f"unix://{path}")["crio"]["runtime"]["enable_criu_support"] is True
        criocheck.report(f"unix://{path}")
        assert "restores ANY checkpoint image" in caplog.text
        criocheck.report(f"unix://{tmp_path}/absent.sock")  # said, not raised
        assert "could not read CRI-O's configuration" in caplog.text
    finally:
        server.shutdown()
        server.server_close()
