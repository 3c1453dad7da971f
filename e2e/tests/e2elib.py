"""Helpers of the end-to-end suite and the benchmark: the cluster from KUBECONFIG, a way into its nodes, counters."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

from kubernetes import client, watch

REPO = Path(__file__).resolve().parents[2]
NODE_EXEC = os.environ.get("PM_E2E_NODE_EXEC", f"{REPO}/e2e/cluster/node-exec {{node}}")
SOURCE_NODE, TARGET_NODE = os.environ.get("PM_E2E_NODES", "worker-1,worker-2").split(",")
COUNTER_IMAGE = os.environ.get("PM_E2E_COUNTER_IMAGE", "localhost/pm-counter:e2e")
REDIS_IMAGE = os.environ.get("PM_E2E_REDIS_IMAGE", "localhost/pm-redis:e2e")
NAMESPACE = os.environ.get("PM_E2E_NAMESPACE", "default")
OPERATOR_NAMESPACE = os.environ.get("PM_E2E_OPERATOR_NAMESPACE", "podmigration-system")
GROUP, VERSION, PLURAL = "podmigration.dev", "v1alpha1", "podmigrations"
TERMINAL = {"Succeeded", "Failed", "Cancelled"}
# The node-helper's archive store (chart value nodeHelper.workDir, inside the kubelet's checkpoint directory).
ARCHIVES = "/var/lib/kubelet/checkpoints/podmigration/archives"
#: The helper's work directory (the chart's nodeHelper.workDir), inside the kubelet's checkpoint directory.
WORK_DIR = ARCHIVES.rsplit("/", 1)[0]


def node_exec(node: str, *cmd: str, stdin: bytes | None = None, check: bool = True) -> bytes:
    """Runs a command inside a node (PM_E2E_NODE_EXEC, `{node}` replaced) and returns its stdout."""
    argv = shlex.split(NODE_EXEC.format(node=node)) + list(cmd)
    done = subprocess.run(argv, input=stdin, capture_output=True, timeout=300)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    return done.stdout


def counter_pod(name: str, node: str, containers: dict[str, int] | None = None, image: str = COUNTER_IMAGE,
                ballast_mb: int = 0) -> dict[str, Any]:
    """A BestEffort pod of in-memory counters (container name -> TCP port) pinned to a node; `ballast_mb` more
    memory per counter (Guaranteed pods cannot run on these machines, see e2e/README.md)."""
    containers = containers or {"counter": 8080}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "nodeName": node,
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": cname,
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "env": [{"name": "COUNTER_PORT", "value": str(port)}, {"name": "COUNTER_NAME", "value": cname},
                            {"name": "COUNTER_BALLAST_MB", "value": str(ballast_mb)}],
                    "ports": [{"containerPort": port}],
                }
                for cname, port in containers.items()
            ],
        },
    }


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 120, interval: float = 0.5) -> Any:
    """Polls until probe() returns something truthy; fails with `what` and the last value otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def running_pod(core: client.CoreV1Api, name: str, timeout: float = 120, ready: bool = True) -> client.V1Pod:
    """Waits until the pod is Running with every container started (and Ready, unless ready=False)."""
    def probe() -> client.V1Pod | None:
        pod = core.read_namespaced_pod(name, NAMESPACE)
        if pod.status.phase in ("Failed", "Succeeded"):
            raise AssertionError(f"pod {name} ended: {pod.status}")
        statuses = pod.status.container_statuses or []
        started = statuses and all(s.ready or (not ready and s.state.running) for s in statuses)
        return pod if pod.status.phase == "Running" and started else None

    return wait_for(f"pod {name} Running{' and Ready' if ready else ''}", probe, timeout)


def read_counter(ip: str, port: int = 8080, timeout: float = 30) -> dict[str, Any]:
    """One reading of a counter through its TCP service; retried while the service is not reachable yet."""
    def probe() -> dict[str, Any] | None:
        try:
            with socket.create_connection((ip, port), timeout=2) as conn:
                return json.loads(conn.makefile().readline())
        except (OSError, ValueError):
            return None

    return wait_for(f"counter at {ip}:{port}", probe, timeout)


