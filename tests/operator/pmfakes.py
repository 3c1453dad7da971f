"""Builders of Kubernetes objects and in-memory fakes of the cluster and the node-helpers (tests only)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes.client.exceptions import ApiException

from podmigration import api
from podmigration.api.types import Obj
from podmigration.clients.config import Config


def make_pod(
    name: str = "counter",
    node: str = "worker-1",
    *,
    namespace: str = "default",
    phase: str = "Running",
    containers: tuple[str, ...] = ("app",),
    labels: dict[str, str] | None = None,
    **spec: Any,
) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "resourceVersion": "7",
            "labels": dict(labels if labels is not None else {"app": name}),
            "annotations": {},
        },
        "spec": {
            "nodeName": node,
            "containers": [{"name": c, "image": f"localhost/{c}:1"} for c in containers],
            **spec,
        },
        "status": {
            "phase": phase,
            "hostIP": "10.0.0.1",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": c, "state": {"running": {}}} for c in containers],
        },
    }


def owned_by(pod: Obj, kind: str, name: str) -> Obj:
    """``pod`` with a controller of that kind and name (apps/v1)."""
    pod["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": kind, "name": name, "controller": True}]
    return pod


def make_node(
    name: str,
    *,
    ready: bool = True,
    unschedulable: bool = False,
    labels: dict[str, str] | None = None,
    taints: list[Obj] | None = None,
    allocatable: dict[str, str] | None = None,
) -> Obj:
    """A node as its kubelet reports it; ``allocatable`` defaults to 4 CPUs, 8 GiB and 110 pods."""
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"unschedulable": unschedulable, "taints": taints or []},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "allocatable": allocatable or {"cpu": "4", "memory": "8Gi", "pods": "110"},
        },
    }


def make_pdb(name: str, allowed: int, match_labels: dict[str, str], namespace: str = "default") -> Obj:
    """A policy/v1 PodDisruptionBudget as the disruption controller left it (``status.disruptionsAllowed``)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"matchLabels": dict(match_labels)}},
        "status": {"disruptionsAllowed": allowed},
    }


