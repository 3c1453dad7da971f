"""Preparing's last step: the pod's base images on the target, pulled by its kubelet or copied between helpers."""

from __future__ import annotations

from ... import api
from ...api import phases
from ...api.types import Obj
from ...domain import baseimages, podspec
from ...domain.helpers import Helper
from ..context import Run
from ..runtime import Interrupt

#: The pre-pull pod's activeDeadlineSeconds at most: the kubelet ends it even if the operator is gone meanwhile.
_MAX_DEADLINE_SECONDS = 3600


def ensure(run: Run, migration: Obj, pod: Obj, target: Helper, source: Helper) -> Obj:
    """Nothing is touched yet: a refusal (ImageNotOnTarget, ImagePullFailed) needs no rollback of the pod."""
    if run.deps.config.base_images == "copy":
        images = podspec.base_images(pod)
        migration = run.progress(migration, f"making sure {len(images)} base image(s) are on {target.node}")
        run.deps.helpers.ensure_images(target, images, source, timeout=run.remaining(migration))
        return migration
    return _pull(run, migration, pod, target.node)


def _pull(run: Run, migration: Obj, pod: Obj, node: str) -> Obj:
    uid = migration["metadata"]["uid"]
    name = baseimages.prepull_name(uid)
    migration = run.progress(migration, f"the kubelet of {node} gets the base images with the pod's credentials")
    try:
        prepull = run.deps.kube.get_pod(run.namespace, name)
        if prepull is None:
            deadline = int(min(run.remaining(migration), _MAX_DEADLINE_SECONDS))
            body = baseimages.prepull_pod(
                pod,
                baseimages.containers_to_pull(pod),
                migration=migration,
                target_node=node,
                deadline_seconds=max(deadline, 1),
            )
            prepull = run.deps.kube.create_pod(run.namespace, body)
        elif (prepull["metadata"].get("labels") or {}).get(api.PREPULL_LABEL) != uid:
            raise RuntimeError(f"a pod named {name} already exists and was not created by this migration")
        while (done := baseimages.outcome(prepull)) is None:
            migration = run.pause(run.deps.config.poll_seconds)
            current = run.deps.kube.get_pod(run.namespace, name)
            if current is None:
                raise RuntimeError(f"pod {name}, which pulls the base images on {node}, disappeared")
            prepull = current
    finally:
        discard_prepull(run, migration)
    if done.reason:
        raise Interrupt(phases.FAILED, done.reason, done.message)
    return migration


def discard_prepull(run: Run, migration: Obj) -> None:
    """Idempotent, by name: also for the rollback of a migration whose operator died while its kubelet pulled."""
    run.deps.kube.delete_pod(run.namespace, baseimages.prepull_name(migration["metadata"]["uid"]), grace_seconds=0)
