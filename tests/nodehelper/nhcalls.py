"""Calls to a running helper as the operator makes them, and a kubelet stand-in that writes archives as CRI-O does."""

from __future__ import annotations

import http.client
import json
import ssl
from pathlib import Path
from typing import Any

from nhtestlib import DUMP, FILES_IMG, RunningHelper, build_archive, field_bytes, stats_image

from nodehelper.runtime.kubelet import Kubelet
from nodehelper.services.progress import Progress


def call(
    helper: RunningHelper,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    ctx: ssl.SSLContext | None = None,
) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPSConnection("127.0.0.1", helper.port, context=ctx, timeout=10)
    try:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        conn.request(method, path, body=data, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


class FakeKubelet:
    """Writes an archive as CRI-O does for the kubelet; `progress`, when set, is read right after the write, as
    an operator's poll during the call would."""

    _archives_of = Kubelet._archives_of
    written_bytes = Kubelet.written_bytes
    writing = Kubelet.writing

    def __init__(self, checkpoint_dir: Path, files_img: bytes | None = FILES_IMG) -> None:
        self.checkpoint_dir = checkpoint_dir
        self.files_img = files_img
        self.calls: list[tuple[str, str, str, int]] = []
        self.progress: tuple[Progress, str] | None = None
        self.seen: list[dict[str, Any]] = []

    def checkpoint(self, namespace: str, pod: str, container: str, timeout_seconds: int) -> Path:
        self.calls.append((namespace, pod, container, timeout_seconds))
        path = self.checkpoint_dir / f"checkpoint-{pod}_{namespace}-{container}-2025-01-01T00:00:00Z.tar"
        build_archive(path, stats_image(field_bytes(1, DUMP)), files_img=self.files_img)
        if self.progress:
            self.seen.append(self.progress[0].get(self.progress[1]))
        return path
