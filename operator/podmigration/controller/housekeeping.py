"""Garbage collection, once a period: finished PodMigrations past their time-to-live (or beyond the few kept per
pod) are deleted, and whatever a migration that is no longer under way left on a node is removed there.

What is on a node, and what is under way, are read in that order: each helper first says which migrations have
anything on its node (`GET /v1/migrations`), then the PodMigrations are listed. A migration with files on a node
existed before that listing (only the operator makes them, for a PodMigration it read), so if the listing has it
neither unfinished nor at all, it has finished or was deleted: nothing will use its files again. A migration that
starts meanwhile has no files in the first answer and is not touched; a stale answer (a slow replica) only holds
fewer uids. So several operator replicas may run this at once, and a helper never deletes anything on its own
(a restarted helper knows nothing until it is told).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..api import phases
from ..api.types import Obj, phase_of, status_of
from ..domain import status as st
from ..domain.helpers import Helper, HelperError

log = logging.getLogger(__name__)


def finished_at(migration: Obj) -> datetime | None:
    """When the migration reached its terminal phase (None while it runs)."""
    status = status_of(migration)
    if not phases.is_terminal(status.get("phase")):
        return None
    return st.phase_times(status).get(status["phase"]) or st.parse_time(migration["metadata"]["creationTimestamp"])


def expired(migrations: Iterable[Obj], now: datetime, default_ttl: float, keep_per_pod: int) -> list[tuple[Obj, str]]:
    """Finished PodMigrations to delete, with why: past ``spec.ttlSecondsAfterFinished`` (else ``default_ttl``), or
    older than the newest ``keep_per_pod`` finished ones of the same pod (namespace and ``spec.podName``)."""
    finished = [(m, at) for m in migrations if (at := finished_at(m)) is not None]
    doomed: dict[str, tuple[Obj, str]] = {}
    for migration, at in finished:
        ttl = migration["spec"].get("ttlSecondsAfterFinished")
        ttl = default_ttl if ttl is None else ttl
        if now - at >= timedelta(seconds=ttl):
            doomed[migration["metadata"]["uid"]] = (
                migration,
                f"finished {ttl:g}s ago or more (ttlSecondsAfterFinished)",
            )
    by_pod: dict[tuple[str, str], list[tuple[Obj, datetime]]] = {}
    for migration, at in finished:
        key = (migration["metadata"]["namespace"], migration["spec"]["podName"])
        by_pod.setdefault(key, []).append((migration, at))
    for (_, pod), items in by_pod.items():
        items.sort(key=lambda item: item[1], reverse=True)
        for migration, _ in items[keep_per_pod:]:
            doomed.setdefault(
                migration["metadata"]["uid"],
                (migration, f"only the newest {keep_per_pod} finished PodMigrations of pod {pod} are kept"),
            )
    return list(doomed.values())


def dead(held: Iterable[str], migrations: Iterable[Obj]) -> list[str]:
    """The uids among ``held`` (what a node holds, read before ``migrations`` was listed) of no unfinished
    PodMigration: finished or deleted, so nothing will use what they left."""
    live = {m["metadata"]["uid"] for m in migrations if not phases.is_terminal(phase_of(m))}
    return sorted(set(held) - live)


@dataclass
class Housekeeper:
    """One round of garbage collection through the API and the helpers, and the loop that repeats it."""

    list_migrations: Callable[[], list[Obj]]
    delete_migration: Callable[[Obj], None]
    helpers: Callable[[], dict[str, Helper]]
    held: Callable[[Helper], list[str]]
    cleanup: Callable[[Helper, str], Obj]
    clock: Callable[[], datetime]
    default_ttl: float
    keep_per_pod: int

    def round(self) -> None:
        holding: dict[str, tuple[Helper, list[str]]] = {}
        for node, helper in sorted(self.helpers().items()):
            if not helper.ready:
                continue  # asked next time; nothing is lost by waiting
            try:
                holding[node] = (helper, self.held(helper))
            except HelperError as exc:
                log.info("garbage collection skips node %s this time: %s", node, exc)
        migrations = self.list_migrations()  # after the helpers answered: see the module's docstring
        for node, (helper, held) in holding.items():
            for uid in dead(held, migrations):
                try:
                    answer = self.cleanup(helper, uid)
                except HelperError as exc:
                    log.warning("garbage collection of migration %s on node %s failed: %s", uid, node, exc)
                    continue
                # A restored pod's alias in use is asked about every period: only a round that removed
                # something is worth an info line.
                log.log(
                    logging.INFO if answer.get("deleted") else logging.DEBUG,
                    "garbage collection on node %s: migration %s is over; deleted %s, kept %s, in use %s",
                    node,
                    uid,
                    answer.get("deleted") or [],
                    answer.get("kept") or [],
                    answer.get("inUse") or [],
                )
        for migration, why in expired(migrations, self.clock(), self.default_ttl, self.keep_per_pod):
            meta = migration["metadata"]
            log.info("deleting PodMigration %s/%s: %s", meta["namespace"], meta["name"], why)
            self.delete_migration(migration)

    def loop(self, period: float, stop: threading.Event) -> None:
        """A round every ``period`` seconds until ``stop``; a failed round is logged and the next one tried."""
        while not stop.wait(period):
            try:
                self.round()
            except Exception:
                log.exception("garbage collection round failed; next one in %gs", period)
