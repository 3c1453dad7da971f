"""Node-helper settings, read once from the environment the DaemonSet sets."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from nodehelper.criu import criuconfig
from nodehelper.http.connlimits import ConnectionLimits
from nodehelper.http.tlsserver import DEFAULT_MAX_WORKERS
from nodehelper.identity.certificate import SERVICE_ACCOUNT_DIR
from nodehelper.runtime import criupath
from nodehelper.store.archives import DEFAULT_MAX_ARCHIVE_BYTES
from nodehelper.streams.diskspace import DEFAULT_MIN_FREE_BYTES, DEFAULT_MIN_FREE_PERCENT
from pmcontract import names

#: Where the chart mounts the directories of nodeHelper.criuSearchPath, one a number (runtime/criupath.py).
CRIU_SEARCH_ROOT = Path("/host/criu-search")


@dataclass(frozen=True)
class Config:
    node_name: str
    node_ip: str
    port: int = 9443
    #: Port of /metrics (plain HTTP on node_ip, the container port named metrics); 0: none.
    metrics_port: int = 0
    #: tmpfs directory the key passes through while ssl loads it (removed right after).
    identity_dir: Path = Path("/run/podmigration/identity")
    #: signerName of the helpers' CertificateSigningRequests (the operator signs them) and the validity asked for.
    signer_name: str = names.DEFAULT_SIGNER
    cert_validity_seconds: int = 86400
    #: How long the start waits for the operator to sign the first certificate.
    csr_timeout_seconds: int = 300
    work_dir: Path = Path("/var/lib/kubelet/checkpoints/podmigration")
    kubelet_port: int = 10250
    kubelet_checkpoint_dir: Path = Path("/var/lib/kubelet/checkpoints")
    kubelet_ca_file: Path = SERVICE_ACCOUNT_DIR / "ca.crt"
    kubelet_token_file: Path = SERVICE_ACCOUNT_DIR / "token"
    kubelet_insecure_tls: bool = False
    cgroup_root: Path = Path("/sys/fs/cgroup")
    cri_endpoint: str = "unix:///var/run/crio/crio.sock"
    storage_root: Path = Path("/var/lib/containers/storage")
    storage_runroot: Path = Path("/run/containers/storage")
    storage_driver: str = "overlay"
    kubelet_pods_dir: Path = Path("/var/lib/kubelet/pods")
    criu_config: Path = Path("/host/etc/criu/runc.conf")
    criu_options: tuple[str, ...] = ()
    #: The node directories looked in for CRIU (PM_CRIU_SEARCH_PATH), mounted read-only at CRIU_SEARCH_ROOT/<index>.
    criu_search: tuple[criupath.SearchDir, ...] = ()
    max_archive_bytes: int = DEFAULT_MAX_ARCHIVE_BYTES
    #: Kept free on every filesystem the helper writes to: min_free_percent of it plus min_free_bytes
    #: (streams/diskspace.py).
    min_free_bytes: int = DEFAULT_MIN_FREE_BYTES
    min_free_percent: int = DEFAULT_MIN_FREE_PERCENT
    max_workers: int = DEFAULT_MAX_WORKERS
    connection_limits: ConnectionLimits = ConnectionLimits()
    #: CRI-O's working directory as mounted here: set, replacements restore straight from the archive
    #: (runtime/archivelinks.py); unset, from a checkpoint image.
    runtime_dir: Path | None = None

    @property
    def archive_dir(self) -> Path:
        return self.work_dir / "archives"

    @property
    def alias_dir(self) -> Path:
        """Which pod each alias settle gave is for (services/restore/aliases.py)."""
        return self.work_dir / "aliases"

    @property
    def scratch_dir(self) -> Path:
        """Temporary image archives live here, apart from checkpoint archives."""
        return self.work_dir / "tmp"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Config:
        """Build the config; NODE_IP is required because the helper listens on it and calls the kubelet there."""
        node_ip = env.get("NODE_IP", "")
        if not node_ip:
            raise ValueError("NODE_IP is not set (the DaemonSet should set it from status.hostIP)")
        d = cls(node_name=socket.gethostname(), node_ip=node_ip)
        return cls(
            node_name=env.get("NODE_NAME") or d.node_name,
            node_ip=node_ip,
            port=int(env.get("PM_HELPER_PORT", d.port)),
            metrics_port=int(env.get("PM_METRICS_PORT", d.metrics_port)),
            identity_dir=Path(env.get("PM_IDENTITY_DIR", d.identity_dir)),
            signer_name=env.get("PM_SIGNER_NAME") or d.signer_name,
            cert_validity_seconds=_count(env, "PM_CERT_VALIDITY_SECONDS", d.cert_validity_seconds, minimum=600),
            csr_timeout_seconds=_count(env, "PM_CSR_TIMEOUT_SECONDS", d.csr_timeout_seconds, minimum=1),
            work_dir=Path(env.get("PM_WORK_DIR", d.work_dir)),
            kubelet_port=int(env.get("KUBELET_PORT", d.kubelet_port)),
            kubelet_checkpoint_dir=Path(env.get("KUBELET_CHECKPOINT_DIR", d.kubelet_checkpoint_dir)),
            kubelet_ca_file=Path(env.get("KUBELET_CA_FILE", d.kubelet_ca_file)),
            kubelet_token_file=Path(env.get("KUBELET_TOKEN_FILE", d.kubelet_token_file)),
            kubelet_insecure_tls=env.get("KUBELET_INSECURE_TLS", "false").lower() in ("1", "true", "yes"),
            cgroup_root=Path(env.get("PM_CGROUP_ROOT", d.cgroup_root)),
            cri_endpoint=env.get("CONTAINER_RUNTIME_ENDPOINT", d.cri_endpoint),
            storage_root=Path(env.get("PM_STORAGE_ROOT", d.storage_root)),
            storage_runroot=Path(env.get("PM_STORAGE_RUNROOT", d.storage_runroot)),
            storage_driver=env.get("PM_STORAGE_DRIVER", d.storage_driver),
            kubelet_pods_dir=Path(env.get("KUBELET_PODS_DIR", d.kubelet_pods_dir)),
            criu_config=Path(env.get("PM_CRIU_CONFIG", d.criu_config)),
            criu_options=tuple(criuconfig.parse_options(env.get("PM_CRIU_OPTIONS", ""))),
            criu_search=criupath.search_dirs(env.get("PM_CRIU_SEARCH_PATH", ""), CRIU_SEARCH_ROOT),
            max_archive_bytes=_count(env, "PM_MAX_ARCHIVE_BYTES", d.max_archive_bytes, minimum=1),
            min_free_bytes=_count(env, "PM_MIN_FREE_BYTES", d.min_free_bytes, minimum=0),
            min_free_percent=_count(env, "PM_MIN_FREE_PERCENT", d.min_free_percent, minimum=0),
            max_workers=_count(env, "PM_MAX_WORKERS", d.max_workers, minimum=1),
            connection_limits=_connection_limits(env, d.connection_limits),
            runtime_dir=Path(env["PM_RUNTIME_DIR"]) if env.get("PM_RUNTIME_DIR") else None,
        )


def _connection_limits(env: Mapping[str, str], d: ConnectionLimits) -> ConnectionLimits:
    return ConnectionLimits(
        total=_count(env, "PM_MAX_CONNECTIONS", d.total, minimum=1),
        per_peer=_count(env, "PM_MAX_CONNECTIONS_PER_PEER", d.per_peer, minimum=1),
        unauthenticated=_count(env, "PM_MAX_UNAUTHENTICATED", d.unauthenticated, minimum=1),
        handshake_seconds=_count(env, "PM_HANDSHAKE_TIMEOUT_SECONDS", int(d.handshake_seconds), minimum=1),
        header_seconds=_count(env, "PM_HEADER_TIMEOUT_SECONDS", int(d.header_seconds), minimum=1),
    )


def _count(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    """A whole number from the environment; a typo must stop the start with its name, not become a default."""
    value = env.get(name, "").strip()
    if not value:
        return default
    if not (value.isascii() and value.isdigit()) or int(value) < minimum:
        raise ValueError(f"{name}={value!r}: expected a whole number >= {minimum}")
    return int(value)
