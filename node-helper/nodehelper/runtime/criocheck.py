"""What this node's CRI-O restores, read from its own configuration at start, and said in the log.

With checkpoint/restore on, CRI-O restores any image that carries its checkpoint annotation, from any registry.
A signature policy in effect for a pod's namespace makes it refuse every restore there, podmigration's included
(CRI-O v1.36.3 verifies the restored container's base image without the name signature checks need), so it can
only fence off the namespaces that are never migrated. The chart cannot set either on the nodes, so each helper
says where its node stands (README, node requirements; docs/security.md, "Checkpoint images from elsewhere").
"""

from __future__ import annotations

import http.client
import logging
import socket
import tomllib
from typing import Any

log = logging.getLogger(__name__)

#: CRI-O's inspect endpoint that answers its whole configuration as TOML (server/inspect.go).
CONFIG_PATH = "/config"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def read_config(endpoint: str, timeout: float = 10.0) -> dict[str, Any]:
    """CRI-O's configuration as it runs, from its socket (``unix:///...``)."""
    conn = _UnixConnection(endpoint.removeprefix("unix://"), timeout)
    try:
        conn.request("GET", CONFIG_PATH)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"CRI-O answered {response.status} to GET {CONFIG_PATH}")
    return tomllib.loads(body.decode())


def restores(config: dict[str, Any]) -> bool:
    """Whether this CRI-O restores containers: container_level_enabled where it has it, else enable_criu_support."""
    crio = config.get("crio") or {}
    level = (crio.get("checkpoint_restore") or {}).get("container_level_enabled")
    return level == "checkpoint_restore" if level else bool((crio.get("runtime") or {}).get("enable_criu_support"))


def findings(config: dict[str, Any]) -> list[str]:
    """What an administrator must know about this node's CRI-O for pod migration (empty: nothing)."""
    crio = config.get("crio") or {}
    if not restores(config):
        return [
            "CRI-O on this node does not restore checkpoints (enable_criu_support / container_level_enabled): "
            "migrations to this node fail"
        ]
    if (crio.get("image") or {}).get("signature_policy"):
        return [
            "CRI-O on this node has a signature_policy, so it refuses every restore: migrations to this node "
            "fail (fence off single namespaces with signature_policy_dir instead)"
        ]
    return [
        "CRI-O on this node restores ANY checkpoint image, under any name and from any registry, for whoever may "
        "create pods here: put a policy file in signature_policy_dir for each namespace that is never migrated "
        "(README, node requirements)"
    ]


#: What read_config raises when CRI-O does not answer or answers no configuration.
READ_ERRORS = (OSError, RuntimeError, tomllib.TOMLDecodeError, http.client.HTTPException)


def report(endpoint: str) -> None:
    """Logs the findings; a CRI-O that does not answer is said once and otherwise ignored."""
    try:
        config = read_config(endpoint)
    except READ_ERRORS as exc:
        log.info("could not read CRI-O's configuration from %s%s: %s", endpoint, CONFIG_PATH, exc)
        return
    for finding in findings(config):
        log.warning("%s", finding)
