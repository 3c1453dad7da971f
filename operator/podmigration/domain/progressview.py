"""How `kubectl migrate` shows status.progress while it follows a migration: a bar redrawn in place on a
terminal, a plain line per change otherwise (logs, pipes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TextIO

WIDTH = 30
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def size(value: float) -> str:
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def describe(progress: Mapping[str, Any]) -> tuple[float | None, str]:
    """(fraction done or None when nothing is expected, the words after the bar)."""
    done, expected = progress.get("bytesDone") or 0, progress.get("bytesExpected") or 0
    fraction = min(1.0, done / expected) if expected > 0 else None
    words = f"{progress.get('step', '?')} {progress.get('item', '')}".strip()
    amount = f"{size(done)} / {size(expected)}" if expected else size(done)
    percent = f"{fraction * 100:3.0f}% " if fraction is not None else ""
    return fraction, f"{words}  {percent}{amount}  {size(progress.get('bytesPerSecond') or 0)}/s"


class ProgressView:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.shown: tuple[Any, ...] | None = None
        self.drawn = False  # a bar is on the current line (tty)

    def update(self, progress: Mapping[str, Any] | None) -> None:
        """Shows `progress` if it changed since the last call."""
        if not progress:
            return
        key = (progress.get("step"), progress.get("item"), progress.get("bytesDone"), progress.get("bytesExpected"))
        if key == self.shown:
            return
        self.shown = key
        fraction, words = describe(progress)
        if not self.tty:
            print(f"         progress: {words}", file=self.out, flush=True)
            return
        filled = int(WIDTH * (fraction or 0))
        bar = "#" * filled + "." * (WIDTH - filled)
        self.out.write(f"\r         [{bar}] {words}\033[K")
        self.out.flush()
        self.drawn = True

    def end_line(self) -> None:
        """Before any other output: the bar's line is finished, so the next line does not overwrite it."""
        if self.drawn:
            self.out.write("\n")
            self.drawn = False
