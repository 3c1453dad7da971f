"""``kubectl migrate``: create PodMigrations, follow them, drain nodes (see ``kubectl migrate --help``).

Modules: args (the command line), commands (pod, list, status, cancel), follow (phase lines and progress), drain,
version, complete (shell completion), output (tables and -o), entry (the command table, connecting, exits)."""

from __future__ import annotations

from .entry import COMMANDS, connect, main, parse_args
from .output import timings
from .terminal import Terminal

__all__ = ["COMMANDS", "Terminal", "connect", "main", "parse_args", "timings"]
