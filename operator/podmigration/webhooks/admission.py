"""The admission webhooks the operator serves (chart: templates/webhooks.yaml), wired into kopf.

``eviction`` (validating, pods/eviction): live-migrate opted-in pods instead of evicting them (eviction.py).
``statefulset-handover`` (mutating, pods CREATE): the StatefulSet controller's new pod of a migration being handed
over becomes its restore (handover.py).
``handover-guard`` (validating, pods CREATE by the StatefulSet controller that use checkpoint images or
podmigration.dev/ annotations): allowed only as exactly such a restore (guard.py); every other requester but the
operator is denied those pods by the chart's ValidatingAdmissionPolicy before it gets here.
``ephemeral-guard`` (validating, pods/ephemeralcontainers UPDATE that adds a container to a pod carrying the
podmigration.dev/migration annotation): denied while that migration has not ended (guard.py).
All read the cluster through the same Kube as the migrations.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ..api.types import Obj
from ..domain import eviction, guard, handover, limits
from ..domain.preflight import check_in_cluster

log = logging.getLogger(__name__)


def _pod(body: kopf.Body) -> Obj:
    """The admitted pod's metadata and spec as plain dicts, for the pure decisions."""
    return {"metadata": dict(body.get("metadata") or {}), "spec": dict(body.get("spec") or {})}


@kopf.on.validate(
    "",
    "v1",
    "pods",
    subresource="eviction",
    operations=["CREATE"],
    id="eviction",
    ignore_failures=True,
    side_effects=True,
)
def evict(body: kopf.Body, namespace: str | None, dryrun: bool, memo: kopf.Memo, **_: Any) -> None:
    deps = memo.deps
    name = (body.get("metadata") or {}).get("name") or ""
    if not namespace or not name:
        return
    pod = deps.kube.get_pod(namespace, name)
    if pod is None:
        return
    migrations = deps.kube.list_migrations(namespace)
    cordoned = {n["metadata"]["name"] for n in deps.kube.list_nodes() if (n.get("spec") or {}).get("unschedulable")}
    moved = eviction.moved_by_eviction(pod, migrations, cordoned)
    if moved is not None:
        raise kopf.AdmissionError(
            f"pod {name} was live-migrated away from node {moved['status']['sourceNode']} by "
            f"PodMigration {moved['metadata']['name']}; the pod of that name now is its restore "
            f"on node {pod['spec']['nodeName']}",
            code=404,
        )
    strategy = eviction.wanted(pod, deps.kube.get_namespace(namespace), deps.config.eviction_default)
    if strategy != eviction.MIGRATE:
        return
    _pod, plan = check_in_cluster(deps.kube, {"podName": name}, namespace, deps.config.helper_namespace, around=None)
    decision = eviction.decide(pod, strategy, migrations, plan.refusals, deps.clock())
    if decision.event and not dryrun:
        try:
            deps.kube.post_event(pod, "Warning", decision.event[0], decision.event[1])
        except Exception as exc:  # a lost Event must not turn the decision into a webhook failure
            log.warning("could not post Event %s on pod %s/%s: %s", decision.event[0], namespace, name, exc)
    if decision.allow:
        log.info("eviction of %s/%s allowed: %s", namespace, name, decision.event[1] if decision.event else "opted out")
        return
    message = decision.message
    if decision.start and not dryrun:
        full = limits.queue_full(None, namespace, migrations, deps.config.max_queued_per_namespace)
        if full:  # a drain retries a 429: the pod moves once the queue has room
            raise kopf.AdmissionError(f"pod {name} waits to be live-migrated: {full}", code=429)
        created = deps.kube.create_migration(namespace, eviction.migration_for(pod))
        message = f"{message} (PodMigration {created['metadata']['name']})"
        log.info(
            "eviction of %s/%s: live-migrating it with PodMigration %s", namespace, name, created["metadata"]["name"]
        )
    raise kopf.AdmissionError(message, code=429)


@kopf.on.mutate("", "v1", "pods", operations=["CREATE"], id="statefulset-handover")
def statefulset_handover(body: kopf.Body, namespace: str | None, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    deps = memo.deps
    pod = _pod(body)
    migration = handover.migration_for(pod["metadata"].get("name", ""), deps.kube.list_migrations(namespace))
    if migration is None:
        return  # matched only while listed; the migration ended meanwhile: the pod starts as its owner made it
    restored = handover.restore_of(pod, migration, deps.config.image)
    patch.metadata["annotations"] = restored["metadata"]["annotations"]
    patch.spec.update(restored["spec"])
    for key in set(pod["spec"]) - set(restored["spec"]):
        patch.spec[key] = None
    log.info(
        "pod %s/%s created by its owner becomes the restore of PodMigration %s",
        namespace,
        pod["metadata"].get("name"),
        migration["metadata"]["name"],
    )


def _deny(denial: str | None, what: str) -> None:
    """Answers 403 with the guard's reason (and logs it), or lets the request through."""
    if denial:
        log.warning("%s denied: %s", what, denial)
        raise kopf.AdmissionError(denial, code=403)


@kopf.on.validate("", "v1", "pods", operations=["CREATE"], id="handover-guard")
def handover_guard(body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    pod = _pod(body)
    _deny(
        guard.handover_denial(pod, memo.deps.kube.list_migrations(namespace)),
        f"pod {namespace}/{pod['metadata'].get('name')}",
    )


@kopf.on.validate("", "v1", "pods", subresource="ephemeralcontainers", operations=["UPDATE"], id="ephemeral-guard")
def ephemeral_guard(body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any) -> None:
    pod = _pod(body)
    _deny(
        guard.ephemeral_denial(pod, memo.deps.kube.list_migrations(namespace)),
        f"ephemeral container on pod {namespace}/{pod['metadata'].get('name')}",
    )
