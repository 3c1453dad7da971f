"""What every `kubectl migrate` command shares: where output goes, how time passes, exit codes."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TextIO

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: What a shell reports for a command ended by Ctrl-C (128 + SIGINT), as kubectl does.
EXIT_INTERRUPTED = 130
#: How long to wait past spec.timeoutSeconds for a terminal phase before blaming the operator.
OPERATOR_GRACE_SECONDS = 120


class UsageError(Exception):
    """Bad input that the user can fix; exit status 2."""


@dataclass
class Terminal:
    """Where output goes and how time passes; tests replace it."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
