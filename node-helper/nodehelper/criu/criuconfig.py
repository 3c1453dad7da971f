"""The node's CRIU configuration for runc (/etc/criu/runc.conf): the only way to give CRIU options under CRI-O,
which passes none of its own (e.g. tcp-close, without which a pod with a connected TCP socket cannot be dumped).

The helper owns one marked block in that file and leaves every other line alone."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

BEGIN = "# BEGIN podmigration (managed by the node-helper)"
END = "# END podmigration"
# A CRIU long option without its leading "--", optionally with "=value"; CRIU reads one option per line.
_OPTION = re.compile(r"[a-z][a-z0-9-]*(=[^\s#]+)?")


def parse_options(value: str) -> list[str]:
    """PM_CRIU_OPTIONS: space-separated option names (`tcp-close skip-in-flight`, `ghost-limit=10M`)."""
    options = value.split()
    bad = [option for option in options if not _OPTION.fullmatch(option)]
    if bad:
        raise ValueError(f"PM_CRIU_OPTIONS: invalid CRIU options {bad} (expected names like tcp-close or name=value)")
    return options


def render(current: str, options: list[str]) -> str:
    """`current` without our block, plus a new block at the end when there are options."""
    kept: list[str] = []
    inside = False
    for line in current.splitlines(keepends=True):
        stripped = line.strip()
        if stripped == BEGIN:
            inside = True
        elif inside and stripped == END:
            inside = False
        elif not inside:
            kept.append(line)
    text = "".join(kept)
    if options:
        if text and not text.endswith("\n"):
            text += "\n"
        text += "\n".join([BEGIN, *options, END]) + "\n"
    return text


def apply(path: Path, options: list[str]) -> bool:
    """Writes the block (atomically, keeping the file's mode); returns whether the file changed."""
    try:
        current = path.read_text()
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        if not options:
            return False
        current, mode = "", 0o644
    wanted = render(current, options)
    if wanted == current:
        return False
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(wanted)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def has_block(path: Path) -> bool:
    """Whether the file holds our managed block (what `kubectl migrate check` reports)."""
    try:
        return BEGIN in (line.strip() for line in path.read_text().splitlines())
    except OSError:
        return False
