"""Every log line about a migration names it: the daemon that drives a migration sets what it is about (namespace/
name, pod, phase) for its thread, and a filter on the log handler adds it to each record, as fields in the JSON
format (`migration`, `pod`, `phase`) and as a leading `[namespace/name pod=... phase=...]` in the text one."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_current: ContextVar[dict[str, str] | None] = ContextVar("podmigration_log_context", default=None)


@contextmanager
def migration(namespace: str, name: str) -> Iterator[None]:
    """The log lines of this thread are about PodMigration namespace/name until the block ends."""
    token = _current.set({"migration": f"{namespace}/{name}", "pod": "", "phase": ""})
    try:
        yield
    finally:
        _current.reset(token)


def update(pod: str | None, phase: str | None) -> None:
    """What the migration is now (after each read of it)."""
    fields = _current.get()
    if fields is not None:
        fields.update(pod=pod or "", phase=phase or "")


class MigrationFields(logging.Filter):
    """Adds the thread's migration to the records it passes (never drops one)."""

    def __init__(self, prefix: bool) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _current.get()
        if fields is None or hasattr(record, "migration"):
            return True
        for key, value in fields.items():
            setattr(record, key, value)
        if self.prefix:
            record.msg = (
                f"[{fields['migration']} pod={fields['pod'] or '-'} phase={fields['phase'] or '-'}] {record.msg}"
            )
        return True


def install(json_format: bool) -> None:
    """On every handler of the root logger (kopf's, once kopf.configure ran)."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(MigrationFields(prefix=not json_format))
