"""Holds a socket of each kind a migration must not stumble on, and reports what became of each.

TCP over IPv6 loopback (a listener and an established pair), a half-closed pair (FIN_WAIT2 / CLOSE_WAIT), a
connection still being attempted (SYN_SENT, to CONNECT_TO, a host:port that never answers), a UDP socket and a Unix
socket pair. Every connection to PORT gets one JSON line: {"token", "tcp": {name: kernel TCP state}, "listening",
"udp", "unix"}; after a migration the connected TCP sockets are closed (state CLOSE) and the rest still work.
"""

import os
import socket
import struct

from jsonline import serve

PORT = int(os.environ.get("SOCKETS_PORT", "8080"))
host, _, port = os.environ.get("CONNECT_TO", "10.213.0.250:9").rpartition(":")
STATES = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
}
token = os.urandom(8).hex()

listener6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
listener6.bind(("::1", 9000))
listener6.listen(8)
client6 = socket.create_connection(("::1", 9000))
server6, _ = listener6.accept()

listener4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener4.bind(("127.0.0.1", 9001))
listener4.listen(8)
half_client = socket.create_connection(("127.0.0.1", 9001))
half_server, _ = listener4.accept()
half_client.shutdown(socket.SHUT_WR)  # client FIN_WAIT2, server CLOSE_WAIT

connecting = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
connecting.setblocking(False)
connecting.connect_ex((host, int(port)))

udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("127.0.0.1", 0))
udp.settimeout(1)
unix_a, unix_b = socket.socketpair()
unix_b.settimeout(1)

TCP = {
    "established6": client6,
    "established6-peer": server6,
    "half-closed": half_client,
    "half-closed-peer": half_server,
    "connecting": connecting,
}


def state(sock: socket.socket) -> str:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    return STATES.get(struct.unpack("B", info[:1])[0], "?")


def still_listening() -> bool:
    try:
        with socket.create_connection(("::1", 9000), timeout=1):
            listener6.settimeout(1)
            accepted, _ = listener6.accept()
            accepted.close()
            return True
    except OSError:
        return False


def echoes(send: socket.socket, recv: socket.socket, to: object = None) -> bool:
    try:
        send.sendto(b"ping", to) if to else send.send(b"ping")
        return recv.recv(16) == b"ping"
    except OSError:
        return False


def report() -> dict:
    return {
        "token": token,
        "tcp": {name: state(sock) for name, sock in TCP.items()},
        "listening": still_listening(),
        "udp": echoes(udp, udp, udp.getsockname()),
        "unix": echoes(unix_a, unix_b),
    }


serve(PORT, f"sockets token={token} listening on :{PORT}", report)
