"""GET /v1/progress/<id>: the bytes done of a stream running now, answered even while every worker is busy."""

from __future__ import annotations

import io
import ssl
from pathlib import Path

import pytest
from nhcalls import call
from nhtestlib import RunningHelper

from nodehelper.errors import NotFound
from nodehelper.services.progress import Progress


def assert_gone(progress: Progress, archive_id: str) -> None:
    with pytest.raises(NotFound):
        progress.get(archive_id)


def test_reading_counts_bytes_and_forgets_the_stream_when_it_ends() -> None:
    progress = Progress()
    with progress.reading("mig1-app", "transfer", 10, io.BytesIO(b"0123456789")) as reader:
        assert reader.read(4) == b"0123"
        now = progress.get("mig1-app")
        assert (now["step"], now["bytesDone"], now["bytesExpected"]) == ("transfer", 4, 10)
        assert now["seconds"] >= 0 and now["bytesPerSecond"] >= 0
        reader.read()
        assert progress.get("mig1-app")["bytesDone"] == 10
    assert_gone(progress, "mig1-app")


def test_measuring_asks_for_the_bytes_done_when_asked_and_forgets_the_step_when_it_ends() -> None:
    progress, written = Progress(), [0]
    with progress.measuring("mig1-app", "image", 10, lambda: written[0]):
        assert progress.get("mig1-app")["bytesDone"] == 0
        written[0] = 7
        now = progress.get("mig1-app")
        assert (now["step"], now["bytesDone"], now["bytesExpected"]) == ("image", 7, 10) and "measure" not in now
    assert_gone(progress, "mig1-app")


def test_progress_endpoint_answers_while_the_workers_are_busy(
    tmp_path: Path,
    pki: dict[str, Path],
    ctx: ssl.SSLContext,
) -> None:
    source = RunningHelper(tmp_path / "source", pki["node"], max_workers=1)
    try:
        status, body = call(source, "GET", "/v1/progress/mig1-app", ctx=ctx)
        assert status == 404 and "no step on archive mig1-app" in body["error"]
        assert call(source, "GET", "/v1/progress/Bad_Id", ctx=ctx)[0] == 400
        with source.server.worker(), source.helper.progress.reading("mig1-app", "transfer", 3, io.BytesIO(b"abc")) as r:
            r.read(1)  # the one worker is taken, as by the send whose progress is asked
            assert call(source, "POST", "/v1/freeze", {"podUID": "x"}, ctx=ctx)[0] == 503
            status, body = call(source, "GET", "/v1/progress/mig1-app", ctx=ctx)
        assert status == 200 and (body["id"], body["bytesDone"], body["bytesExpected"]) == ("mig1-app", 1, 3)
    finally:
        source.stop()
