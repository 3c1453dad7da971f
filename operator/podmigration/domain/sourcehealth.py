"""Whether the source's kubelet restarts it while it is cut off and frozen, predicted before and detected after.

From the network cut to the cut-over, probes of the source fail (network probes are dropped, exec probes hang
on the frozen processes). A liveness probe that gives up within that time makes the kubelet kill the
container: the kill stays pending while the cgroup is frozen and lands when a rollback thaws it, so the
process that "resumes" is a fresh one. The preflight warns about it; the rollback reports it.
"""

from __future__ import annotations

from datetime import datetime

from ..api.types import Obj
from . import status as st

#: Kubernetes' probe defaults.
DEFAULT_PERIOD, DEFAULT_FAILURES = 10, 3

GIB = 1 << 30


def liveness_tolerance(container: Obj) -> float | None:
    """Seconds of failing liveness probes after which the kubelet kills the container (None: no probe)."""
    probe = container.get("livenessProbe")
    if not probe:
        return None
    return float((probe.get("periodSeconds") or DEFAULT_PERIOD) * (probe.get("failureThreshold") or DEFAULT_FAILURES))


def expected_downtime(memory_bytes: int, base_seconds: float, seconds_per_gib: float) -> float:
    """How long the source is expected to stay cut off, from its memory (figures measured in e2e/README.md)."""
    return round(base_seconds + seconds_per_gib * memory_bytes / GIB, 1)


def liveness_warnings(pod: Obj, expected_seconds: float) -> list[str]:
    """One message per container whose liveness probe would give up before the migration is expected to end."""
    warnings = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        tolerance = liveness_tolerance(container)
        if tolerance is not None and tolerance <= expected_seconds:
            warnings.append(
                f"container {container['name']}: its liveness probe gives up after {tolerance:g}s of failures, "
                f"and the pod is expected to be cut off and frozen for about {expected_seconds:g}s; if the kubelet "
                "restarts it meanwhile, a rollback cannot resume the old process (reason SourceRestarted)"
            )
    return warnings


def restart_counts(pod: Obj) -> dict[str, int]:
    return {
        c["name"]: int(c.get("restartCount") or 0) for c in (pod.get("status") or {}).get("containerStatuses") or []
    }


def _event_time(event: Obj) -> datetime | None:
    raw = event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
    return st.parse_time(raw) if isinstance(raw, str) else raw


def restart_evidence(pod: Obj, recorded: dict[str, int], events: list[Obj], since: datetime) -> str | None:
    """Why the source's processes are no longer the ones that were checkpointed, or None.

    A higher restart count is proof after the fact; a kubelet ``Killing`` Event since the fence is proof before
    the restart shows (the kill waits for the thaw).
    """
    now = restart_counts(pod)
    restarted = sorted(name for name, count in now.items() if count > recorded.get(name, count))
    if restarted:
        return f"the kubelet restarted container(s) {', '.join(restarted)} of the source while it was frozen"
    floor = since.replace(microsecond=0)
    for event in events:
        at = _event_time(event)
        if event.get("reason") == "Killing" and at is not None and at >= floor:
            return f"the kubelet killed the source while it was frozen: {event.get('message', '').strip()}"
    return None
