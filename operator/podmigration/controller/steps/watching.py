"""A blocking helper call on one archive (checkpoint, send, image build) with status.progress written from the
helper's count every few seconds meanwhile, and the entry that says the step is done."""

from __future__ import annotations

from collections.abc import Callable

from ...api.types import Obj, Progress
from ...domain.helpers import Helper
from .. import progress
from ..context import Run


def watched(
    run: Run, migration: Obj, helper: Helper, archive: str, step: str, item: str, call: Callable[[], Obj]
) -> tuple[Obj, Obj]:
    """(the migration as last written, what `call` answered); `helper` is where it runs and counts."""
    current = {"migration": migration}

    def report(answer: Obj) -> None:
        current["migration"] = run.write(
            current["migration"],
            {
                "progress": progress.entry(
                    step,
                    item,
                    answer.get("bytesDone", 0),
                    answer.get("bytesExpected", 0),
                    answer.get("bytesPerSecond", 0),
                    run.deps.clock(),
                )
            },
        )

    result = progress.watched(call, lambda: run.deps.helpers.progress(helper, archive), report)
    return current["migration"], result


def done(run: Run, step: str, item: str, size: int, seconds: float) -> Progress:
    """The status.progress value once the step has handled all `size` bytes of `item` in `seconds`."""
    return progress.entry(step, item, size, size, int(size / seconds) if seconds else 0, run.deps.clock())