def start_migration(custom: client.CustomObjectsApi, pod: str, target: str | None = None,
                    annotations: dict[str, str] | None = None, **spec: Any) -> str:
    """Creates a PodMigration for `pod` and returns its name."""
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "PodMigration",
            "metadata": {"generateName": f"{pod}-", "annotations": annotations or {}}, "spec": {"podName": pod, **spec}}
    if target:
        body["spec"]["targetNode"] = target
    return custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)["metadata"]["name"]


def finished_migration(custom: client.CustomObjectsApi, name: str, timeout: float = 240) -> dict[str, Any]:
    """Waits for the PodMigration to reach a terminal phase and returns it."""
    def probe() -> dict[str, Any] | None:
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
        return obj if obj.get("status", {}).get("phase") in TERMINAL else None

    return wait_for(f"PodMigration {name} to finish", probe, timeout)


def leftovers(node: str) -> list[str]:
    """Checkpoint archives (partial uploads included), checkpoint images, archive links and frozen cgroups a migration
    could leave on a node."""
    out = node_exec(node, "sh", "-c",
                    # files only, at any depth: a helper's own (empty) directories there are not leftovers
                    f"find {ARCHIVES} -type f 2>/dev/null; find /var/lib/kubelet/checkpoints -path {WORK_DIR} -prune "
                    "-o -type f -print 2>/dev/null || true;"
                    "buildah images --format '{{.Name}}' 2>/dev/null | grep podmigration-checkpoint || true;"
                    # links from an image id to an archive in CRI-O's working directory (restoreFrom: archive)
                    "find / -maxdepth 1 -type l -regextype posix-extended -regex '/[0-9a-f]{64}' 2>/dev/null || true;"
                    # cgroup v1 freezer and cgroup v2: a pod left frozen (on this cluster the nodes share one tree)
                    "find /sys/fs/cgroup -name freezer.state -path '*pod*' -exec grep -lxE 'FROZEN|FREEZING' {} + "
                    "2>/dev/null || true; find /sys/fs/cgroup -name cgroup.freeze -path '*pod*' -exec grep -lx 1 {} + "
                    "2>/dev/null || true")
    return [line for line in out.decode().split() if line]


def pod_gone(core: client.CoreV1Api, name: str, timeout: float = 90) -> None:
    wait_for(f"pod {name} deleted",
             lambda: name not in {p.metadata.name for p in core.list_namespaced_pod(NAMESPACE).items}, timeout)


def restored_flags(node: str, pod: client.V1Pod) -> dict[str, bool]:
    """CRI-O's own word, per container, on whether it was restored from a checkpoint."""
    flags = {}
    for status in pod.status.container_statuses:
        info = json.loads(node_exec(node, "crictl", "inspect", status.container_id.split("://", 1)[1]))["info"]
        flags[status.name] = info.get("restored") is True
    return flags


def slow_to_be_ready(core: client.CoreV1Api, name: str) -> client.V1Pod:
    """A running counter whose replacement cannot become Ready for an hour: a migration of it reaches Restoring,
    then times out, so the rollback runs after the checkpoint, the transfer and the restore."""
    spec = counter_pod(name, SOURCE_NODE)
    spec["spec"]["containers"][0]["readinessProbe"] = {"tcpSocket": {"port": 8080}, "initialDelaySeconds": 3600}
    core.create_namespaced_pod(NAMESPACE, spec)
    return running_pod(core, name, ready=False)


def assert_rolled_back(core: client.CoreV1Api, status: dict, pod: client.V1Pod, before: dict,
                       outcome: tuple[str, str] = ("Failed", "Timeout")) -> None:
    """The migration ended in `outcome` (phase, reason) after Transferring and the source is as it was: same pod,
    labels back, thawed, the same process, no replacement, nothing left on the nodes."""
    assert (status["phase"], status["reason"]) == outcome, status
    assert "Transferring" in [p["phase"] for p in status["phaseTransitions"]], status["phaseTransitions"]
    name = pod.metadata.name
    after = core.read_namespaced_pod(name, NAMESPACE)
    assert (after.metadata.uid, after.spec.node_name) == (pod.metadata.uid, SOURCE_NODE)
    assert after.metadata.labels == pod.metadata.labels, "the source is still fenced out of its Services"
    first = read_counter(pod.status.pod_ip)
    wait_for("the source counter to move on (thawed)", lambda: read_counter(pod.status.pod_ip)["count"] > first["count"])
    assert first["token"] == before["token"]
    assert [p.metadata.name for p in core.list_namespaced_pod(NAMESPACE, label_selector=f"app={name}").items] == [name]
    assert leftovers(SOURCE_NODE) == [] and leftovers(TARGET_NODE) == []


