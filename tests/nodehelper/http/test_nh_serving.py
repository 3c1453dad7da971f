"""How the server serves: a bounded number of requests at work, a readiness probe over mutual TLS, and a log that
warns about real TLS failures only."""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nhcalls import call
from nhtestlib import RunningHelper

from nodehelper import probe
from nodehelper.config import Config
from nodehelper.identity import tlsconfig


class BlockingFreezer:
    """Holds every freeze until released, so a test can keep a worker busy."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def freeze(self, uid: str) -> list[str]:
        self.entered.set()
        assert self.release.wait(10)
        return []


@pytest.fixture
def busy_helper(tmp_path: Path, pki: dict[str, Path], ctx: ssl.SSLContext) -> Iterator[RunningHelper]:
    """A helper with one worker, taken by a freeze that waits."""
    helper = RunningHelper(tmp_path / "node", pki["node"], max_workers=1)
    freezer = BlockingFreezer()
    helper.helper.freezer = freezer  # type: ignore[assignment]
    held = threading.Thread(target=call, args=(helper, "POST", "/v1/freeze", {"podUID": "abc"}), kwargs={"ctx": ctx})
    held.start()
    assert freezer.entered.wait(5)
    yield helper
    freezer.release.set()
    held.join(5)
    helper.stop()


def test_a_request_beyond_the_workers_is_told_to_come_back(busy_helper: RunningHelper, ctx: ssl.SSLContext) -> None:
    conn = http.client.HTTPSConnection("127.0.0.1", busy_helper.port, context=ctx, timeout=5)
    try:
        conn.request("POST", "/v1/thaw", body=b'{"podUID": "abc"}')
        resp = conn.getresponse()
        assert resp.status == 503 and resp.getheader("Retry-After") == "5"
        assert b"node-helper busy: 1 requests in progress (PM_MAX_WORKERS); retry in 5 s" in resp.read()
    finally:
        conn.close()
    # The readiness probe's request does not need a worker.
    assert call(busy_helper, "GET", "/healthz", ctx=ctx)[0] == 200


def test_a_worker_is_free_again_after_its_request(ctx: ssl.SSLContext, tmp_path: Path, pki: dict[str, Path]) -> None:
    helper = RunningHelper(tmp_path / "one", pki["node"], max_workers=1)
    try:
        for _ in range(3):  # an error answer frees its worker too
            assert call(helper, "POST", "/v1/freeze", {"podUID": "abc"}, ctx=ctx)[0] == 404
    finally:
        helper.stop()


def wait_for(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = [r for r in caplog.records if text in r.getMessage()]
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"no log line with {text!r}")


def test_a_tcp_check_is_not_a_warning(
    helpers: tuple[RunningHelper, RunningHelper], caplog: pytest.LogCaptureFixture
) -> None:
    source, _ = helpers
    caplog.set_level(logging.DEBUG, logger="nodehelper")
    socket.create_connection(("127.0.0.1", source.port)).close()
    [record] = wait_for(caplog, "closed without sending anything")
    assert record.levelno == logging.DEBUG and "127.0.0.1" in record.getMessage()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_bad_client_certificate_is_a_warning_with_the_peer(
    helpers: tuple[RunningHelper, RunningHelper], pki: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    source, _ = helpers
    rogue = tlsconfig.client_context(pki["rogue"])
    rogue.load_verify_locations(pki["node"] / "ca.crt")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        call(source, "GET", "/healthz", ctx=rogue)
    [record] = wait_for(caplog, "TLS handshake with 127.0.0.1 failed")
    assert record.levelno == logging.WARNING and "certificate" in record.getMessage().lower()


def test_the_probe_checks_healthz_over_tls_without_a_key(
    helpers: tuple[RunningHelper, RunningHelper], caplog: pytest.LogCaptureFixture
) -> None:
    source, _ = helpers
    caplog.set_level(logging.DEBUG, logger="nodehelper")
    config = Config(node_name="n", node_ip="127.0.0.1", port=source.port)
    assert probe.check(config) == ""
    # Every few seconds: its request line is DEBUG, not INFO.
    [record] = wait_for(caplog, "GET /healthz -> 200")
    assert record.levelno == logging.DEBUG
    source.stop()
    assert "GET https://127.0.0.1" in probe.check(config) and "/healthz failed" in probe.check(config)


def test_the_probe_exits_non_zero_with_the_reason(
    helpers: tuple[RunningHelper, RunningHelper],
    pki: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source, _ = helpers
    monkeypatch.setenv("NODE_IP", "127.0.0.1")
    monkeypatch.setenv("PM_HELPER_PORT", str(source.port))
    probe.main()  # returns: exit status 0
    source.stop()
    with pytest.raises(SystemExit) as info:
        probe.main()
    assert info.value.code == 1 and "/healthz failed" in capsys.readouterr().err
