"""Whether a step that failed met a node-helper restart (a DaemonSet rolling update, a crash, an OOM kill) rather
than a failure of its own: then the migration waits for the helper and repeats the step instead of rolling back.

Every step is idempotent and what a helper keeps across a restart is on disk or in the kernel (archives, the
source's frozen cgroups and its network cut), so repeating is safe. What is not kept (grants, a partial upload, a
running image build, a kubelet checkpoint in flight) is redone by the repeated step. Pure decisions; the waiting is
the runner's (steps/helperwait.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .helpers import Helper, HelperError
from .refusals import Refusal

#: Preflight refusals that a helper being restarted causes: waited out for a while in Preparing.
HELPER_REFUSALS = frozenset({"SourceNoHelper", "TargetNoHelper"})

#: How often one phase is repeated for helper restarts: a rolling update restarts each node's helper once, and a
#: failure that merely coincides with a restart must not be repeated until the timeout.
MAX_REPEATS = 3


class HelperUnavailable(Exception):
    """A step cannot go on until the node-helpers of these nodes answer again."""

    def __init__(self, nodes: list[str], message: str) -> None:
        super().__init__(message)
        self.nodes = nodes


def missing(nodes: Iterable[str], helpers: Mapping[str, Helper]) -> list[str]:
    """The nodes among ``nodes`` without a ready helper pod."""
    return [node for node in nodes if not (node in helpers and helpers[node].ready)]


def outage(error: Exception, nodes: Iterable[str], before: Mapping[str, str], now: Mapping[str, Helper]) -> str | None:
    """Why ``error`` is a helper's absence or restart (None: the step failed on its own and rolls back).

    ``before`` holds each node's helper incarnation when the phase began, ``now`` the helpers as listed after the
    failure. A helper that did not answer at all, is not ready now, or is another run than before counts; an error
    that an unchanged, ready helper answered does not.
    """
    if isinstance(error, HelperUnavailable):
        return str(error)
    if not isinstance(error, HelperError):
        return None
    nodes = list(nodes)
    gone = missing(nodes, now)
    if gone:
        return f"no ready node-helper on node {', '.join(gone)} ({error})"
    restarted = [node for node in nodes if node in before and before[node] != now[node].incarnation]
    if restarted:
        return f"the node-helper on node {', '.join(restarted)} restarted ({error})"
    if error.unreachable:
        return f"the node-helper did not answer ({error})"
    return None


def preparing_wait(refusals: list[Refusal], waited: float, grace: float) -> bool:
    """Whether Preparing waits instead of refusing: only helper refusals, and not yet for ``grace`` seconds (a node
    without any helper is still refused soon, not at the timeout)."""
    return bool(refusals) and all(r.reason in HELPER_REFUSALS for r in refusals) and waited < grace
