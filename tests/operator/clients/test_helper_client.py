"""The helper client against a real local HTTPS server with mutual TLS (certificates made by openssl)."""

import http.server
import json
import shutil
import ssl
import subprocess
import threading

import pytest
from pmfakes import make_helper_pod

from podmigration.clients.config import Config
from podmigration.clients.helperclient import HelperClient
from podmigration.domain.helpers import Helper, HelperError, helpers_from_pods

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-subj",
        "/CN=test-ca",
        "-days",
        "1",
        cwd=d,
    )
    # As the operator signs it for worker-1's helper: the node in the CN, no IP or DNS name.
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "tls.key",
        "-out",
        "tls.csr",
        "-subj",
        "/CN=system:podmigration:node-helper:worker-1",
        cwd=d,
    )
    openssl(
        "x509",
        "-req",
        "-in",
        "tls.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "tls.crt",
        "-days",
        "1",
        cwd=d,
    )
    return d


@pytest.fixture
def server(tls_dir, monkeypatch):
    # A CA bundle in the environment must not replace the helpers' own CA.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/bundle.pem")
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self, code, payload):
            out = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, body, dict(self.connection.getpeercert()["subject"][0])["commonName"]))
            if self.path == "/v1/send":
                self._answer(422, {"error": "sha256 mismatch for archive x"})
            else:
                self._answer(200, {"frozen": ["/sys/fs/cgroup/freezer/pod1"]})

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tls_dir / "tls.crt", tls_dir / "tls.key")
    ctx.load_verify_locations(tls_dir / "ca.crt")
    ctx.verify_mode = ssl.CERT_REQUIRED
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield Helper("worker-1", f"https://127.0.0.1:{httpd.server_address[1]}", True), seen
    httpd.shutdown()


def client(tls_dir):
    return HelperClient(Config("pm", 9443, tls_dir, 1, 1))


def test_mutual_tls_trusts_the_ca_and_the_node_not_the_ip(server, tls_dir):
    helper, seen = server
    assert client(tls_dir).freeze(helper, "pod-uid") == {"frozen": ["/sys/fs/cgroup/freezer/pod1"]}
    # The client certificate was sent (the test reuses the helper's pair as the operator's).
    assert seen == [("/v1/freeze", {"podUID": "pod-uid"}, "system:podmigration:node-helper:worker-1")]


def test_another_nodes_helper_at_the_address_is_refused(server, tls_dir):
    helper, seen = server
    calls = client(tls_dir)
    assert calls.thaw(helper, "u")  # the connection is kept: the check runs on every request, not once
    with pytest.raises(
        HelperError,
        match="node-helper on worker-2: POST /v1/thaw: request failed.*"
        "certificate for 'system:podmigration:node-helper:worker-1'",
    ):
        calls.thaw(Helper("worker-2", helper.url, True), "u")
    assert [path for path, _, _ in seen] == ["/v1/thaw"]  # nothing reached the wrong helper


def test_helper_error_message_reaches_the_user(server, tls_dir):
    helper, _ = server
    with pytest.raises(HelperError) as exc:
        client(tls_dir).send(helper, "id", Helper("worker-2", "https://10.0.0.2:9443", True), "zstd", timeout=5)
    assert str(exc.value) == "node-helper on worker-1: POST /v1/send: HTTP 422: sha256 mismatch for archive x"


def test_helper_discovery_uses_host_ip_and_prefers_ready_pods():
    pods = [
        make_helper_pod("worker-1", "10.0.0.1", ready=False),
        make_helper_pod("worker-1", "10.0.0.1"),
        make_helper_pod("worker-2", "fd00::2", ready=False),
    ]
    found = helpers_from_pods(pods, 9443)
    assert found["worker-1"] == Helper("worker-1", "https://10.0.0.1:9443", True)
    assert found["worker-2"] == Helper("worker-2", "https://[fd00::2]:9443", False)
