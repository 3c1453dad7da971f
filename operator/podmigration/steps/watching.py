"""A blocking helper call on one archive (checkpoint, send, image build) with status.progress written from the
helper's count every few seconds meanwhile, and the entry that says the step is done."""

from __future__ import annotations

from collections.abc import Callable

from .. import progress
from ..helperclient import Helper
from ..runtime import Obj


class WatchedCalls:
    """Mixed into the steps that wait on such a call (``self`` is the MigrationRunner)."""

    def _watched(self, migration: Obj, helper: Helper, archive: str, step: str, item: str,
                 call: Callable[[], Obj]) -> tuple[Obj, Obj]:
        """(the migration as last written, what `call` answered); `helper` is where it runs and counts."""
        current = {"migration": migration}

        def report(answer: Obj) -> None:
            current["migration"] = self._write(current["migration"], {"progress": progress.entry(
                step, item, answer.get("bytesDone", 0), answer.get("bytesExpected", 0),
                answer.get("bytesPerSecond", 0), self.d.clock())})

        result = progress.watched(call, lambda: self.d.helpers.progress(helper, archive), report)
        return current["migration"], result

    def _done(self, step: str, item: str, size: int, seconds: float) -> Obj:
        """The status.progress value once the step has handled all `size` bytes of `item` in `seconds`."""
        return progress.entry(step, item, size, size, int(size / seconds) if seconds else 0, self.d.clock())
