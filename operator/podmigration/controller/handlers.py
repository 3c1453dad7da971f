"""kopf registration: one daemon per unfinished PodMigration runs its state machine.

A daemon (rather than create/update handlers) because a migration is one long, ordered job
whose state lives in ``status.phase``; kopf starts a daemon for every unfinished PodMigration
when the operator starts, which is exactly the resume-after-restart the design asks for, and
stops it once the phase is terminal. Run with ``kopf run -m podmigration.handlers --all-namespaces``
or ``python -m podmigration``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import kopf

from .. import api
from ..api import phases
from ..clients.config import Config
from ..clients.events import kopf_events
from ..clients.helperclient import HelperClient
from ..clients.kube import Kube, load_config
from ..domain.helpers import helpers_from_pods
from ..domain.status import utcnow
from ..identity import bootstrap, signer
from ..identity.ca import CertificateAuthority
from ..identity.csrcheck import HelperPods
from ..identity.own import OperatorIdentity
from . import faults
from .context import Deps
from .housekeeping import Housekeeper
from .metrics import serve as serve_metrics
from .threads import MigrationThreads

#: The source component of the operator's Events.
REPORTING_COMPONENT = "podmigration-operator"


#: Above any start time in microseconds since the epoch, so that every priority is positive.
_PRIORITY_CEILING = 2**62


def seniority(started_ns: int) -> int:
    """A peering priority that is higher the earlier the process started."""
    return _PRIORITY_CEILING - started_ns // 1000


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # The CRD schema has no room for kopf's status fields: keep kopf's bookkeeping in annotations.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=api.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=api.GROUP)
    # Events say they come from the operator (kubectl describe: "From: podmigration-operator"), not from kopf.
    settings.posting.reporting_component = REPORTING_COMPONENT
    load_config()
    # The CA and the webhooks' certificate: created at the first start, shared by the replicas (identity/bootstrap.py).
    bootstrap.run()
    config = Config.from_env()
    # Set here rather than in kopf.run() so that ``kopf run -m podmigration.handlers`` behaves the same.
    if config.peering:
        # Leader election: every replica announces itself in the peering object; all but the one with the
        # highest priority pause (kopf stops their daemons, which leave the status for the next run). The oldest
        # process leads: a replica that restarts ranks below the one that took over while it was gone, so it waits
        # instead of preempting it. A preemption would overlap two runners of one migration: a paused daemon stops
        # only when its step next checks the stop flag, and meanwhile both call the helpers (a cleanup of one
        # discarded the other's checkpoint). Start times in microseconds are never equal (equal would pause all).
        settings.peering.name = config.peering
        settings.peering.clusterwide = True
        settings.peering.mandatory = True
        settings.peering.priority = seniority(time.time_ns())
        settings.peering.lifetime = config.peering_lifetime
    else:
        settings.peering.standalone = True
    serve_metrics(config.metrics_port)
    kube = Kube()
    if config.ca_dir:
        _start_identities(config, kube, memo)
    memo.deps = Deps(kube=kube, helpers=HelperClient(config), config=config, events=kopf_events, faults=faults)
    # The migrations' steps run on threads of their own (threads.py); kopf's executor, at its default size, is left
    # to the webhooks and the signer.
    memo.migrations = MigrationThreads(memo.deps, config.max_concurrent_migrations)
    _start_housekeeping(config, kube, memo.deps.helpers)


def _start_identities(config: Config, kube: Kube, memo: kopf.Memo) -> None:
    """The operator's own certificate (before any helper call) and the signer of the helpers' certificates."""
    ca = CertificateAuthority(Path(config.ca_dir))
    own = OperatorIdentity(ca, config.tls_dir.parent, config.cert_validity_seconds)
    own.issue()
    threading.Thread(target=own.keep_renewed, args=(threading.Event(),), name="identity-renewal", daemon=True).start()
    helpers = HelperPods(config.helper_namespace, config.helper_service_account, config.helper_daemonset)
    memo.signer = signer.HelperSigner(kube, ca, helpers, config.signer_name, config.cert_validity_seconds)


def _start_housekeeping(config: Config, kube: Kube, helpers: HelperClient) -> None:
    """Garbage collection every operator.gcPeriodSeconds, in a thread of its own (housekeeping.py: safe to run in
    every replica at once)."""
    keeper = Housekeeper(
        list_migrations=lambda: kube.list_migrations(None),
        delete_migration=lambda m: kube.delete_migration(
            m["metadata"]["namespace"], m["metadata"]["name"], m["metadata"]["uid"]
        ),
        helpers=lambda: helpers_from_pods(
            kube.list_pods(config.helper_namespace, api.HELPER_LABEL_SELECTOR), config.helper_port
        ),
        held=lambda helper: helpers.held_migrations(helper),
        cleanup=lambda helper, uid: helpers.cleanup(helper, uid),
        clock=utcnow,
        default_ttl=config.ttl_seconds_after_finished,
        keep_per_pod=config.finished_per_pod,
    )
    threading.Thread(
        target=keeper.loop, args=(config.gc_period_seconds, threading.Event()), name="housekeeping", daemon=True
    ).start()


def _unfinished(status: kopf.Status, **_: Any) -> bool:
    return not phases.is_terminal(status.get("phase"))


@kopf.daemon(api.GROUP, api.VERSION, api.PLURAL, when=_unfinished, cancellation_polling=5)
async def migrate(name: str, namespace: str | None, stopped: kopf.DaemonStopped, memo: kopf.Memo, **_: Any) -> None:
    """Async, so that it holds none of kopf's threads: the steps run on the migrations' own (threads.py)."""
    assert namespace, "PodMigration is a namespaced kind"
    await memo.migrations.drive(namespace, name, stopped)
