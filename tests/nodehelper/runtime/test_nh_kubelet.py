"""The kubelet client against a fake kubelet over real TLS (server cert from the test CA, IP SAN 127.0.0.1)."""

from __future__ import annotations

import json
import os
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from nodehelper.errors import BadRequest, UpstreamError
from nodehelper.identity import tlsconfig
from nodehelper.runtime.kubelet import Kubelet


class FakeKubelet(BaseHTTPRequestHandler):
    answer: tuple[int, bytes] = (200, b"")
    seen: list[tuple[str, str | None]] = []
    writes: list[Path] = []  # archives the fake kubelet writes while answering

    def do_POST(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        for path in self.writes:
            path.write_bytes(b"process memory")
        status, body = self.answer
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def kubelet(pki: dict[str, Path], tmp_path: Path) -> Iterator[Kubelet]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["node"] / "tls.crt", pki["node"] / "tls.key")
    server = HTTPServer(("127.0.0.1", 0), FakeKubelet)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    FakeKubelet.seen = []
    FakeKubelet.writes = []
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    client_ctx = tlsconfig.kubelet_context(pki["node"] / "ca.crt", insecure=False)
    yield Kubelet("127.0.0.1", server.server_address[1], client_ctx, token, tmp_path / "checkpoints")
    server.shutdown()
    server.server_close()


def test_checkpoint_call_and_path_mapping(kubelet: Kubelet, tmp_path: Path) -> None:
    name = "checkpoint-web_default-app-2025-01-01T00:00:00Z.tar"
    FakeKubelet.answer = (200, json.dumps({"items": [f"/var/lib/kubelet/checkpoints/{name}"]}).encode())
    assert kubelet.checkpoint("default", "web", "app", 20) == tmp_path / "checkpoints" / name
    assert FakeKubelet.seen == [("/checkpoint/default/web/app?timeout=20", "Bearer secret-token")]


@pytest.mark.parametrize(
    "answer, message",
    [
        ((403, b"Forbidden (user=system:serviceaccount:x, verb=create, resource=nodes, subresource(s)=[checkpoint])"),
         "403 Forbidden"),
        ((200, b'{"items": []}'), "without an archive path"),
        ((200, b'{"items": ["/var/lib/kubelet/checkpoints/../../etc/shadow"]}'), "unexpected checkpoint path"),
    ],
)  # fmt: skip
def test_kubelet_failures_are_specific(kubelet: Kubelet, answer: tuple[int, bytes], message: str) -> None:
    FakeKubelet.answer = answer
    with pytest.raises(UpstreamError, match=message):
        kubelet.checkpoint("default", "web", "app", 20)


def test_names_are_validated_before_calling(kubelet: Kubelet) -> None:
    with pytest.raises(BadRequest):
        kubelet.checkpoint("default", "web/../../x", "app", 20)
    assert FakeKubelet.seen == []


@pytest.mark.parametrize("answer", [b'{"items": []}', b"not json", b'{"items": ["/var/lib/kubelet/../../etc/x"]}'])
def test_unusable_answer_deletes_the_archive_the_kubelet_wrote(kubelet: Kubelet, tmp_path: Path, answer: bytes) -> None:
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    old = checkpoints / "checkpoint-web_default-app-2024-12-31T23:59:59Z.tar"
    old.write_bytes(b"older, not from this call")
    os.utime(old, (1, 1))
    written = checkpoints / "checkpoint-web_default-app-2025-01-01T00:00:00+01:00.tar"
    others = [
        checkpoints / "checkpoint-web_default-app-2-2025-01-01T00:00:00Z.tar",  # container app-2
        checkpoints / "checkpoint-web_other-app-2025-01-01T00:00:00Z.tar",  # another namespace
    ]
    FakeKubelet.writes = [written, *others]
    FakeKubelet.answer = (200, answer)
    with pytest.raises(UpstreamError):
        kubelet.checkpoint("default", "web", "app", 20)
    assert not written.exists()
    assert old.exists() and all(p.exists() for p in others)
