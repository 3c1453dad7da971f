"""The workload every method moves: the e2e counter holding extra memory, behind its own Service, probed from here.

Each measurement gets a fresh pod and Service and leaves nothing behind: the pods it made (any pod labelled
app=<name>, the moved or recreated one included) and the Service are deleted and waited for, so the next
measurement starts with the memory free (4 GiB pods share 24 GiB with every node)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any, Iterator

import e2elib as lib
from kubernetes.client.rest import ApiException

from .cluster import Cluster
from .prober import Answer, Outage, Prober, outage

PORT = 8080
START_SECONDS = 600  # a 4 GiB ballast is written before the counter listens
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

    def answered_after(self, moment: float, same_process: bool = True, timeout: float = START_SECONDS) -> Answer:
        """Waits for a correct answer later than `moment`: from the original process with a count at least as high
        as any it gave so far, or (same_process=False, a cold restart) from another process."""
        high = max(a.count for a in self.prober.answers if a.token == self.first.token)

        def accept(answer: Answer) -> bool:
            if same_process:
                return answer.at > moment and answer.token == self.first.token and answer.count >= high
            return answer.at > moment and answer.token != self.first.token

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
