"""The operator's kopf settings."""

import kopf

from podmigration.controller import handlers


def _configure(monkeypatch, memo: kopf.Memo | None = None) -> kopf.OperatorSettings:
    monkeypatch.setattr(handlers, "load_config", lambda: None)
    monkeypatch.setattr(handlers, "Kube", lambda: object())
    monkeypatch.setattr(handlers, "HelperClient", lambda config: object())
    settings = kopf.OperatorSettings()
    handlers.configure(settings=settings, memo=kopf.Memo() if memo is None else memo)
    return settings


def test_migrations_get_threads_of_their_own(monkeypatch):
    """kopf's executor stays at its default size, for the webhooks and the signer (test_threads.py)."""
    monkeypatch.delenv("PM_MAX_CONCURRENT_MIGRATIONS", raising=False)
    memo = kopf.Memo()
    settings = _configure(monkeypatch, memo)
    assert memo.migrations.executor._max_workers == 64
    assert settings.execution.max_workers is None


def test_concurrent_migrations_from_the_environment(monkeypatch):
    monkeypatch.setenv("PM_MAX_CONCURRENT_MIGRATIONS", "200")
    memo = kopf.Memo()
    settings = _configure(monkeypatch, memo)
    assert memo.migrations.executor._max_workers == 200
    assert settings.peering.standalone


def test_replicas_elect_the_oldest_as_leader_through_kopf_peering(monkeypatch):
    """A replica that restarts ranks below the one running, so it never preempts it in the middle of a step."""
    monkeypatch.setenv("PM_PEERING", "podmigration")
    monkeypatch.setenv("PM_PEERING_LIFETIME", "15")
    now = [1_800_000_000_000_000_000]
    monkeypatch.setattr(handlers.time, "time_ns", lambda: now[0])
    first = _configure(monkeypatch)
    now[0] += 1_000  # one microsecond later: the replicas started together still differ
    restarted = _configure(monkeypatch)
    assert (first.peering.name, first.peering.clusterwide, first.peering.mandatory) == ("podmigration", True, True)
    assert not first.peering.standalone and first.peering.lifetime == 15
    assert first.peering.priority > restarted.peering.priority > 0  # equal priorities would pause both
