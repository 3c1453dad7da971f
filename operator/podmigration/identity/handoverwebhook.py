"""The StatefulSet hand-over webhook's configuration, made by the operator rather than the chart.

The operator rewrites its matchConditions while StatefulSet pods are handed over (handover.py, kube.set_webhook_match);
as a chart field, ``helm upgrade`` or a GitOps tool's self-heal would put the chart's "match nothing" back in the
middle of a hand-over. So the chart renders none: the operator creates it at start when it is missing (matching no
pod until a hand-over lists one) and never rewrites an existing one but for its caBundle (identity/bootstrap.py) and
its owner. Its owner is the release's operator ClusterRole, so that ``helm uninstall`` removes it with the release
(garbage collection of a cluster-scoped dependent of a cluster-scoped owner).
"""

from __future__ import annotations

import base64
import logging
from typing import Any, cast

from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def definition(name: str, service: str, namespace: str, ca: bytes, owner: Obj) -> Obj:
    """What the chart used to render: pod CREATEs sent to /statefulset-handover, failing closed, matching none."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/part-of": "podmigration"},
            "ownerReferences": [owner],
        },
        "webhooks": [
            {
                "name": "statefulset-handover.podmigration.dev",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "timeoutSeconds": 10,
                "reinvocationPolicy": "Never",
                "clientConfig": {
                    "service": {"name": service, "namespace": namespace, "path": "/statefulset-handover", "port": 443},
                    "caBundle": base64.b64encode(ca).decode(),
                },
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["pods"],
                        "scope": "Namespaced",
                    }
                ],
                # Rewritten while StatefulSet pods are handed over; no pod matches "false".
                "matchConditions": [{"name": "handover", "expression": "false"}],
            }
        ],
    }


def ensure(name: str, service: str, namespace: str, ca: bytes, owner_role: str) -> None:
    """Create the configuration if it is missing; an existing one (another replica's, a kept one of an earlier chart,
    mid-hand-over) keeps its match and gets the ClusterRole as owner."""
    role: Any = k8s_client.RbacAuthorizationV1Api().read_cluster_role(owner_role)
    owner = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "name": role.metadata.name,
        "uid": role.metadata.uid,
    }
    admission = k8s_client.AdmissionregistrationV1Api()
    try:
        admission.create_mutating_webhook_configuration(cast(Any, definition(name, service, namespace, ca, owner)))
        log.info("created MutatingWebhookConfiguration %s", name)
        return
    except ApiException as exc:
        if exc.status != 409:
            raise
    existing: Any = admission.read_mutating_webhook_configuration(name)
    if not any(ref.uid == owner["uid"] for ref in existing.metadata.owner_references or []):
        admission.patch_mutating_webhook_configuration(name, {"metadata": {"ownerReferences": [owner]}})
        log.info("MutatingWebhookConfiguration %s now belongs to ClusterRole %s", name, owner_role)
