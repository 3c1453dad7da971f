"""Where Events go: kopf's poster in the operator, a list in tests."""

from __future__ import annotations

from typing import Any, Protocol, cast


class EventSink(Protocol):
    def __call__(self, obj: dict[str, Any], *, type: str, reason: str, message: str) -> None: ...


def kopf_events(obj: dict[str, Any], *, type: str, reason: str, message: str) -> None:
    """Post through kopf, which batches, retries and works from the daemon's thread."""
    import kopf

    kopf.event(
        cast(kopf.Body, obj), type=type, reason=reason, message=message
    )  # kopf truncates long messages, keeping head and tail
