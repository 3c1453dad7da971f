"""``python -m podmigration.uninstall``: the chart's pre-delete hook, run before `helm uninstall` removes anything.

While the operator and the helpers still run it: cancels every unfinished PodMigration and waits until each has
ended (rolled back to its source, or finished forward from Finalizing); removes on every node what migrations left
and the managed block in /etc/criu/runc.conf (through each helper's API, with the operator's identity, issued here
from the CA as the operator does); then deletes every PodMigration, their finalizers first, so none is left
blocking a deletion once the operator is gone. What it could not do is logged; it never fails the uninstall.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from .. import api
from ..api import phases
from ..api.types import Obj, annotations_of, phase_of
from ..clients.config import Config
from ..clients.helperclient import HelperClient
from ..clients.kube import Kube, load_config
from ..domain.helpers import HelperError, helpers_from_pods
from ..identity.ca import CertificateAuthority
from ..identity.own import OperatorIdentity
from .housekeeping import dead

log = logging.getLogger("podmigration.uninstall")

#: Seconds between two looks at the migrations being cancelled.
POLL_SECONDS = 2.0


def unfinished(migrations: list[Obj]) -> list[Obj]:
    return [m for m in migrations if not phases.is_terminal(phase_of(m))]


def to_cancel(migrations: list[Obj]) -> list[Obj]:
    """Unfinished PodMigrations not yet asked to cancel (one in Finalizing ignores it and finishes forward)."""
    return [m for m in unfinished(migrations) if annotations_of(m).get(api.CANCEL_ANNOTATION) != "true"]


class Uninstall:
    def __init__(
        self,
        kube: Kube,
        helpers: HelperClient,
        config: Config,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube, self.helpers, self.config = kube, helpers, config
        self.sleep, self.monotonic = sleep, monotonic

    def run(self, wait_seconds: float) -> list[str]:
        """Returns what was left undone (also logged)."""
        undone = self.end_migrations(wait_seconds)
        undone += self.clean_nodes()
        undone += self.delete_migrations()
        for note in undone:
            log.warning("left undone: %s", note)
        return undone

    def end_migrations(self, wait_seconds: float) -> list[str]:
        deadline = self.monotonic() + wait_seconds
        while True:
            migrations = self.kube.list_migrations(None)
            for migration in to_cancel(migrations):
                meta = migration["metadata"]
                log.info(
                    "cancelling PodMigration %s/%s (phase %s)",
                    meta["namespace"],
                    meta["name"],
                    phase_of(migration),
                )
                self.kube.patch_migration(
                    meta["namespace"], meta["name"], {"metadata": {"annotations": {api.CANCEL_ANNOTATION: "true"}}}
                )
            running = unfinished(migrations)
            if not running:
                return []
            if self.monotonic() >= deadline:
                return [
                    f"PodMigration {m['metadata']['namespace']}/{m['metadata']['name']} did not end within "
                    f"{wait_seconds:g}s (phase {(m.get('status') or {}).get('phase')}): its source may stay "
                    "frozen and cut off"
                    for m in running
                ]
            self.sleep(POLL_SECONDS)

    def clean_nodes(self) -> list[str]:
        """Every node: what finished migrations left, then the CRIU options block."""
        undone = []
        helpers = helpers_from_pods(
            self.kube.list_pods(self.config.helper_namespace, api.HELPER_LABEL_SELECTOR), self.config.helper_port
        )
        for node, helper in sorted(helpers.items()):
            try:
                held = self.helpers.held_migrations(helper)
                for uid in dead(held, self.kube.list_migrations(None)):
                    self.helpers.cleanup(helper, uid)
                self.helpers.remove_criu_options(helper)
                log.info("node %s: migrations' leftovers and the CRIU options block removed", node)
            except HelperError as exc:
                undone.append(f"node {node}: {exc}; remove the podmigration block of /etc/criu/runc.conf by hand")
        return undone

    def delete_migrations(self) -> list[str]:
        undone = []
        for migration in self.kube.list_migrations(None):
            meta = migration["metadata"]
            try:
                if meta.get("finalizers"):
                    self.kube.patch_migration(meta["namespace"], meta["name"], {"metadata": {"finalizers": None}})
                self.kube.delete_migration(meta["namespace"], meta["name"], meta["uid"])
            except Exception as exc:
                undone.append(f"PodMigration {meta['namespace']}/{meta['name']} not deleted: {exc}")
        return undone


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    load_config()
    config = Config.from_env()
    if config.ca_dir:
        OperatorIdentity(
            CertificateAuthority(Path(config.ca_dir)), config.tls_dir.parent, config.cert_validity_seconds
        ).issue()
    Uninstall(Kube(), HelperClient(config), config).run(float(os.environ.get("PM_UNINSTALL_WAIT_SECONDS") or 240))
