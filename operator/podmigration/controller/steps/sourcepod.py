"""The source pod's two ends: killed while frozen once the replacement serves, or released (thawed, reconnected,
back in its Services) when the migration rolls back or keeps it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from ...api.types import Obj
from ...domain import fencing, owners
from ...domain.helpers import HelperError
from ..context import Run

log = logging.getLogger(__name__)

#: How long a successful migration waits for the source's kubelet to start stopping the deleted source before
#: it thaws the (already killed) processes anyway.
KUBELET_STOPPING_SECONDS = 10


def kill_source(run: Run, pod: Obj, node: str, replacement: Obj | None) -> None:
    """End the source without letting its processes run again: their state lives on in the replacement.

    SIGKILL is queued while the pod is frozen, which makes the kernel drop any later SIGTERM; only then is
    the pod deleted, so the kubelet (which never restarts a container of a deleted pod) stops it without a
    preStop hook or SIGTERM handler ever running; the thaw waits until the kubelet has begun stopping it
    (its Killing Event), so the death it sees is never taken for a crash to restart from.
    """
    helper, uid, name = run.helper(node), pod["metadata"]["uid"], pod["metadata"]["name"]
    killed = run.deps.helpers.kill(helper, uid, thaw=False).get("killed", 0)
    if replacement is not None:
        owners.strategy_for(pod).hand_over(run.deps.kube, run.namespace, pod, replacement)
    run.deps.kube.delete_pod(run.namespace, name, uid)
    deadline = run.deps.clock() + timedelta(seconds=KUBELET_STOPPING_SECONDS)
    while (
        run.deps.clock() < deadline
        and _source_pod_present(run, name, uid)
        and not any(e.get("reason") == "Killing" for e in run.deps.kube.pod_events(run.namespace, name, uid))
    ):
        run.sleep(run.deps.config.poll_seconds)
    try:
        run.deps.helpers.thaw(helper, uid)
    except HelperError as exc:
        if exc.status != 404:
            raise
        log.info("%s/%s: source %s already gone at the thaw: %s", run.namespace, run.name, name, exc)
    log.info(
        "%s/%s: source pod %s killed while frozen (%s processes) and deleted",
        run.namespace,
        run.name,
        name,
        killed,
    )


def _source_pod_present(run: Run, name: str, uid: str) -> bool:
    pod = run.deps.kube.get_pod(run.namespace, name)
    return pod is not None and pod["metadata"]["uid"] == uid


def release_source(run: Run, pod: Obj, node: str) -> list[str]:
    """Thaw the source, reconnect its network and put it back into Service traffic, as it was before; returns
    the node-helper's refusals.

    Only a pod this migration fenced can have been frozen or cut by it (the fence comes first and is
    removed last), so another migration's pod is never thawed. A call the helper refuses (HTTP 4xx: asked
    again, it answers the same) is not retried: the pod goes back into its Services all the same, and the
    refusal is returned for the outcome to say. Any other failure (helper unreachable, 5xx) is retried.
    """
    patch = fencing.unfence_patch(pod, run.name)
    if patch is None:
        return []
    helper, uid = run.helper(node), pod["metadata"]["uid"]
    calls = (run.deps.helpers.thaw, run.deps.helpers.network_restore)
    refused = [why for call in calls if (why := refusal(call, helper, uid))]
    run.deps.kube.patch_pod(run.namespace, pod["metadata"]["name"], patch)
    return refused


def refusal(call: Callable[..., object], *args: object) -> str | None:
    """Make a node-helper call of the rollback; its refusal (HTTP 4xx) is returned instead of raised."""
    try:
        call(*args)
    except HelperError as exc:
        if exc.status is None or not 400 <= exc.status < 500:
            raise
        log.warning("node-helper refused a rollback step (not retried): %s", exc)
        return str(exc)
    return None
