"""Checkpoints through the local kubelet's API (POST /checkpoint/{ns}/{pod}/{container})."""

from __future__ import annotations

import http.client
import json
import logging
import re
import ssl
import stat
import time
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from nodehelper import validation
from nodehelper.errors import UpstreamError

log = logging.getLogger(__name__)

_EXTRA_SECONDS = 30
# The kubelet names archives checkpoint-<pod>_<namespace>-<container>-<time.RFC3339>.tar.
_ARCHIVE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})\.tar")


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
        since = time.time() - 1  # the archive's mtime is later than this (1 s of slack for timestamp rounding)
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
            try:
                items = json.loads(body)["items"]
                reported = str(items[0])
            except (ValueError, KeyError, IndexError, TypeError):
                raise UpstreamError(f"{who} answered the checkpoint without an archive path: {body[:300]!r}") from None
            return self.local_path(reported)
        except UpstreamError:
            # The kubelet wrote an archive (full process memory) but its answer does not say which one usably.
            self.discard_unreported(names[1], names[0], names[2], since)
            raise

    def _archives_of(self, pod: str, namespace: str, container: str) -> list[Path]:
        """This container's archives in the checkpoint directory; OSError when it cannot be listed."""
        prefix = f"checkpoint-{pod}_{namespace}-{container}-"
        return [
            path
            for path in sorted(self.checkpoint_dir.iterdir())
            if path.name.startswith(prefix) and _ARCHIVE_TIME.fullmatch(path.name[len(prefix) :])
        ]

    def writing(self, pod: str, namespace: str, container: str, since: float) -> Path | None:
        """This container's newest archive written since `since`, if there is one yet: CRI-O tars the dump
        straight into the checkpoint directory, with one sequential copy into a new file."""
        try:
            found = [
                path
                for path in self._archives_of(pod, namespace, container)
                if stat.S_ISREG((st := path.lstat()).st_mode) and st.st_mtime >= since
            ]
        except OSError:
            return None  # an archive moved away between the listing and its stat: the step is past writing
        return found[-1] if found else None

    def written_bytes(self, pod: str, namespace: str, container: str, since: float) -> int:
        """How far a running checkpoint is: the size of the archive being written (0 while CRIU still dumps)."""
        path = self.writing(pod, namespace, container, since)
        try:
            return path.stat().st_size if path else 0
        except OSError:
            return 0

    def discard_unreported(self, pod: str, namespace: str, container: str, since: float) -> list[str]:
        """Deletes this container's archives the kubelet wrote since `since`; returns their names."""
        removed: list[str] = []
        try:
            entries = self._archives_of(pod, namespace, container)
        except OSError as exc:
            log.warning("cannot list %s to delete an unreported checkpoint: %s", self.checkpoint_dir, exc)
            return removed
        for path in entries:
            name = path.name
            try:
                st = path.lstat()
                if not stat.S_ISREG(st.st_mode) or st.st_mtime < since:
                    continue
                path.unlink()
            except OSError as exc:
                log.warning("cannot delete unreported checkpoint %s: %s", path, exc)
                continue
            removed.append(name)
            log.warning("deleted checkpoint %s the kubelet did not report usably", path)
        return removed

    def local_path(self, reported: str) -> Path:
        """Maps the kubelet's archive path to KUBELET_CHECKPOINT_DIR by file name, refusing anything odd."""
        name = PurePosixPath(reported).name
        if not (name.startswith("checkpoint-") and name.endswith(".tar")) or "\x00" in name:
            raise UpstreamError(f"kubelet reported an unexpected checkpoint path: {reported!r}")
        return self.checkpoint_dir / name
