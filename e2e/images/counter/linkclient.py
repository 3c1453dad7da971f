"""A client that holds one outbound TCP connection to a Redis server: the workload of the outbound-connection tests.

It connects to LINK_ADDR (host:port), then sends PING every LINK_INTERVAL seconds over that same connection and
reads +PONG. Any error, end of stream or a reply later than LINK_TIMEOUT seconds closes the connection and it
connects again; `connects` counts the connections made, so a process that kept its connection keeps its count.

Every TCP connection on LINK_PORT gets one line of JSON: {"token": T, "pid": P, "connects": N, "attempts": A,
"lastOkAgo": seconds since the last +PONG (null before the first), "peer": "host:port" of the current connection
(null while disconnected), "lastError": the last error seen}. `token` is random per process start. Times are wall
clock (time.time), which a restore on another node keeps, unlike the monotonic clock.
"""

import os
import socket
import threading
import time

from jsonline import serve

PORT = int(os.environ.get("LINK_PORT", "8080"))
HOST, _, _PORT = os.environ.get("LINK_ADDR", "127.0.0.1:6379").rpartition(":")
TARGET = (HOST, int(_PORT))
INTERVAL = float(os.environ.get("LINK_INTERVAL", "0.1"))
TIMEOUT = float(os.environ.get("LINK_TIMEOUT", "1"))

state = {"token": os.urandom(8).hex(), "connects": 0, "attempts": 0, "last_ok": None, "peer": None, "last_error": None}


def read_line(conn: socket.socket, buf: bytearray) -> bytes:
    while b"\r\n" not in buf:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        buf += chunk
    line, _, rest = bytes(buf).partition(b"\r\n")
    buf[:] = rest
    return line


def link() -> None:
    while True:
        state["attempts"] += 1
        conn = None
        try:
            conn = socket.create_connection(TARGET, timeout=TIMEOUT)
            conn.settimeout(TIMEOUT)
            state["connects"] += 1
            host, port = conn.getpeername()[:2]
            state["peer"] = f"{host}:{port}"
            buf = bytearray()
            while True:
                conn.sendall(b"PING\r\n")
                line = read_line(conn, buf)
                if line != b"+PONG":
                    raise ConnectionError(f"unexpected reply {line!r}")
                state["last_ok"] = time.time()
                time.sleep(INTERVAL)
        except (OSError, ValueError) as exc:
            state["last_error"] = f"{type(exc).__name__}: {exc}"
        finally:
            state["peer"] = None
            if conn is not None:
                conn.close()
        time.sleep(INTERVAL)


def reply() -> dict:
    last_ok = state["last_ok"]
    return {
        "token": state["token"],
        "pid": os.getpid(),
        "connects": state["connects"],
        "attempts": state["attempts"],
        "lastOkAgo": None if last_ok is None else time.time() - last_ok,
        "peer": state["peer"],
        "lastError": state["last_error"],
    }


threading.Thread(target=link, daemon=True).start()
serve(PORT, f"linkclient token={state['token']} -> {TARGET[0]}:{TARGET[1]}, listening on :{PORT}", reply)
