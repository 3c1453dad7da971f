"""The one protocol of the test workloads: every TCP connection to the port gets one JSON line, then is closed."""

import json
import socket
from collections.abc import Callable


def serve(port: int, banner: str, reply: Callable[[], dict]) -> None:
    """Answers forever on 0.0.0.0:port with reply(); prints banner once listening (the container log shows it)."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(16)
    print(banner, flush=True)
    while True:
        conn, _ = srv.accept()
        with conn:
            conn.sendall((json.dumps(reply()) + "\n").encode())
