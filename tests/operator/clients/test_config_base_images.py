"""clients/config.py: operator.baseImages reaches the operator as PM_BASE_IMAGES, pull unless it says copy."""

import pytest

from podmigration.clients.config import Config


def test_base_images_default_to_pull_and_refuse_an_unknown_mode(monkeypatch):
    monkeypatch.setenv("POD_NAMESPACE", "pm")
    monkeypatch.delenv("PM_BASE_IMAGES", raising=False)
    assert Config.from_env().base_images == "pull"
    monkeypatch.setenv("PM_BASE_IMAGES", "copy")
    assert Config.from_env().base_images == "copy"
    monkeypatch.setenv("PM_BASE_IMAGES", "preload")
    with pytest.raises(SystemExit, match="PM_BASE_IMAGES"):
        Config.from_env()
