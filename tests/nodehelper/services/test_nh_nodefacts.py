"""GET /v1/node: what the helper reports of its node for `kubectl migrate check`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nodehelper.criu import criuconfig
from nodehelper.http import routes
from nodehelper.http.authz import Access
from nodehelper.runtime.criupath import SearchDir
from nodehelper.services.nodefacts import TTL, NodeFacts
from nodehelper.streams.diskspace import DiskSpace
from pmcontract import paths


class Crio:
    def __init__(self, config: dict[str, Any] | Exception) -> None:
        self.config = config
        self.reads = 0

    def __call__(self, endpoint: str, timeout: float) -> dict[str, Any]:
        self.reads += 1
        assert timeout < 2
        if isinstance(self.config, Exception):
            raise self.config
        return self.config


def facts(
    tmp_path: Path, crio: Crio, now: list[float] | None = None, criu_search: list[SearchDir] | None = None
) -> NodeFacts:
    clock = now or [0.0]
    return NodeFacts(
        "n1",
        "unix:///nowhere.sock",
        tmp_path / "runc.conf",
        tmp_path,
        DiskSpace(1 << 30, 0),
        criu_search or [],
        read_crio=crio,
        clock=lambda: clock[0],
    )


def test_the_endpoint_needs_no_client_certificate_like_the_probe() -> None:
    route, _ = routes.resolve("GET", paths.NODE)
    assert route.access is Access.PUBLIC and route.method == "GET"


@pytest.mark.parametrize(
    ("config", "restores"),
    [
        ({"crio": {"runtime": {"enable_criu_support": True}}}, True),
        ({"crio": {"runtime": {"enable_criu_support": False}}}, False),
        (
            {
                "crio": {
                    "runtime": {"enable_criu_support": True},
                    "checkpoint_restore": {"container_level_enabled": "checkpoint_only"},
                }
            },
            False,
        ),
        ({"crio": {"checkpoint_restore": {"container_level_enabled": "checkpoint_restore"}}}, True),
    ],
)
def test_it_says_whether_crio_restores(tmp_path: Path, config: dict[str, Any], restores: bool) -> None:
    answer = facts(tmp_path, Crio(config)).answer()
    assert answer["crio_restores"] is restores and answer["crio_error"] == ""


def test_an_unreadable_crio_is_unknown_with_the_reason(tmp_path: Path) -> None:
    answer = facts(tmp_path, Crio(ConnectionRefusedError("refused"))).answer()
    assert answer["crio_restores"] is None and "unix:///nowhere.sock: refused" in answer["crio_error"]


def test_it_reports_the_managed_criu_block_and_free_space(tmp_path: Path) -> None:
    crio = Crio({})
    assert facts(tmp_path, crio).answer()["criu_block"] is False
    criuconfig.apply(tmp_path / "runc.conf", ["tcp-close"])
    answer = facts(tmp_path, crio).answer()
    assert answer["criu_block"] is True and answer["work_dir"] == str(tmp_path)
    assert answer["free_bytes"] > 0 and answer["floor_bytes"] == 1 << 30


def test_it_reports_where_criu_is_and_where_it_looked(tmp_path: Path) -> None:
    usr_sbin = tmp_path / "2"
    usr_sbin.mkdir()
    search = [SearchDir("/usr/local/bin", tmp_path / "1"), SearchDir("/usr/sbin", usr_sbin)]
    answer = facts(tmp_path, Crio({}), criu_search=search).answer()
    assert answer["criu_searched"] == ["/usr/local/bin", "/usr/sbin"] and answer["criu_path"] is None
    (usr_sbin / "criu").write_bytes(b"")
    (usr_sbin / "criu").chmod(0o755)
    assert facts(tmp_path, Crio({}), criu_search=search).answer()["criu_path"] == "/usr/sbin/criu"


def test_answers_are_cached_a_few_seconds_then_read_again(tmp_path: Path) -> None:
    crio, now = Crio({}), [100.0]
    node = facts(tmp_path, crio, now)
    node.answer()
    now[0] += TTL - 0.1
    node.answer()
    assert crio.reads == 1
    now[0] += 0.2
    node.answer()
    assert crio.reads == 2
