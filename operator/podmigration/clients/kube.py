"""Thin Kubernetes access on plain dicts (camelCase, as in YAML), so the decision modules stay pure.

Uses the dynamic client: the same dict shapes for core objects and PodMigrations, and no
dependence on the typed models, which change between client releases.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from pmcontract import paths

from .. import api
from ..api.types import Obj

MERGE_PATCH = "application/merge-patch+json"


def load_config() -> None:
    """The operator's credentials: in-cluster when running in a pod, else the normal kubeconfig resolution
    (the CLI prefers the user's kubeconfig instead, see cli.connect)."""
    try:
        k8s_config.load_incluster_config()
    except k8s_config.ConfigException:
        k8s_config.load_kube_config()


def status_code(exc: BaseException) -> int | None:
    return getattr(exc, "status", None) if isinstance(exc, ApiException) else None


def api_message(exc: BaseException) -> str:
    """The API server's own message (e.g. the admission/validation error), not the raw HTTP dump."""
    body: Any = getattr(exc, "body", None)
    try:
        return json.loads(body)["message"]
    except (TypeError, ValueError, KeyError):
        return str(getattr(exc, "reason", None) or exc)


#: (connect, read) seconds for every API call: a hung connection must not hold a frozen source past its deadline.
API_TIMEOUT = (5.0, 30.0)


class _TimedDynamicClient(DynamicClient):
    """The dynamic client with a timeout on every request (discovery included) unless the caller gives one."""

    def request(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        params.setdefault("_request_timeout", API_TIMEOUT)
        return super().request(method, path, body, **params)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _plain(instance: Any) -> Obj:
    return instance.to_dict()


class Kube:
    """The cluster operations the operator and CLI need; missing objects are ``None``, not errors."""

    def __init__(self, api_client: k8s_client.ApiClient | None = None) -> None:
        self._dyn = _TimedDynamicClient(api_client or k8s_client.ApiClient())

    @cached_property
    def _pods(self) -> Any:
        return self._dyn.resources.get(api_version="v1", kind="Pod")

    @cached_property
    def _nodes(self) -> Any:
        return self._dyn.resources.get(api_version="v1", kind="Node")

    @cached_property
    def _services(self) -> Any:
        return self._dyn.resources.get(api_version="v1", kind="Service")

    @cached_property
    def _claims(self) -> Any:
        return self._dyn.resources.get(api_version="v1", kind="PersistentVolumeClaim")

    @cached_property
    def _volumes(self) -> Any:
        return self._dyn.resources.get(api_version="v1", kind="PersistentVolume")

    @cached_property
    def _events(self) -> Any:
        return self._dyn.resources.get(api_version="v1", kind="Event")

    @cached_property
    def _budgets(self) -> Any:
        return self._dyn.resources.get(api_version="policy/v1", kind="PodDisruptionBudget")

    @cached_property
    def _csrs(self) -> Any:
        return self._dyn.resources.get(api_version="certificates.k8s.io/v1", kind="CertificateSigningRequest")

    @cached_property
    def _migrations(self) -> Any:
        return self._dyn.resources.get(api_version=api.API_VERSION, kind=api.KIND)

    def _get(self, resource: Any, name: str, namespace: str | None = None) -> Obj | None:
        try:
            return _plain(resource.get(name=name, namespace=namespace))
        except ApiException as exc:
            if status_code(exc) == 404:
                return None
            raise

    # pods
    def get_pod(self, namespace: str, name: str) -> Obj | None:
        return self._get(self._pods, name, namespace)

    def list_pods(self, namespace: str, label_selector: str) -> list[Obj]:
        return _plain(self._pods.get(namespace=namespace, label_selector=label_selector))["items"]

    def create_pod(self, namespace: str, body: Obj) -> Obj:
        return _plain(self._pods.create(body=body, namespace=namespace))

    def patch_pod(self, namespace: str, name: str, patch: Obj) -> Obj:
        return _plain(self._pods.patch(body=patch, name=name, namespace=namespace, content_type=MERGE_PATCH))

    def delete_pod(self, namespace: str, name: str, uid: str | None = None, grace_seconds: int | None = None) -> None:
        """Delete; gone already is fine. ``uid`` guards against deleting a newer pod of the same name."""
        body: Obj = {}
        if uid:
            body["preconditions"] = {"uid": uid}
        if grace_seconds is not None:
            body["gracePeriodSeconds"] = grace_seconds
        try:
            self._pods.delete(name=name, namespace=namespace, body=body or None)
        except ApiException as exc:
            if status_code(exc) not in (404, 409):
                raise

    def get_namespace(self, name: str) -> Obj | None:
        return self._get(self._dyn.resources.get(api_version="v1", kind="Namespace"), name)

    def list_namespaces(self) -> list[Obj]:
        return _plain(self._dyn.resources.get(api_version="v1", kind="Namespace").get())["items"]

    def list_active_pods(self, namespace: str | None = None) -> list[Obj]:
        """Every pod that has not finished, as the scheduler sees them (the preflight's placement rules: the pods
        around a target node), in all namespaces or in ``namespace`` only."""
        return _plain(
            self._pods.get(namespace=namespace, field_selector="status.phase!=Succeeded,status.phase!=Failed")
        )["items"]

    def list_node_pods(self, node: str, label_selector: str | None = None) -> list[Obj]:
        """Every pod bound to ``node``, in all namespaces (what a drain must empty), those matching
        ``label_selector`` only if given."""
        return _plain(self._pods.get(field_selector=f"spec.nodeName={node}", label_selector=label_selector or None))[
            "items"
        ]

    def evict_pod(
        self, namespace: str, name: str, uid: str, grace_seconds: int | None = None, dry_run: bool = False
    ) -> None:
        """Through the Eviction API, which enforces PodDisruptionBudgets (ApiException 429 while none allows it);
        gone already is fine. ``uid`` guards against evicting a newer pod of the same name; ``grace_seconds``
        overrides the pod's terminationGracePeriodSeconds."""
        options: Obj = {"preconditions": {"uid": uid}}
        if grace_seconds is not None:
            options["gracePeriodSeconds"] = grace_seconds
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
            "deleteOptions": options,
        }
        try:
            self._pods.eviction.create(body=body, name=name, namespace=namespace, dry_run="All" if dry_run else None)
        except ApiException as exc:
            if status_code(exc) not in (404, 409):
                raise

    def list_disruption_budgets(self, namespace: str) -> list[Obj]:
        return _plain(self._budgets.get(namespace=namespace))["items"]

    # nodes and services
    def list_nodes(self) -> list[Obj]:
        return _plain(self._nodes.get())["items"]

    def helper_node_facts(self, namespace: str, pod: str, port: int) -> Obj:
        """GET /v1/node of a node-helper, through the API server's pod proxy (the caller's own credentials,
        `pods/proxy` get): what the node shows that the API does not (pmcontract.bodies.NodeAnswer). The path is
        spelled here: the typed client's connect_get_namespaced_pod_proxy_with_path would quote its "/"."""
        api_client: Any = self._dyn.client
        request = api_client.param_serialize(
            method="GET",
            resource_path=f"/api/v1/namespaces/{namespace}/pods/https:{pod}:{port}/proxy{paths.NODE}",
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        response = api_client.call_api(*request, _request_timeout=API_TIMEOUT)
        response.read()
        if not 200 <= response.status < 300:
            raise ApiException(http_resp=response)
        return json.loads(response.data)

    def cordon_node(self, name: str) -> None:
        """spec.unschedulable, as ``kubectl cordon`` sets it: no new pod is scheduled there."""
        self._nodes.patch(body={"spec": {"unschedulable": True}}, name=name, content_type=MERGE_PATCH)

    def list_services(self, namespace: str) -> list[Obj]:
        return _plain(self._services.get(namespace=namespace))["items"]

    # owners
    def get_owner(self, namespace: str, kind: str, name: str, api_version: str = "apps/v1") -> Obj | None:
        """The pod's controller object (ReplicaSet, StatefulSet, Job, ...), or None when it is gone."""
        return self._get(self._dyn.resources.get(api_version=api_version, kind=kind), name, namespace)

    def set_webhook_match(self, configuration: str, expression: str) -> None:
        """Replace the match condition of the (single) webhook of a MutatingWebhookConfiguration."""
        resource = self._dyn.resources.get(
            api_version="admissionregistration.k8s.io/v1", kind="MutatingWebhookConfiguration"
        )
        patch = [
            {
                "op": "replace",
                "path": "/webhooks/0/matchConditions",
                "value": [{"name": "handover", "expression": expression}],
            }
        ]
        resource.patch(body=patch, name=configuration, content_type="application/json-patch+json")

    def post_event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        """A core/v1 Event about ``obj``, posted directly (kopf's poster works only inside its handlers' tasks,
        not in an admission webhook)."""
        meta = obj["metadata"]
        self._events.create(
            namespace=meta["namespace"],
            body={
                "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
                "involvedObject": {
                    "kind": obj.get("kind", "Pod"),
                    "apiVersion": obj.get("apiVersion", "v1"),
                    "name": meta["name"],
                    "namespace": meta["namespace"],
                    "uid": meta.get("uid"),
                },
                "type": type_,
                "reason": reason,
                "message": message[:1024],
                "source": {"component": "podmigration-operator"},
                "firstTimestamp": _now(),
                "lastTimestamp": _now(),
                "count": 1,
            },
        )

    # volumes and events
    def get_claim(self, namespace: str, name: str) -> Obj | None:
        return self._get(self._claims, name, namespace)

    def get_volume(self, name: str) -> Obj | None:
        return self._get(self._volumes, name)

    def pod_events(self, namespace: str, pod_name: str, pod_uid: str) -> list[Obj]:
        """The Events about one pod (core/v1: the kubelet posts its probe failures and kills there)."""
        selector = f"involvedObject.kind=Pod,involvedObject.name={pod_name},involvedObject.uid={pod_uid}"
        return _plain(self._events.get(namespace=namespace, field_selector=selector))["items"]

    # PodMigrations
    def get_migration(self, namespace: str, name: str) -> Obj | None:
        return self._get(self._migrations, name, namespace)

    def list_migrations(self, namespace: str | None) -> list[Obj]:
        return _plain(self._migrations.get(namespace=namespace))["items"]

    def create_migration(self, namespace: str, body: Obj, dry_run: bool = False) -> Obj:
        """``dry_run``: the API server admits and validates it but stores nothing."""
        return _plain(self._migrations.create(body=body, namespace=namespace, dry_run="All" if dry_run else None))

    def patch_migration(self, namespace: str, name: str, patch: Obj) -> Obj:
        return _plain(self._migrations.patch(body=patch, name=name, namespace=namespace, content_type=MERGE_PATCH))

    def delete_migration(self, namespace: str, name: str, uid: str) -> None:
        """Delete; gone already is fine. ``uid`` guards against deleting a newer PodMigration of the same name."""
        try:
            self._migrations.delete(name=name, namespace=namespace, body={"preconditions": {"uid": uid}})
        except ApiException as exc:
            if status_code(exc) not in (404, 409):
                raise

    def get_csr(self, name: str) -> Obj | None:
        return self._get(self._csrs, name)

    def patch_csr(self, name: str, subresource: str, status: Obj) -> Obj:
        """``subresource``: "approval" (conditions) or "status" (the certificate); each needs its signer right."""
        return _plain(
            self._csrs.subresources[subresource].patch(body={"status": status}, name=name, content_type=MERGE_PATCH)
        )

    def patch_migration_status(
        self, namespace: str, name: str, status: Obj, resource_version: str | None = None
    ) -> Obj:
        """Merge ``status``; with ``resource_version`` the API server refuses (409) when the object changed since."""
        body: Obj = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        return _plain(
            self._migrations.status.patch(body=body, name=name, namespace=namespace, content_type=MERGE_PATCH)
        )