# --- Workloads with open connections and volumes (e2e/images: pm-redis, seqwriter.py, linkclient.py) ---------------

def script_pod(name: str, node: str, script: str, env: dict[str, str] | None = None, port: int = 8080,
               grace: int = 1) -> dict[str, Any]:
    """A BestEffort pod running /app/<script>.py of the workload image (seqwriter, linkclient, counter) as its one
    container `app`, pinned to a node."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "nodeName": node,
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": grace,
            "containers": [{
                "name": "app",
                "image": COUNTER_IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "command": ["python3", "-u", f"/app/{script}.py"],
                "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
                "ports": [{"containerPort": port}],
            }],
        },
    }


def seqwriter_pod(name: str, node: str, medium: str = "", tick: float = 0.05, grace: int = 30,
                  access: str = "wronly") -> dict[str, Any]:
    """A seqwriter whose file is /data/seq.txt in the emptyDir `data` (medium "" = node disk, "Memory" = tmpfs),
    opened O_WRONLY|O_APPEND like a log (access="rdwr": O_RDWR|O_APPEND). Its grace period is long on purpose: a
    graceful stop always gives its SIGTERM handler time to leave a trace."""
    spec = script_pod(name, node, "seqwriter", {"SEQ_FILE": "/data/seq.txt", "SEQ_TICK": str(tick),
                                                "SEQ_OPEN": access}, grace=grace)
    spec["spec"]["volumes"] = [{"name": "data", "emptyDir": {"medium": medium} if medium else {}}]
    spec["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    return spec


def emptydir_file(node: str, pod_uid: str, volume: str, path: str) -> bytes:
    """A file of a pod's emptyDir as the node holds it (disk or tmpfs: both are mounted at the same place)."""
    return node_exec(node, "cat", f"/var/lib/kubelet/pods/{pod_uid}/volumes/kubernetes.io~empty-dir/{volume}/{path}")


def check_sequence(data: bytes, context: Any = None) -> int:
    """The seqwriter file holds every number from 1 to its last exactly once, in order (no gap, no duplicate, no
    SIGTERM trace); returns the last number. A partly written last line is ignored (the writer may be mid-write).
    `context` (e.g. the PodMigration's status.volumes) goes into the failure messages."""
    lines = data.decode().split("\n")
    complete = lines[:-1]  # after the last newline: empty or a line being written
    assert "SIGTERM" not in complete, (f"the seqwriter's SIGTERM handler ran on this file (a graceful stop, not a "
                                       f"kill); {context}")
    numbers = [int(line) for line in complete]
    bad = [(i + 1, n) for i, n in enumerate(numbers) if n != i + 1]
    assert not bad, (f"{len(numbers)} lines, first out of sequence at line {bad[0][0]}: {bad[0][1]} "
                     f"(around: {numbers[max(0, bad[0][0] - 4):bad[0][0] + 3]}); {context}")
    assert numbers, f"the file is empty; {context}"
    return numbers[-1]


