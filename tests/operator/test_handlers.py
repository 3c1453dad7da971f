"""The operator's kopf settings."""

import kopf

from podmigration import handlers


def _configure(monkeypatch) -> kopf.OperatorSettings:
    monkeypatch.setattr(handlers, "load_config", lambda: None)
    monkeypatch.setattr(handlers, "Kube", lambda: object())
    monkeypatch.setattr(handlers, "HelperClient", lambda config: object())
    settings = kopf.OperatorSettings()
    handlers.configure(settings=settings, memo=kopf.Memo())
    return settings


def test_enough_worker_threads_for_concurrent_migrations(monkeypatch):
    monkeypatch.delenv("PM_MAX_CONCURRENT_MIGRATIONS", raising=False)
    assert _configure(monkeypatch).execution.max_workers == 64


def test_concurrent_migrations_from_the_environment(monkeypatch):
    monkeypatch.setenv("PM_MAX_CONCURRENT_MIGRATIONS", "200")
    settings = _configure(monkeypatch)
    assert settings.execution.max_workers == 200
    assert settings.peering.standalone
