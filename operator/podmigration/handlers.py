"""kopf registration: one daemon per unfinished PodMigration runs its state machine.

A daemon (rather than create/update handlers) because a migration is one long, ordered job
whose state lives in ``status.phase``; kopf starts a daemon for every unfinished PodMigration
when the operator starts, which is exactly the resume-after-restart the design asks for, and
stops it once the phase is terminal. Run with ``kopf run -m podmigration.handlers --all-namespaces``
or ``python -m podmigration``.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import kopf

from . import admission  # noqa: F401  (registers the admission webhooks)
from . import api, phases
from .identity import signer  # noqa: F401  (registers the helper certificate signer)
from .identity.ca import CertificateAuthority
from .identity.csrcheck import HelperPods
from .identity.own import OperatorIdentity
from .config import Config
from .events import kopf_events
from .helperclient import HelperClient
from .kube import Kube, load_config
from .migration import Deps, MigrationRunner


#: Where the admission webhooks listen (the chart's Service maps 443 to it).
WEBHOOK_PORT = 8443


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # The CRD schema has no room for kopf's status fields: keep kopf's bookkeeping in annotations.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=api.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=api.GROUP)
    load_config()
    config = Config.from_env()
    # Set here rather than in kopf.run() so that ``kopf run -m podmigration.handlers`` behaves the same.
    if config.peering:
        # Leader election: every replica announces itself in the peering object; all but the one with the
        # highest priority pause (kopf stops their daemons, which leave the status for the next run). Equal
        # priorities would pause them all, hence a random one per process.
        settings.peering.name = config.peering
        settings.peering.clusterwide = True
        settings.peering.mandatory = True
        settings.peering.priority = random.SystemRandom().randint(1, 2**31 - 1)
        settings.peering.lifetime = config.peering_lifetime
    else:
        settings.peering.standalone = True
    # Every running migration is a sync daemon that holds one thread of kopf's executor until it ends;
    # kopf's default pool (min(32, CPUs + 4)) would silently queue migrations beyond that.
    settings.execution.max_workers = config.max_concurrent_migrations
    kube = Kube()
    if config.ca_dir:
        _start_identities(config, kube, memo)
    memo.deps = Deps(kube=kube, helpers=HelperClient(config), config=config, events=kopf_events)
    if config.webhook_tls_dir:
        # The chart's webhook configurations name the Service in front of this port and carry its CA.
        tls = Path(config.webhook_tls_dir)
        settings.admission.server = kopf.WebhookServer(addr="0.0.0.0", port=WEBHOOK_PORT,
                                                       certfile=str(tls / "tls.crt"), pkeyfile=str(tls / "tls.key"))


def _start_identities(config: Config, kube: Kube, memo: kopf.Memo) -> None:
    """The operator's own certificate (before any helper call) and the signer of the helpers' certificates."""
    ca = CertificateAuthority(Path(config.ca_dir))
    own = OperatorIdentity(ca, config.tls_dir.parent, config.cert_validity_seconds)
    own.issue()
    threading.Thread(target=own.keep_renewed, args=(threading.Event(),), name="identity-renewal", daemon=True).start()
    helpers = HelperPods(config.helper_namespace, config.helper_service_account, config.helper_daemonset)
    memo.signer = signer.HelperSigner(kube, ca, helpers, config.signer_name, config.cert_validity_seconds)


def _unfinished(status: kopf.Status, **_: Any) -> bool:
    return not phases.is_terminal(status.get("phase"))


@kopf.daemon(api.GROUP, api.VERSION, api.PLURAL, when=_unfinished, cancellation_polling=5)
def migrate(name: str, namespace: str, stopped: kopf.DaemonStopped, memo: kopf.Memo, **_: Any) -> None:
    MigrationRunner(memo.deps, namespace, name).run(stopped)