def make_helper_pod(node: str, ip: str, ready: bool = True) -> Obj:
    return {
        "metadata": {"name": f"helper-{node}", "labels": {"app.kubernetes.io/name": "podmigration-node-helper"}},
        "spec": {"nodeName": node},
        "status": {
            "phase": "Running",
            "hostIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


#: A node-helper's GET /v1/node answer on a node that can migrate (pmcontract.bodies.NodeAnswer).
GOOD_NODE_FACTS: Obj = {
    "node": "",
    "crio_restores": True,
    "crio_error": "",
    "criu_config": "/host/etc/criu/runc.conf",
    "criu_block": True,
    "criu_searched": ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin"],
    "criu_path": "/usr/sbin/criu",
    "work_dir": "/var/lib/kubelet/checkpoints/podmigration",
    "free_bytes": 50 << 30,
    "floor_bytes": 8 << 30,
}


class FakeApiError(ApiException):
    """An API server error answer (status and JSON body), without an HTTP response behind it."""

    def __init__(self, status: int, message: str) -> None:
        Exception.__init__(self, message)
        self.status, self.reason, self.headers = status, message, None
        self.body = json.dumps({"message": message})


class FakeKube:
    """The subset of podmigration.clients.kube.Kube the operator and CLI use, on dicts in memory."""

    def __init__(
        self, pods: list[Obj] = (), nodes: list[Obj] = (), services: list[Obj] = (), helper_pods: list[Obj] = ()
    ) -> None:
        self.pods = {(p["metadata"]["namespace"], p["metadata"]["name"]): copy.deepcopy(p) for p in pods}
        self.nodes = [copy.deepcopy(n) for n in nodes]
        self.services = [copy.deepcopy(s) for s in services]
        self.helper_pods = [copy.deepcopy(p) for p in helper_pods]
        self.migrations: dict[tuple[str, str], Obj] = {}
        self.created_pods: list[Obj] = []
        self.delete_graces: dict[str, int | None] = {}
        self.deleted_pods: list[str] = []
        self.on_get_migration: list[Any] = []  # callbacks run before each get_migration (scripted progress)
        self.webhook_matches: list[tuple[str, str]] = []  # (configuration, CEL) as the operator set them
        self.owners: dict[tuple[str, str], Obj] = {}  # (kind, name) -> controller object (ReplicaSet, ...)
        self.claims: dict[str, Obj] = {}  # claim name -> PersistentVolumeClaim (namespace "default")
        self.volumes: dict[str, Obj] = {}  # PersistentVolume name -> object
        self.events: list[Obj] = []  # core/v1 Events about pods, as the kubelet posts them
        self.budgets: list[Obj] = []  # PodDisruptionBudgets
        self.eviction_errors: dict[str, list[int]] = {}  # pod -> API error statuses of its next evictions (429, ...)
        self.evicted: list[str] = []  # pods evicted (through the Eviction API), in order
        self.eviction_graces: dict[str, int | None] = {}  # pod -> the grace period its eviction asked for
        self.node_facts: dict[str, Obj | Exception] = {}  # helper pod -> its GET /v1/node answer (default: all good)
        self.namespace_labels: dict[str, dict[str, str]] = {}  # namespace -> its labels (list_namespaces)
        self.lists: list[str] = []  # the lists read for placement (list_active_pods, list_namespaces), in order
        self.forbidden: set[str] = set()  # cluster-wide lists the user may not read (403): "pods", "namespaces"

    def get_pod(self, namespace: str, name: str) -> Obj | None:
        pod = self.pods.get((namespace, name))
        return copy.deepcopy(pod) if pod else None

    def list_pods(self, namespace: str, label_selector: str) -> list[Obj]:
        assert label_selector == api.HELPER_LABEL_SELECTOR
        return copy.deepcopy(self.helper_pods)

    def create_pod(self, namespace: str, body: Obj) -> Obj:
        pod = copy.deepcopy(body)
        pod["metadata"].update(namespace=namespace, uid=f"uid-{pod['metadata']['name']}", resourceVersion="1")
        pod["status"] = {"phase": "Pending"}
        self.pods[(namespace, pod["metadata"]["name"])] = pod
        self.created_pods.append(copy.deepcopy(pod))
        return copy.deepcopy(pod)

    def patch_pod(self, namespace: str, name: str, patch: Obj) -> Obj:
        pod = self.pods[(namespace, name)]
        meta = patch.get("metadata", {})
        if "resourceVersion" in meta and meta["resourceVersion"] != pod["metadata"]["resourceVersion"]:
            raise FakeApiError(409, "conflict")
        for key in ("labels", "annotations"):
            target = pod["metadata"].setdefault(key, {})
            for k, v in (meta.get(key) or {}).items():
                if v is None:
                    target.pop(k, None)
                else:
                    target[k] = v
        for key in ("ownerReferences", "finalizers"):  # a merge patch replaces lists whole; None removes
            if key in meta:
                if meta[key] is None:
                    pod["metadata"].pop(key, None)
                else:
                    pod["metadata"][key] = copy.deepcopy(meta[key])
        pod["metadata"]["resourceVersion"] = str(int(pod["metadata"]["resourceVersion"]) + 1)
        return copy.deepcopy(pod)

    def delete_pod(self, namespace: str, name: str, uid: str | None = None, grace_seconds: int | None = None) -> None:
        pod = self.pods.get((namespace, name))
        if pod and (uid is None or pod["metadata"]["uid"] == uid):
            del self.pods[(namespace, name)]
            self.deleted_pods.append(name)
            self.delete_graces[name] = grace_seconds

    def get_owner(self, namespace: str, kind: str, name: str, api_version: str = "apps/v1") -> Obj | None:
        return copy.deepcopy(self.owners.get((kind, name)))

    def post_event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        self.events.append(
            {
                "involvedObject": {"name": obj["metadata"]["name"], "uid": obj["metadata"].get("uid")},
                "type": type_,
                "reason": reason,
                "message": message,
            }
        )

    def set_webhook_match(self, configuration: str, expression: str) -> None:
        self.webhook_matches.append((configuration, expression))

    def get_claim(self, namespace: str, name: str) -> Obj | None:
        return copy.deepcopy(self.claims.get(name))

    def get_volume(self, name: str) -> Obj | None:
        return copy.deepcopy(self.volumes.get(name))

    def pod_events(self, namespace: str, pod_name: str, pod_uid: str) -> list[Obj]:
        return [
            copy.deepcopy(e)
            for e in self.events
            if e["involvedObject"]["name"] == pod_name and e["involvedObject"]["uid"] == pod_uid
        ]

    def get_namespace(self, name):
        return {"metadata": {"name": name}}

    def _listed(self, what: str) -> None:
        if what in self.forbidden:
            raise FakeApiError(403, f'{what} is forbidden: cannot list resource "{what}" at the cluster scope')
        self.lists.append(what)

    def list_namespaces(self) -> list[Obj]:
        self._listed("namespaces")
        return [{"metadata": {"name": n, "labels": dict(labels)}} for n, labels in self.namespace_labels.items()]

    def list_active_pods(self, namespace: str | None = None) -> list[Obj]:
        if namespace is None:
            self._listed("pods")
        else:
            self.lists.append(f"pods in {namespace}")
        return [
            copy.deepcopy(p)
            for (ns, _), p in self.pods.items()
            if namespace in (None, ns) and p["status"].get("phase") not in ("Succeeded", "Failed")
        ]

    def helper_node_facts(self, namespace: str, pod: str, port: int) -> Obj:
        answer = self.node_facts.get(pod, GOOD_NODE_FACTS)
        if isinstance(answer, Exception):
            raise answer
        return copy.deepcopy(answer)

    def list_nodes(self) -> list[Obj]:
        return copy.deepcopy(self.nodes)

    def cordon_node(self, name: str) -> None:
        next(n for n in self.nodes if n["metadata"]["name"] == name)["spec"]["unschedulable"] = True

    def list_node_pods(self, node: str, label_selector: str | None = None) -> list[Obj]:
        """``label_selector``: only the key=value form, comma-separated."""
        wanted = dict(term.split("=", 1) for term in label_selector.split(",")) if label_selector else {}
        return [
            copy.deepcopy(p)
            for p in self.pods.values()
            if p["spec"].get("nodeName") == node and all(p["metadata"]["labels"].get(k) == v for k, v in wanted.items())
        ]

    def list_disruption_budgets(self, namespace: str) -> list[Obj]:
        return [copy.deepcopy(b) for b in self.budgets if b["metadata"]["namespace"] == namespace]

    def evict_pod(self, namespace: str, name: str, uid: str, grace_seconds: int | None = None) -> None:
        """Deletes the pod at once, unless ``eviction_errors`` has an answer left for it."""
        errors = self.eviction_errors.get(name)
        if errors:
            raise FakeApiError(errors.pop(0), "Cannot evict pod as it would violate the pod's disruption budget.")
        self.evicted.append(name)
        self.eviction_graces[name] = grace_seconds
        self.delete_pod(namespace, name, uid)

    def list_services(self, namespace: str) -> list[Obj]:
        return copy.deepcopy(self.services)

    def get_migration(self, namespace: str, name: str) -> Obj | None:
        for callback in list(self.on_get_migration):
            callback(self)
        found = self.migrations.get((namespace, name))
        return copy.deepcopy(found) if found else None

    def list_migrations(self, namespace: str | None) -> list[Obj]:
        return [copy.deepcopy(m) for (ns, _), m in self.migrations.items() if namespace in (None, ns)]

    def create_migration(self, namespace: str, body: Obj, dry_run: bool = False) -> Obj:
        migration = {"apiVersion": api.API_VERSION, "kind": api.KIND, **copy.deepcopy(body)}
        meta = migration["metadata"]
        meta.setdefault("name", meta.pop("generateName", "pm-") + "x7k2q")
        meta.update(
            namespace=namespace,
            uid="0f1e2d3c-aaaa-bbbb-cccc-000000000001",
            generation=1,
            creationTimestamp="2030-01-01T00:00:00Z",
            resourceVersion="1",
        )
        migration.setdefault("status", {})
        if not dry_run:
            self.migrations[(namespace, meta["name"])] = migration
        return copy.deepcopy(migration)

    def patch_migration(self, namespace: str, name: str, patch: Obj) -> Obj:
        migration = self.migrations[(namespace, name)]
        migration["metadata"].setdefault("annotations", {}).update(patch["metadata"]["annotations"])
        bump(migration)
        return copy.deepcopy(migration)

    def patch_migration_status(
        self, namespace: str, name: str, status: Obj, resource_version: str | None = None
    ) -> Obj:
        migration = self.migrations[(namespace, name)]
        if resource_version and resource_version != migration["metadata"]["resourceVersion"]:
            raise FakeApiError(409, "the object has been modified; please apply your changes to the latest version")
        current = migration.setdefault("status", {})
        for key, value in status.items():
            if value is None:
                current.pop(key, None)
            else:
                current[key] = copy.deepcopy(value)
        bump(migration)
        return copy.deepcopy(migration)


def bump(obj: Obj) -> Obj:
    """A change the API server would record: a new resourceVersion."""
    obj["metadata"]["resourceVersion"] = str(int(obj["metadata"].get("resourceVersion") or 0) + 1)
    return obj


class FakeHelpers:
    """Records every helper call; ``fail`` maps a method name to the exception it raises."""

    def __init__(self, kube: FakeKube) -> None:
        self.kube = kube
        self.calls: list[tuple] = []
        self.fail: dict[str, Exception] = {}
        self.frozen: set[str] = set()
        self.restored_answer: dict[str, bool] | None = None
        self.cleanup_kept: dict[str, list[Obj]] = {}  # node -> the "kept" list of its cleanup answer
        self.cut: set[str] = set()  # pod uids whose network is cut
        self.killed: set[str] = set()
        self.memory = 0  # bytes the source pod uses
        self.open_files: dict[str, list[Obj]] = {}  # container -> the "openFiles" of its checkpoint answer
        self.grants: dict[tuple[str, str], str] = {}  # (receiving node, archive id) -> the node it may come from
        self.dumped_metadata: list[Obj] = []  # the pod's labels and annotations at each checkpoint (the fence)
        self.settled: list[tuple] = []  # (node, pod, migration uid, original images) of each settle call

    def _record(self, name: str, *args: Any) -> None:
        self.calls.append((name, *args))
        if name in self.fail:
            raise self.fail[name]

    def ensure_images(self, target, images, source, timeout):
        self._record("ensure_images", target.node, tuple(images), source.node)
        return {"present": images, "copied": []}

    def checkpoint(self, source, namespace, pod, container, archive_id, timeout, since=None):
        self._record("checkpoint", source.node, pod, container, archive_id)
        meta = self.kube.pods[(namespace, pod)]["metadata"]
        self.dumped_metadata.append(copy.deepcopy({"labels": meta["labels"], "annotations": meta["annotations"]}))
        return {
            "id": archive_id,
            "bytes": 1000,
            "sha256": "ab" * 32,
            "seconds": 0.2,
            "stats": {"frozen_time": 12000, "pages_written": 64, "freezing_time": 10},
            "openFiles": self.open_files.get(container, []),
        }

    def network_cut(self, helper, pod_uid):
        self._record("network_cut", helper.node, pod_uid)
        self.cut.add(pod_uid)
        return {"cut": True}

    def network_restore(self, helper, pod_uid):
        self._record("network_restore", helper.node, pod_uid)
        self.cut.discard(pod_uid)
        return {"cut": False}

    def kill(self, helper, pod_uid, *, thaw):
        self._record("kill", helper.node, pod_uid, thaw)
        assert pod_uid in self.frozen, "killed while running: its SIGTERM handler could run"
        self.killed.add(pod_uid)
        return {"killed": 3}

    def pod_memory(self, helper, pod_uid):
        self._record("pod_memory", helper.node, pod_uid)
        return self.memory

    def pack_volume(self, source, pod_uid, volume, archive_id, timeout):
        self._record("pack_volume", source.node, pod_uid, volume, archive_id)
        assert pod_uid in self.frozen, "volume copied while the source runs"
        return {"id": archive_id, "bytes": 500, "sha256": "cd" * 32, "seconds": 0.05, "files": 2}

    def unpack_volume(self, target, pod_uid, volume, archive_id, truncate, *, recorded, size, timeout):
        assert all(recorded.values()) and size, "the helper checks the archive against what the source recorded"
        self._record("unpack_volume", target.node, pod_uid, volume, archive_id, dict(truncate))
        return {"bytes": 500, "files": 2, "seconds": 0.02, "truncated": sorted(truncate)}

    def release_volumes(self, target, pod_uid, gate_volume, timeout):
        self._record("release_volumes", target.node, pod_uid, gate_volume)
        return {"released": True}

    def freeze(self, helper, pod_uid):
        self._record("freeze", helper.node, pod_uid)
        self.frozen.add(pod_uid)
        return {"frozen": []}

    def thaw(self, helper, pod_uid):
        self._record("thaw", helper.node, pod_uid)
        self.frozen.discard(pod_uid)
        return {"frozen": []}

    def grant_archive(self, receiver, archive_id, sender, *, recorded, size, seconds):
        """Not in ``calls``: recorded apart, for ``send`` to check the target was told what to accept first."""
        assert all(recorded.values()) and size and seconds > 0, "a grant names the archive as checkpointed, for a while"
        self.grants[(receiver.node, archive_id)] = sender.node

    def send(self, source, archive_id, target, compression, timeout):
        assert self.grants.get((target.node, archive_id)) == source.node, "sent without the target's grant"
        self._record("send", source.node, archive_id, target.node, compression)
        return {"bytes": 1000, "wireBytes": 400, "sha256": ("cd" if "--" in archive_id else "ab") * 32, "seconds": 0.1}

    def build_checkpoint_image(self, target, archive_id, container, image, *, recorded, size, timeout):
        assert all(recorded.values()) and size, "the helper checks the archive against what the checkpoint recorded"
        self._record("build_checkpoint_image", target.node, archive_id, container, image)
        return {"image": image}

    def restored(self, target, namespace, pod):
        self._record("restored", target.node, pod)
        containers = self.kube.pods[(namespace, pod)]["spec"]["containers"]
        return self.restored_answer if self.restored_answer is not None else {c["name"]: True for c in containers}

    def settle(self, target, namespace, pod, migration_uid, images):
        """Not in ``calls`` (asked on every poll until done): what each call was asked, in ``settled``."""
        self.settled.append((target.node, pod, migration_uid, dict(images)))
        return {"settled": sorted(images), "waiting": []}

    def cleanup(self, helper, migration_uid, aliases=False):
        self._record("cleanup", helper.node, migration_uid, *(["aliases"] if aliases else []))
        return {"deleted": [], "kept": self.cleanup_kept.get(helper.node, [])}


class FakeStop:
    """kopf's daemon stop flag; waiting advances the fake clock instead of sleeping.

    Not raised unless ``reason`` is set (a kopf.DaemonStoppingReason); ``reason_on_wait`` raises it during
    the next wait, as when the operator starts exiting while the daemon sleeps.
    """

    def __init__(self, clock: FakeClock, reason: Any = None, reason_on_wait: Any = None) -> None:
        self.clock = clock
        self.reason = reason
        self.reason_on_wait = reason_on_wait
        self.waits = 0

    def __bool__(self) -> bool:
        return self.reason is not None

    def wait(self, timeout: float | None = None) -> FakeStop:
        self.waits += 1
        if self.reason_on_wait is not None:
            self.reason, self.reason_on_wait = self.reason_on_wait, None
            return self
        self.clock.advance(timeout or 0)
        return self


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=100)  # every reading moves time on a little, like a real run
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


SERVICE = {"metadata": {"name": "counter"}, "spec": {"selector": {"app": "counter"}}}
CONFIG = Config(
    helper_namespace="pm",
    helper_port=9443,
    tls_dir=None,
    poll_seconds=1,
    retry_seconds=1,
    image="localhost/podmigration:test",
    handover_webhook="pm-statefulset-handover",
    base_images="copy",
)


def run_migration(deps: Any, namespace: str, name: str, stop: Any) -> None:
    """Drives the migration as the operator's daemon does (runner.advance), but in this thread, sleeping on the fake
    clock while it waits for a slot, until it is terminal or the operator stops."""
    from podmigration.controller.context import Run
    from podmigration.controller.runner import OperatorStopping, advance

    run = Run(deps, namespace, name, stop)
    while (queued := advance(run)) is not None:
        try:
            run.sleep(queued)
        except OperatorStopping:
            return


def start(world: tuple, **spec: Any) -> tuple[Obj, str]:
    """Creates PodMigration counter-mig for pod counter and runs it to its end; returns it and its uid."""
    kube, _, clock, _, deps = world
    migration = kube.create_migration(
        "default", {"metadata": {"name": "counter-mig"}, "spec": {"podName": "counter", "timeoutSeconds": 300, **spec}}
    )
    run_migration(deps, "default", "counter-mig", FakeStop(clock))
    return kube.migrations[("default", "counter-mig")], migration["metadata"]["uid"]
