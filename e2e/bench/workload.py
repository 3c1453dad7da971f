"""The workload every method moves: the e2e counter holding extra memory, behind its own Service, probed from here.

Each measurement gets a fresh pod and Service and leaves nothing behind: the pods it made (any pod labelled
app=<name>, the moved or recreated one included) and the Service are deleted and waited for, so the next
measurement starts with the memory free (4 GiB pods share 24 GiB with every node)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import e2elib as lib
from kubernetes.client.rest import ApiException

from .cluster import Cluster, threads
from .prober import Answer, Outage, Prober, outage

PORT = 8080
START_SECONDS = 600  # a 4 GiB ballast is written before the counter listens
MOVED_SECONDS = 300  # from the end of a move to the moved process's first answer (a 4 GiB restore takes ~20 s)
IDLE, REWRITE = "idle", "rewrite"


@dataclass(frozen=True)
class Workload:
    """The counter with `size_mb` MiB of ballast, either written once (idle) or written again all the time at
    `rewrite_mbps` MiB/s (rewrite)."""

    size_mb: int
    pattern: str
    rewrite_mbps: float

    @property
    def tag(self) -> str:
        return f"{self.size_mb}m-{self.pattern}"

    def pod(self, name: str, node: str, app: str | None = None) -> dict[str, Any]:
        """The counter pod `name` pinned to `node`, labelled app=<app> (default: its own name)."""
        spec = lib.counter_pod(name, node, ballast_mb=self.size_mb)
        spec["metadata"]["labels"] = {"app": app or name}
        rate = self.rewrite_mbps if self.pattern == REWRITE else 0
        spec["spec"]["containers"][0]["env"].append({"name": "COUNTER_REWRITE_MBPS", "value": str(rate)})
        return spec


@dataclass
class Serving:
    """A counter answering through its Service, with a prober asking since before the move."""

    name: str
    prober: Prober
    first: Answer

    def answered_after(self, moment: float, same_process: bool = True, timeout: float = MOVED_SECONDS) -> Answer:
        """Waits for an answer later than `moment` from the original process (or, for a cold restart, another).
        Callers pass a moment after which only the moved process can answer."""

        def accept(answer: Answer) -> bool:
            return answer.at > moment and (answer.token == self.first.token) == same_process

        return self.prober.wait_for(f"after {time.strftime('%H:%M:%S', time.localtime(moment))}", accept, timeout)

    def outage(self, start: float, keep_state: bool = True) -> Outage:
        return outage(self.prober.answers, start, keep_state)


@contextlib.contextmanager
def serving(cluster: Cluster, name: str, workload: Workload) -> Iterator[Serving]:
    """The counter `name` on the source node behind a Service of the same name, answering the prober."""
    core = cluster.core
    prober = None
    try:
        core.create_namespaced_pod(lib.NAMESPACE, workload.pod(name, cluster.source))
        prober = Prober(lib.create_service(core, name, PORT), PORT)
        first = prober.wait_for("at all", lambda answer: True, START_SECONDS)
        yield Serving(name, prober, first)
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; {describe(cluster, name)}") from None
    finally:
        if prober:
            prober.stop()
        remove(cluster, name)


def remove(cluster: Cluster, app: str) -> None:
    """Deletes the pods labelled app=<app> and the Service <app>, and waits until the pods are gone."""
    core = cluster.core
    core.delete_collection_namespaced_pod(lib.NAMESPACE, label_selector=f"app={app}", grace_period_seconds=0)
    with contextlib.suppress(ApiException):
        core.delete_namespaced_service(app, lib.NAMESPACE)
    lib.no_pods_left(core, app)


def describe(cluster: Cluster, app: str) -> str:
    """The pods labelled app=<app>: their containers' states (the last one's too, and its log's end when the
    container was restarted) and the threads of their processes: why a workload no longer answers, for the
    failure message."""
    found = []
    for pod in cluster.core.list_namespaced_pod(lib.NAMESPACE, label_selector=f"app={app}").items:
        for status in pod.status.container_statuses or []:
            running = status.state.running and status.container_id
            tasks = (
                threads(
                    pod.spec.node_name,
                    f"$(crictl inspect -o go-template --template '{{{{.info.pid}}}}' "
                    f"{status.container_id.split('://', 1)[1]})",
                )
                if running
                else ""
            )
            waiting = status.state.waiting.message if status.state.waiting else ""
            found.append(
                f"{pod.metadata.name} on {pod.spec.node_name} {pod.status.phase}: {status.name}="
                f"{lib.describe_state(status.state)} {(waiting or '')[:500]}, restarts {status.restart_count}"
                f", last {lib.describe_state(status.last_state)} {tasks}"
            )
            if status.restart_count:
                with contextlib.suppress(ApiException):
                    found.append(
                        "its last log: "
                        + cluster.core.read_namespaced_pod_log(
                            pod.metadata.name, lib.NAMESPACE, container=status.name, previous=True
                        )[-1500:]
                    )
    return "; ".join(found) or f"no pod app={app}"
