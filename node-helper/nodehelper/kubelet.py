"""Checkpoints through the local kubelet's API (POST /checkpoint/{ns}/{pod}/{container})."""

from __future__ import annotations

import http.client
import json
import ssl
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from . import validation
from .errors import UpstreamError

_EXTRA_SECONDS = 30


class Kubelet:
    def __init__(self, host: str, port: int, ctx: ssl.SSLContext, token_file: Path, checkpoint_dir: Path) -> None:
        self.host = host
        self.port = port
        self.ctx = ctx
        self.token_file = token_file
        self.checkpoint_dir = checkpoint_dir

    def checkpoint(self, namespace: str, pod: str, container: str, timeout_seconds: int) -> Path:
        """Returns the archive's path as mounted in this container; the kubelet reports its own path."""
        names = (validation.namespace(namespace), validation.pod_name(pod), validation.container_name(container))
        path = "/checkpoint/{}/{}/{}?timeout={}".format(*map(quote, names), timeout_seconds)
        # Projected service account tokens rotate: read the file on every call.
        token = self.token_file.read_text().strip()
        conn = http.client.HTTPSConnection(
            self.host, self.port, context=self.ctx, timeout=timeout_seconds + _EXTRA_SECONDS
        )
        who = f"kubelet https://{self.host}:{self.port}"
        try:
            conn.request("POST", path, headers={"Authorization": f"Bearer {token}", "Content-Length": "0"})
            resp = conn.getresponse()
            body = resp.read(1 << 20)
        except (OSError, http.client.HTTPException) as exc:
            raise UpstreamError(f"checkpoint of {namespace}/{pod}/{container} through {who} failed: {exc}") from None
        finally:
            conn.close()
        if resp.status != 200:
            detail = body[:500].decode("utf-8", "replace").strip()
            raise UpstreamError(f"{who} refused checkpoint of {namespace}/{pod}/{container}: {resp.status} {detail}")
        try:
            items = json.loads(body)["items"]
            reported = str(items[0])
        except (ValueError, KeyError, IndexError, TypeError):
            raise UpstreamError(f"{who} answered the checkpoint without an archive path: {body[:300]!r}") from None
        return self.local_path(reported)

    def local_path(self, reported: str) -> Path:
        """Maps the kubelet's archive path to KUBELET_CHECKPOINT_DIR by file name, refusing anything odd."""
        name = PurePosixPath(reported).name
        if not (name.startswith("checkpoint-") and name.endswith(".tar")) or "\x00" in name:
            raise UpstreamError(f"kubelet reported an unexpected checkpoint path: {reported!r}")
        return self.checkpoint_dir / name
