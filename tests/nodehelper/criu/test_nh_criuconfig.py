"""The node's /etc/criu/runc.conf: the helper's block is kept as PM_CRIU_OPTIONS says, other lines untouched."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from nodehelper.config import Config
from nodehelper.criu import criuconfig

BLOCK = "# BEGIN podmigration (managed by the node-helper)\ntcp-close\nskip-in-flight\n# END podmigration\n"


def test_block_is_added_after_the_admins_lines_once(tmp_path: Path) -> None:
    conf = tmp_path / "runc.conf"
    conf.write_text("# site settings\nlog-file /var/log/criu.log")  # no final newline
    conf.chmod(0o640)
    assert criuconfig.apply(conf, ["tcp-close", "skip-in-flight"]) is True
    assert conf.read_text() == "# site settings\nlog-file /var/log/criu.log\n" + BLOCK
    assert stat.S_IMODE(conf.stat().st_mode) == 0o640
    assert criuconfig.apply(conf, ["tcp-close", "skip-in-flight"]) is False  # idempotent
    assert conf.read_text().count("BEGIN podmigration") == 1


def test_new_options_replace_the_block_and_empty_options_remove_it(tmp_path: Path) -> None:
    conf = tmp_path / "runc.conf"
    conf.write_text("tcp-established\n" + BLOCK + "ghost-limit=1M\n")
    assert criuconfig.apply(conf, ["tcp-close"]) is True
    assert conf.read_text() == (
        "tcp-established\nghost-limit=1M\n# BEGIN podmigration (managed by the node-helper)\ntcp-close\n"
        "# END podmigration\n"
    )
    assert criuconfig.apply(conf, []) is True
    assert conf.read_text() == "tcp-established\nghost-limit=1M\n"


def test_missing_file_is_created_only_when_there_are_options(tmp_path: Path) -> None:
    conf = tmp_path / "runc.conf"
    assert criuconfig.apply(conf, []) is False
    assert not conf.exists()
    assert criuconfig.apply(conf, ["tcp-close", "skip-in-flight"]) is True
    assert conf.read_text() == BLOCK
    assert stat.S_IMODE(conf.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["runc.conf"]  # no temporary file left


@pytest.mark.parametrize("value", ["--tcp-close", "-c", "tcp-close; rm", "Tcp-close", "a=b c#d"])
def test_options_that_are_not_plain_criu_option_names_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="PM_CRIU_OPTIONS"):
        Config.from_env({"NODE_IP": "10.0.0.1", "PM_CRIU_OPTIONS": value})


def test_config_reads_options_and_path() -> None:
    config = Config.from_env(
        {"NODE_IP": "10.0.0.1", "PM_CRIU_OPTIONS": " tcp-close  ghost-limit=10M ", "PM_CRIU_CONFIG": "/x/runc.conf"}
    )
    assert config.criu_options == ("tcp-close", "ghost-limit=10M")
    assert config.criu_config == Path("/x/runc.conf")
    assert Config.from_env({"NODE_IP": "10.0.0.1"}).criu_options == ()
