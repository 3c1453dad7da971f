"""A flood of idle connections to a helper's port (host network: any pod or host reaches it) does not stop a
migration to that node: the helper closes each over its caps at once and the rest after its handshake timeout,
and it neither restarts nor runs out of memory (node-helper/nodehelper/http/connlimits.py)."""

from __future__ import annotations

import resource
import selectors
import socket
import threading
import time

from e2elib import NAMESPACE, OPERATOR_NAMESPACE, SOURCE_NODE, TARGET_NODE, counter_pod
from kubernetes import client
from test_migration import migrate_and_check

HELPER_SELECTOR = "app.kubernetes.io/name=podmigration-node-helper"
CONNECTIONS = 2000
#: Longest the helper may hold a connection that never speaks (first byte, handshake, header timeouts: 5 s each by
#: default), with a generous margin for a loaded machine.
HELD_AT_MOST = 60.0
REFILL = 5.0


class Flood:
    """Keeps up to `size` idle TCP connections open to `address`, opening again (every REFILL seconds, the helper's
    header timeout) in place of those the helper closed, until stopped; counts the closes."""

    def __init__(self, address: tuple[str, int], size: int) -> None:
        self.address = address
        self.size = size
        self.open = selectors.DefaultSelector()
        self.stop = threading.Event()
        self.closed_by_helper = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            while len(self.open.get_map()) < self.size and not self.stop.is_set():
                try:
                    sock = socket.create_connection(self.address, timeout=5)
                except OSError:  # refused before accept(): also bounded; try again next round
                    break
                sock.setblocking(False)
                self.open.register(sock, selectors.EVENT_READ)
            self.reap()
            self.stop.wait(REFILL)

    def reap(self, timeout: float = 0) -> None:
        """Closes the connections the helper closed: an idle client is never sent a byte, so readable means EOF or
        a reset."""
        for key, _ in self.open.select(timeout):
            self.open.unregister(key.fileobj)
            key.fileobj.close()
            self.closed_by_helper += 1

    def finish(self) -> int:
        """Stops opening, waits for the helper to close what is still open; returns how many it did not."""
        self.stop.set()
        self.thread.join(30)
        deadline = time.monotonic() + HELD_AT_MOST
        while self.open.get_map() and time.monotonic() < deadline:
            self.reap(0.5)
        left = list(self.open.get_map().values())
        for key in left:
            key.fileobj.close()
        return len(left)


def helper_on(core: client.CoreV1Api, node: str) -> client.V1Pod:
    [pod] = [
        p
        for p in core.list_namespaced_pod(OPERATOR_NAMESPACE, label_selector=HELPER_SELECTOR).items
        if p.spec.node_name == node
    ]
    return pod


def helper_port(pod: client.V1Pod) -> int:
    env = {e.name: e.value for c in pod.spec.containers for e in c.env or []}
    return int(env["PM_HELPER_PORT"])


def restarts(pod: client.V1Pod) -> int:
    return sum(s.restart_count for s in pod.status.container_statuses or [])


def test_a_migration_to_a_flooded_helper_succeeds(core, custom, pods, unique):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, CONNECTIONS + 1024)), hard))
    helper = helper_on(core, TARGET_NODE)
    source = f"flood-{unique}"
    core.create_namespaced_pod(NAMESPACE, counter_pod(source, SOURCE_NODE))
    pods.append(source)

    flood = Flood((helper.status.host_ip, helper_port(helper)), CONNECTIONS)
    flood.thread.start()
    try:
        migrate_and_check(core, custom, source, {"counter": 8080})
    finally:
        left = flood.finish()
    assert left == 0, f"{left} idle connections still open after {HELD_AT_MOST} s"
    assert flood.closed_by_helper >= CONNECTIONS
    after = helper_on(core, TARGET_NODE)
    assert after.metadata.uid == helper.metadata.uid and restarts(after) == restarts(helper), "the helper restarted"