def redis_pod(name: str, node: str) -> dict[str, Any]:
    """A BestEffort Redis (pm-redis image: in memory only, DEBUG enabled) pinned to a node, container `redis`."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "nodeName": node,
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "redis", "image": REDIS_IMAGE, "imagePullPolicy": "IfNotPresent",
                            "ports": [{"containerPort": 6379}]}],
        },
    }


def create_service(core: client.CoreV1Api, name: str, port: int, target_port: int | None = None) -> str:
    """A ClusterIP Service `name` selecting app=<name>; returns its cluster IP."""
    service = client.V1Service(
        metadata=client.V1ObjectMeta(name=name, labels={"app": name}),
        spec=client.V1ServiceSpec(selector={"app": name},
                                  ports=[client.V1ServicePort(port=port, target_port=target_port or port)]))
    return core.create_namespaced_service(NAMESPACE, service).spec.cluster_ip


def start_redis(core: client.CoreV1Api, spec: dict[str, Any], ready: bool = True) -> client.V1Pod:
    """Creates a Redis pod from `spec` and waits until it is Running and answers PING on its pod IP."""
    core.create_namespaced_pod(NAMESPACE, spec)
    pod = running_pod(core, spec["metadata"]["name"], ready=ready)
    wait_for(f"Redis {pod.metadata.name} to answer PING", lambda: redis_ping(pod.status.pod_ip))
    return pod


def redis_ping(host: str, port: int = 6379) -> bool:
    try:
        with Resp(host, port, timeout=2) as r:
            return r.command("PING") == "PONG"
    except (OSError, RespError):
        return False


def redis_run_id(host: str, port: int = 6379) -> str:
    """The `run_id` of INFO server: random per Redis process start, kept by a restore."""
    with Resp(host, port) as r:
        info = r.command("INFO", "server").decode()
    return next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("run_id:"))


#: The dataset the connection tests preload: 110000 values of 1000 bytes, 104.9 MiB of values.
DATASET_KEYS, DATASET_SIZE = 110_000, 1000


def populate(host: str, port: int = 6379, keys: int = DATASET_KEYS, size: int = DATASET_SIZE) -> None:
    """DEBUG POPULATE <keys> key <size>: keys key:0 .. key:<keys-1>, values see populated_value."""
    with Resp(host, port, timeout=120) as r:
        assert r.command("DEBUG", "POPULATE", keys, "key", size) == "OK"
        assert r.command("DBSIZE") >= keys


def populated_value(j: int, size: int = DATASET_SIZE) -> bytes:
    """What DEBUG POPULATE stores under key:<j>: "value:<j>" cut or padded with NUL bytes to `size`."""
    value = f"value:{j}".encode()[:size]
    return value + b"\0" * (size - len(value))


def check_dataset(host: str, port: int = 6379, keys: int = DATASET_KEYS, size: int = DATASET_SIZE,
                  batch: int = 2000) -> None:
    """Every preloaded key is present with its value (all of them, MGET in batches)."""
    bad: list[str] = []
    count = 0
    with Resp(host, port, timeout=30) as r:
        for start in range(0, keys, batch):
            js = range(start, min(start + batch, keys))
            for j, value in zip(js, r.command("MGET", *[f"key:{j}" for j in js])):
                if value != populated_value(j, size):
                    count += 1
                    if len(bad) < 5:
                        bad.append(f"key:{j}={value[:20] if value else value!r}")
    assert count == 0, f"{count} of {keys} preloaded keys missing or changed, e.g. {bad}"


def check_writes(host: str, acked: list[int], port: int = 6379, batch: int = 2000) -> None:
    """Every acknowledged `SET w:<i> <i>` of a PersistentWriter is readable with its value."""
    missing: list[int] = []
    count = 0
    with Resp(host, port, timeout=30) as r:
        for start in range(0, len(acked), batch):
            some = acked[start:start + batch]
            for i, value in zip(some, r.command("MGET", *[f"w:{i}" for i in some])):
                if value != str(i).encode():
                    count += 1
                    if len(missing) < 10:
                        missing.append(i)
    assert count == 0, (f"{count} of {len(acked)} acknowledged writes lost, e.g. w:{missing} "
                        f"(of {acked[0]}..{acked[-1]})")


class RespError(Exception):
    """An error reply of a Redis server (`-ERR ...`)."""


class Resp:
    """A minimal Redis (RESP2) client over one TCP connection: command() sends a command and returns its reply.

    Replies: simple string -> str, error -> RespError (raised at the top level, returned inside arrays),
    integer -> int, bulk string -> bytes (None when null), array -> list (None when null)."""

    def __init__(self, host: str, port: int = 6379, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.file: BinaryIO = self.sock.makefile("rb")

    def __enter__(self) -> "Resp":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def send(self, *args: Any) -> None:
        self.sock.sendall(encode_command(*args))

    def reply(self) -> Any:
        return parse_reply(self.file)

    def command(self, *args: Any) -> Any:
        self.send(*args)
        reply = self.reply()
        if isinstance(reply, RespError):
            raise reply
        return reply


def encode_command(*args: Any) -> bytes:
    """A command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def parse_reply(f: BinaryIO) -> Any:
    """One RESP2 reply read from a buffered binary stream; ConnectionError when the stream ends in the middle."""
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError(f"connection closed (read {line!r})")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        return RespError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        if len(data) != n + 2:
            raise ConnectionError("connection closed in a bulk string")
        return data[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [parse_reply(f) for _ in range(n)]
    raise ValueError(f"not a RESP reply: {line!r}")


class PersistentWriter(threading.Thread):
    """Writes `SET w:<i> <i>` (i = 1, 2, ...) to a Redis at host:port over ONE persistent connection, like an
    application with a connection pool of one: the connection is kept until it fails (error, end of stream, no reply
    within `timeout`), then a new one is made. Each i is sent once (a write without a reply may or may not have been
    applied, so it is never reused). Records `acked` (every i answered +OK), `max_gap` (longest time between two
    acknowledged writes), `connects` and `reconnects`, and the last errors. start() it, stop() it."""

    def __init__(self, host: str, port: int = 6379, timeout: float = 1.0, interval: float = 0.002) -> None:
        super().__init__(daemon=True, name=f"writer-{host}:{port}")
        self.host, self.port, self.timeout, self.interval = host, port, timeout, interval
        self.acked: list[int] = []
        self.sent = 0
        self.connects = 0
        self.max_gap = 0.0
        self.max_gap_at = 0.0  # time.time() at the end of the longest gap
        self.last_ack = 0.0  # time.time() of the last acknowledged write
        self.errors: list[str] = []
        self._stop_flag = threading.Event()

    @property
    def reconnects(self) -> int:
        return max(0, self.connects - 1)

    def _error(self, exc: BaseException) -> None:
        self.errors = (self.errors + [f"{time.strftime('%H:%M:%S')} {type(exc).__name__}: {exc}"])[-5:]

    def run(self) -> None:
        conn: Resp | None = None
        last = None
        try:
            while not self._stop_flag.is_set():
                if conn is None:
                    try:
                        conn = Resp(self.host, self.port, timeout=self.timeout)
                        self.connects += 1
                    except OSError as exc:
                        self._error(exc)
                        self._stop_flag.wait(0.05)
                        continue
                self.sent += 1
                i = self.sent
                try:
                    reply = conn.command("SET", f"w:{i}", i)
                except RespError as exc:
                    self._error(exc)
                except (OSError, ValueError) as exc:
                    self._error(exc)
                    conn.close()
                    conn = None
                else:
                    if reply == "OK":
                        now = time.monotonic()
                        if last is not None and now - last > self.max_gap:
                            self.max_gap, self.max_gap_at = now - last, time.time()
                        last = now
                        self.last_ack = time.time()
                        self.acked.append(i)
                self._stop_flag.wait(self.interval)
        finally:
            if conn is not None:
                conn.close()

    def stop(self) -> "PersistentWriter":
        self._stop_flag.set()
        self.join(timeout=10)
        return self

    def summary(self) -> str:
        return (f"{len(self.acked)} acknowledged writes of {self.sent} sent, longest gap between acknowledged writes "
                f"{self.max_gap:.2f}s (ended {time.strftime('%H:%M:%S', time.localtime(self.max_gap_at))}), "
                f"{self.reconnects} reconnects, last errors: {self.errors}")


class PodWatch(threading.Thread):
    """Watches one pod, from before a migration until the pod is deleted: `statuses` is the last containerStatuses
    seen (the DELETED event's included), so the final state of a source's containers can be read after it is gone.
    The constructor returns once the watch has seen the pod."""

    def __init__(self, core: client.CoreV1Api, name: str) -> None:
        super().__init__(daemon=True, name=f"watch-{name}")
        self.core, self.pod = core, name
        self.statuses: list[client.V1ContainerStatus] = []
        self.history: list[str] = []  # one line per event: type, phase, each container's state
        self.deleted = threading.Event()
        self._seen = threading.Event()
        self._watch = watch.Watch()
        self.start()
        assert self._seen.wait(30), f"the watch of pod {name} saw nothing in 30 s"

    def run(self) -> None:
        version = None
        while not self.deleted.is_set():
            kwargs = {"resource_version": version} if version else {}
            for event in self._watch.stream(self.core.list_namespaced_pod, NAMESPACE, timeout_seconds=60,
                                            field_selector=f"metadata.name={self.pod}", **kwargs):
                pod = event["object"]
                version = pod.metadata.resource_version
                self.statuses = pod.status.container_statuses or self.statuses
                self.history.append(f"{event['type']} {pod.status.phase} " + ", ".join(
                    f"{s.name}={describe_state(s.state)}" for s in pod.status.container_statuses or []))
                self._seen.set()
                if event["type"] == "DELETED":
                    self.deleted.set()
                    self._watch.stop()
                    return

    def final_statuses(self, timeout: float = 90) -> list[client.V1ContainerStatus]:
        """The last containerStatuses seen once the pod is deleted."""
        assert self.deleted.wait(timeout), f"pod {self.pod} not deleted within {timeout:.0f}s: {self.history[-3:]}"
        return self.statuses

    def close(self) -> None:
        self._watch.stop()


def describe_state(state: client.V1ContainerState | None) -> str:
    if state is None:
        return "?"
    if state.terminated:
        return f"terminated(exitCode={state.terminated.exit_code}, reason={state.terminated.reason})"
    if state.running:
        return "running"
    return f"waiting({state.waiting.reason if state.waiting else ''})"


READY_GATE = "podmigration.dev/e2e-ready"


def gate_readiness(spec: dict[str, Any]) -> dict[str, Any]:
    """Adds the readiness gate READY_GATE to a pod spec: the pod is Ready only once open_gate() set its condition.
    A replacement pod copies the gate but nobody opens it there, so a migration of such a pod reaches Restoring and
    times out while the source (gate open) stays Ready and behind its Services (unlike a slow readinessProbe, which
    keeps the source out of its Services too)."""
    spec["spec"]["readinessGates"] = [{"conditionType": READY_GATE}]
    return spec


def open_gate(core: client.CoreV1Api, name: str) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    core.patch_namespaced_pod_status(name, NAMESPACE, {"status": {"conditions": [
        {"type": READY_GATE, "status": "True", "lastTransitionTime": now}]}})


def counter_template(app: str, node: str = SOURCE_NODE) -> dict[str, Any]:
    """A pod template of the counter (its answer names the pod's hostname) that prefers `node`."""
    spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "counter", "image": COUNTER_IMAGE, "imagePullPolicy": "IfNotPresent",
                        "ports": [{"containerPort": 8080}],
                        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}],
        "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "preference": {"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}}]}},
    }
    return {"metadata": {"labels": {"app": app}}, "spec": spec}


