"""The value that every check returns when it blocks a migration."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Refusal:
    """Why a migration cannot go ahead: ``reason`` is a CamelCase machine word, ``message`` is for people."""

    reason: str
    message: str

    def __str__(self) -> str:
        return self.message
