"""A helper restarted mid-migration: what its predecessor left is discarded when the operator repeats the step."""

from __future__ import annotations

import os
import ssl
import threading
import time
from pathlib import Path

from nhcalls import FakeKubelet, call
from nhtestlib import RunningHelper

from nodehelper.runtime.kubelet import Kubelet


class RepeatingKubelet(FakeKubelet):
    discard_unreported = Kubelet.discard_unreported


def test_a_repeated_checkpoint_deletes_the_archive_an_interrupted_call_left(
    helpers: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext, tmp_path: Path
) -> None:
    source, _ = helpers
    kubelet_dir = tmp_path / "kubelet"
    kubelet_dir.mkdir()
    source.helper.kubelet = RepeatingKubelet(kubelet_dir)  # type: ignore[assignment]
    # What the kubelet wrote for the call the restarted helper never answered, and a user's older checkpoint.
    left = kubelet_dir / "checkpoint-web_default-app-2025-01-01T00:00:01Z.tar"
    left.write_bytes(b"memory")
    older = kubelet_dir / "checkpoint-web_default-app-2024-01-01T00:00:00Z.tar"
    older.write_bytes(b"forensic")
    os.utime(older, (time.time() - 3600, time.time() - 3600))
    request = {
        "namespace": "default",
        "pod": "web",
        "container": "app",
        "id": "mig1-app",
        "timeoutSeconds": 30,
        "discardSince": time.time() - 60,
    }
    status, body = call(source, "POST", "/v1/checkpoint", request, ctx=ctx)
    assert status == 200, body
    assert sorted(p.name for p in kubelet_dir.iterdir()) == [older.name]
    assert source.store.path("mig1-app").exists()


def test_discard_since_must_be_a_time(helpers: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext) -> None:
    source, _ = helpers
    request = {"namespace": "default", "pod": "web", "container": "app", "id": "mig1-app", "discardSince": "x"}
    status, body = call(source, "POST", "/v1/checkpoint", request, ctx=ctx)
    assert status == 400 and "discardSince" in body["error"]


class OverlapKubelet(FakeKubelet):
    """Counts dumps of one container running at once; each takes a moment, as a real one does."""

    def __init__(self, checkpoint_dir: Path) -> None:
        super().__init__(checkpoint_dir)
        self.lock = threading.Lock()
        self.running = self.most = 0

    def checkpoint(self, namespace: str, pod: str, container: str, timeout_seconds: int) -> Path:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.3)
            return super().checkpoint(namespace, pod, container, timeout_seconds)
        finally:
            with self.lock:
                self.running -= 1


def test_a_repeated_checkpoint_waits_for_the_call_still_running_for_that_container(
    helpers: tuple[RunningHelper, RunningHelper], ctx: ssl.SSLContext, tmp_path: Path
) -> None:
    """The operator replica that made the first call died (or its call timed out) and the step is repeated while
    the helper still dumps: two dumps at once would each hash the other's kubelet file."""
    source, _ = helpers
    kubelet_dir = tmp_path / "kubelet"
    kubelet_dir.mkdir()
    kubelet = OverlapKubelet(kubelet_dir)
    source.helper.kubelet = kubelet  # type: ignore[assignment]
    answers: list[int] = []

    def dump(archive: str) -> None:
        request = {"namespace": "default", "pod": "web", "container": "app", "id": archive, "timeoutSeconds": 30}
        answers.append(call(source, "POST", "/v1/checkpoint", request, ctx=ctx)[0])

    calls = [threading.Thread(target=dump, args=(archive,)) for archive in ("mig1-app", "mig2-app")]
    for thread in calls:
        thread.start()
    for thread in calls:
        thread.join(timeout=30)
    assert answers == [200, 200]
    assert kubelet.most == 1
    assert len(source.helper.dumping) == 0