def pods_of(core: client.CoreV1Api, app: str) -> list[client.V1Pod]:
    return [p for p in core.list_namespaced_pod(NAMESPACE, label_selector=f"app={app}").items
            if not p.metadata.deletion_timestamp]


def no_pods_left(core: client.CoreV1Api, app: str) -> None:
    """The next test starts from a namespace without this test's pods (owners delete theirs asynchronously)."""
    wait_for(f"the pods of {app} deleted", lambda: not core.list_namespaced_pod(
        NAMESPACE, label_selector=f"app={app}").items, timeout=120)


@contextlib.contextmanager
def placed_on_source(core: client.CoreV1Api, apps: list[str]) -> Iterator[None]:
    """Pods created inside land on SOURCE_NODE: TARGET_NODE is cordoned until every pod of ``apps`` (labels
    app=<name>) is bound, since the scheduler's spreading may outweigh a preference."""
    core.patch_node(TARGET_NODE, {"spec": {"unschedulable": True}})
    try:
        yield
        wait_for("the new pods bound to a node", lambda: all(
            pods_of(core, app) and all(p.spec.node_name for p in pods_of(core, app)) for app in apps))
    finally:
        core.patch_node(TARGET_NODE, {"spec": {"unschedulable": None}})


OPERATOR_SELECTOR = "app.kubernetes.io/name=podmigration-operator"


def operator_pods(core: client.CoreV1Api) -> list[client.V1Pod]:
    return [p for p in core.list_namespaced_pod(OPERATOR_NAMESPACE, label_selector=OPERATOR_SELECTOR).items
            if not p.metadata.deletion_timestamp]


def operator_leader(custom: client.CustomObjectsApi, replicas: list[client.V1Pod], peering: str = "podmigration",
                    timeout: float = 60) -> str:
    """The name of the replica that leads: of the live replicas' peering records, the highest priority."""
    names = {p.metadata.name for p in replicas}

    def leader() -> str | None:
        peers = (custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", peering).get("status")
                 or {})
        live = [(v.get("priority", 0), k.split("@", 1)[-1].split("/", 1)[0]) for k, v in peers.items()
                if isinstance(v, dict)]
        live = [(priority, name) for priority, name in live if name in names]
        return max(live)[1] if live else None

    return wait_for("a leading operator replica", leader, timeout=timeout)
