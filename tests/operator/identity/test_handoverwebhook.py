"""The StatefulSet hand-over webhook configuration the operator creates (handoverwebhook.py): it reaches the
operator's handler, fails closed, matches no pod until a hand-over, and goes with the release's ClusterRole."""

from __future__ import annotations

import base64

from podmigration.domain import handover
from podmigration.identity import handoverwebhook

OWNER = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "name": "pm-operator", "uid": "u1"}


def test_the_configuration_reaches_the_handler_and_matches_nothing_yet():
    config = handoverwebhook.definition("pm-statefulset-handover", "pm-operator", "pm-system", b"CA", OWNER)
    (webhook,) = config["webhooks"]
    assert webhook["clientConfig"]["service"] == {
        "name": "pm-operator",
        "namespace": "pm-system",
        "path": "/statefulset-handover",
        "port": 443,
    }
    assert base64.b64decode(webhook["clientConfig"]["caBundle"]) == b"CA"
    assert webhook["failurePolicy"] == "Fail"
    assert webhook["matchConditions"] == [{"name": "handover", "expression": handover.match_expression([])}]
    assert config["metadata"]["ownerReferences"] == [OWNER]
