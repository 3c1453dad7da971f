"""Preflight at admission: a PodMigration that Preparing would refuse for good is refused when it is created, with
the refusal's reason and message, so ``kubectl apply --dry-run=server`` answers before anything exists (as KubeVirt
refuses a migration of a non-migratable VM). The same code as Preparing (preflight.check_in_cluster) decides.

A namespace that already has ``operator.limits.maxQueuedPerNamespace`` migrations waiting is refused too
(``QueueFull``; Pending refuses the same should one get through while the webhook was down). Otherwise only refusals
that waiting cannot lift are decided here: a missing or restarting helper (Preparing waits for it), a pod that is not
Running yet, a node that is not Ready, and the placement rules that depend on other pods (inter-pod affinity,
topology spread, room on the target: those pods come and go; they are not even read, a list of every pod of the
cluster would slow every admission) are left to Preparing, which refuses them with the same reason if they last.
The webhook fails open (chart: <release>-preflight, failurePolicy Ignore): while the operator is down, a
PodMigration is admitted and Preparing judges it. The requester's own rights are judged first, by the policy
<release>-migration-guard, so this tells nothing about a pod the requester may not delete. The denial is a 403, as
Kubernetes' own admission denials are (``kubectl migrate`` exits 1, as for a migration that failed).
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from .. import api
from ..domain import limits
from ..domain.preflight import check_in_cluster

log = logging.getLogger(__name__)

#: Refusals of Preparing that do not change by waiting.
DECIDED_AT_ADMISSION = frozenset(
    {
        "PodNotFound",
        "SameNode",
        "TargetNotFound",
        "UnsupportedVolume",
        "HostNetwork",
        "UnsupportedSidecar",
        "KeepSourceOwned",
    }
)


@kopf.on.validate(api.GROUP, api.VERSION, api.PLURAL, operations=["CREATE"], id="preflight")
def preflight_at_admission(spec: kopf.Spec, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    if not namespace or not spec.get("podName"):
        return
    deps = memo.deps
    full = limits.queue_full(
        None, namespace, deps.kube.list_migrations(namespace), deps.config.max_queued_per_namespace
    )
    if full:
        log.info("PodMigration for %s/%s refused at admission: %s", namespace, spec.get("podName"), full)
        raise kopf.AdmissionError(f"{limits.QUEUE_FULL}: {full}", code=403)
    _pod, plan = check_in_cluster(deps.kube, dict(spec), namespace, deps.config.helper_namespace, around=None)
    refused = [r for r in plan.refusals if r.reason in DECIDED_AT_ADMISSION]
    if refused:
        message = "; ".join(f"{r.reason}: {r.message}" for r in refused)
        log.info("PodMigration for %s/%s refused at admission: %s", namespace, spec.get("podName"), message)
        raise kopf.AdmissionError(message, code=403)
