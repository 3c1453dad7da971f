"""Redis under writes: the pod, a RESP client, the dataset and a writer that records every acknowledged write."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, BinaryIO

from kubernetes import client

from .cluster import NAMESPACE, REDIS_IMAGE, running_pod, wait_for


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
            "containers": [
                {
                    "name": "redis",
                    "image": REDIS_IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "ports": [{"containerPort": 6379}],
                }
            ],
        },
    }


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


def check_dataset(
    host: str, port: int = 6379, keys: int = DATASET_KEYS, size: int = DATASET_SIZE, batch: int = 2000
) -> None:
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
            some = acked[start : start + batch]
            for i, value in zip(some, r.command("MGET", *[f"w:{i}" for i in some])):
                if value != str(i).encode():
                    count += 1
                    if len(missing) < 10:
                        missing.append(i)
    assert count == 0, (
        f"{count} of {len(acked)} acknowledged writes lost, e.g. w:{missing} (of {acked[0]}..{acked[-1]})"
    )


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

    def __enter__(self) -> Resp:
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

    def stop(self) -> PersistentWriter:
        self._stop_flag.set()
        self.join(timeout=10)
        return self

    def summary(self) -> str:
        return (
            f"{len(self.acked)} acknowledged writes of {self.sent} sent, longest gap between acknowledged writes "
            f"{self.max_gap:.2f}s (ended {time.strftime('%H:%M:%S', time.localtime(self.max_gap_at))}), "
            f"{self.reconnects} reconnects, last errors: {self.errors}"
        )
