"""Operator settings, read from the environment so the Deployment (Helm values) controls them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..domain.limits import Limits

_SA_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _own_namespace() -> str:
    """The operator's namespace: where the chart installs the node-helper DaemonSet too."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    if _SA_NAMESPACE_FILE.exists():
        return _SA_NAMESPACE_FILE.read_text().strip()
    return "podmigration-system"


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"environment variable {name}={raw!r} is not a number") from None
    if value <= 0:
        raise SystemExit(f"environment variable {name}={raw!r} must be positive")
    return value


def _choice(name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = os.environ.get(name) or default
    if raw not in allowed:
        raise SystemExit(f"environment variable {name}={raw!r} must be one of {', '.join(allowed)}")
    return raw


def _names(name: str, required: bool) -> tuple[str, ...]:
    """A comma-separated list; ``required``: at least one (an empty allow-list would refuse every caller)."""
    names = tuple(n.strip() for n in os.environ.get(name, "").split(",") if n.strip())
    if required and not names:
        raise SystemExit(f"environment variable {name} must name at least one certificate CN")
    return names


@dataclass(frozen=True)
class Config:
    helper_namespace: str
    helper_port: int
    #: The operator's own certificate (tls.crt, tls.key) and the CA bundle (ca.crt); identity/own.py keeps it a
    #: symlink to the current issue.
    tls_dir: Path
    #: Seconds between polls of the replacement pod.
    poll_seconds: float
    #: Seconds to pause between retries of Finalizing and rollback steps.
    retry_seconds: float
    #: Threads for migrations' steps: a running migration holds one for its whole duration, a queued one only
    #: while it checks for a slot (controller/threads.py).
    max_concurrent_migrations: int = 64
    #: Migrations that may run at once out of one node, in one namespace, and in the whole cluster.
    max_outbound_per_node: int = 2
    max_per_namespace: int = 5
    max_per_cluster: int = 5
    #: Migrations one namespace may have waiting for a slot; more are refused (QueueFull).
    max_queued_per_namespace: int = 100
    #: Seconds a migration may wait in Pending when its spec.queueTimeoutSeconds is unset (then QueueTimeout).
    max_queue_seconds: int = 3600
    #: The MutatingWebhookConfiguration that turns StatefulSet pods being handed over into restores.
    handover_webhook: str = ""
    #: Eviction strategy of pods whose own label and namespace label say nothing: "evict" or "migrate".
    eviction_default: str = "evict"
    #: Where the admission webhooks' serving certificate is (tls.crt, tls.key); empty: no webhooks served.
    webhook_tls_dir: str = ""
    #: The CA (PEM file) whose client certificates the webhooks accept, and the CNs they answer (the API server's
    #: admission client certificate: chart webhooks.clientAuth); empty: any caller (docs/security.md).
    webhook_client_ca: str = ""
    webhook_client_names: tuple[str, ...] = ()
    #: kopf peering object for leader election among replicas; empty: standalone (one replica).
    peering: str = ""
    #: Seconds a replica's claim lasts without renewal: how soon another takes over from a dead leader.
    peering_lifetime: int = 15
    #: The operator's own image: the replacement's volume gate runs it (present on every helper node).
    image: str = ""
    #: Expected downtime = base + per GiB of the pod's memory; the preflight warns of liveness probes that give
    #: up sooner. Defaults from the figures measured in e2e/README.md.
    downtime_base_seconds: float = 2.0
    downtime_seconds_per_gib: float = 30.0
    #: The CA Secret's mount (tls.crt, tls.key): the operator issues its own certificate and signs the helpers'
    #: from it. Empty: tls_dir is used as it is and no helper certificate is signed.
    ca_dir: str = ""
    #: signerName of the helpers' CertificateSigningRequests, and the longest validity signed (also the operator's).
    signer_name: str = "podmigration.dev/node-helper"
    cert_validity_seconds: int = 86400
    #: Who may ask for a helper certificate: the DaemonSet's service account and pods (in helper_namespace).
    helper_service_account: str = "podmigration-node-helper"
    helper_daemonset: str = "podmigration-node-helper"
    #: Seconds Finalizing retries a node-helper that does not answer before it ends without it (CleanupSkipped).
    finalize_helper_wait_seconds: float = 120.0
    #: Seconds Preparing waits for a node-helper that is missing or not ready (restarting) before it refuses
    #: (SourceNoHelper, TargetNoHelper); later phases wait for it until the migration's timeoutSeconds.
    helper_restart_seconds: float = 60.0
    #: Seconds between two garbage collection rounds (housekeeping.py): expired PodMigrations, nodes' leftovers.
    gc_period_seconds: float = 60.0
    #: Seconds a finished PodMigration is kept when its spec.ttlSecondsAfterFinished is unset.
    ttl_seconds_after_finished: float = 86400.0
    #: Finished PodMigrations kept per pod (the newest; older ones are deleted before their time-to-live).
    finished_per_pod: int = 5
    #: Whether the test-only crash points of faults.py may fire (the chart's operator.faultInjection).
    fault_injection: bool = False
    #: How a pod's base images reach the target (chart operator.baseImages): "pull", by the target's kubelet with
    #: the pod's own credentials (domain/baseimages.py), or "copy", from the source node's helper (no registry).
    base_images: str = "pull"
    #: Port of /metrics (Prometheus; the container port named metrics); 0: none.
    metrics_port: int = 0

    @property
    def limits(self) -> Limits:
        return Limits(self.max_outbound_per_node, self.max_per_namespace, self.max_per_cluster)

    @classmethod
    def from_env(cls) -> Config:
        client_ca = os.environ.get("PM_WEBHOOK_CLIENT_CA", "")
        return cls(
            helper_namespace=os.environ.get("PM_HELPER_NAMESPACE") or _own_namespace(),
            helper_port=int(_number("PM_HELPER_PORT", 9443)),
            tls_dir=Path(os.environ.get("PM_TLS_DIR") or "/run/podmigration/identity/current"),
            poll_seconds=_number("PM_POLL_SECONDS", 0.2),
            retry_seconds=_number("PM_RETRY_SECONDS", 5.0),
            max_concurrent_migrations=int(_number("PM_MAX_CONCURRENT_MIGRATIONS", 64)),
            max_outbound_per_node=int(_number("PM_MAX_OUTBOUND_PER_NODE", 2)),
            max_per_namespace=int(_number("PM_MAX_PER_NAMESPACE", _number("PM_MAX_PER_CLUSTER", 5))),
            max_per_cluster=int(_number("PM_MAX_PER_CLUSTER", 5)),
            max_queued_per_namespace=int(_number("PM_MAX_QUEUED_PER_NAMESPACE", 100)),
            max_queue_seconds=int(_number("PM_MAX_QUEUE_SECONDS", 3600)),
            image=os.environ.get("PM_IMAGE", ""),
            peering=os.environ.get("PM_PEERING", ""),
            peering_lifetime=int(_number("PM_PEERING_LIFETIME", 15)),
            handover_webhook=os.environ.get("PM_HANDOVER_WEBHOOK", ""),
            eviction_default=_choice("PM_EVICTION_DEFAULT", ("evict", "migrate"), "evict"),
            webhook_tls_dir=os.environ.get("PM_WEBHOOK_TLS_DIR", ""),
            webhook_client_ca=client_ca,
            webhook_client_names=_names("PM_WEBHOOK_CLIENT_NAMES", required=bool(client_ca)),
            downtime_base_seconds=_number("PM_DOWNTIME_BASE_SECONDS", 2.0),
            downtime_seconds_per_gib=_number("PM_DOWNTIME_SECONDS_PER_GIB", 30.0),
            ca_dir=os.environ.get("PM_CA_DIR", ""),
            signer_name=os.environ.get("PM_SIGNER_NAME") or "podmigration.dev/node-helper",
            cert_validity_seconds=max(600, int(_number("PM_CERT_VALIDITY_SECONDS", 86400))),
            helper_service_account=os.environ.get("PM_HELPER_SERVICE_ACCOUNT") or "podmigration-node-helper",
            helper_daemonset=os.environ.get("PM_HELPER_DAEMONSET") or "podmigration-node-helper",
            finalize_helper_wait_seconds=_number("PM_FINALIZE_HELPER_WAIT_SECONDS", 120.0),
            helper_restart_seconds=_number("PM_HELPER_RESTART_SECONDS", 60.0),
            gc_period_seconds=_number("PM_GC_PERIOD_SECONDS", 60.0),
            ttl_seconds_after_finished=_number("PM_TTL_SECONDS_AFTER_FINISHED", 86400.0),
            finished_per_pod=int(_number("PM_FINISHED_PER_POD", 5)),
            fault_injection=os.environ.get("PM_FAULT_INJECTION", "") in ("1", "true"),
            metrics_port=int(_number("PM_METRICS_PORT", 0)),
            base_images=_choice("PM_BASE_IMAGES", ("pull", "copy"), "pull"),
        )
