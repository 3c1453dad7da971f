"""Smoke test of the cluster itself, without the operator: the checkpoint/restore path the product is built on.

A counter pod on the source node is checkpointed through the kubelet checkpoint API, the archive is turned into a
checkpoint image on the target node, and a pod created from that image is restored by CRI-O with its memory.
"""

from __future__ import annotations

import json

from e2elib import (
    NAMESPACE,
    SOURCE_NODE,
    TARGET_NODE,
    checkpoint_image,
    counter_pod,
    node_exec,
    pod_gone,
    read_counter,
    restored_flags,
    running_pod,
)
from kubernetes import client


def kubelet_checkpoint(api: client.ApiClient, node: str, pod: str, container: str) -> str:
    """POST /checkpoint/{ns}/{pod}/{container} on the node's kubelet (through the API server proxy)."""
    method, url, headers, body, _ = api.param_serialize(
        "POST",
        f"/api/v1/nodes/{node}/proxy/checkpoint/{NAMESPACE}/{pod}/{container}",
        query_params=[("timeout", "120")],
        auth_settings=["BearerToken"],
    )
    resp = api.call_api(method, url, header_params=headers, body=body)
    assert resp.status == 200, resp.data
    items = json.loads(resp.read())["items"]
    assert len(items) == 1, items
    return items[0]


def test_checkpoint_on_one_node_restores_on_another(api, core, pods, unique):
    source = f"smoke-src-{unique}"
    core.create_namespaced_pod(NAMESPACE, counter_pod(source, SOURCE_NODE))
    pods.append(source)
    src_ip = running_pod(core, source).status.pod_ip
    before = read_counter(src_ip)

    archive_path = kubelet_checkpoint(api, SOURCE_NODE, source, "counter")
    at_checkpoint = read_counter(src_ip)  # the kubelet API leaves the source running
    assert at_checkpoint["token"] == before["token"] and at_checkpoint["count"] >= before["count"]

    archive = node_exec(SOURCE_NODE, "cat", archive_path)
    node_exec(SOURCE_NODE, "rm", "-f", archive_path)
    assert len(archive) > 0
    image = f"localhost/smoke-checkpoint:{unique}"
    checkpoint_image(TARGET_NODE, archive, image)

    restored = f"smoke-dst-{unique}"
    spec = counter_pod(restored, TARGET_NODE, image=image)
    spec["spec"]["containers"][0]["imagePullPolicy"] = "Never"
    core.create_namespaced_pod(NAMESPACE, spec)
    pods.append(restored)
    pod = running_pod(core, restored)
    assert pod.spec.node_name == TARGET_NODE

    assert restored_flags(TARGET_NODE, pod) == {"counter": True}

    after = read_counter(pod.status.pod_ip)
    assert after["token"] == before["token"], "the restored counter is a fresh process, not the checkpointed one"
    assert after["count"] >= before["count"], (before, after)

    core.delete_namespaced_pod(restored, NAMESPACE, grace_period_seconds=0)
    pod_gone(core, restored)
    node_exec(TARGET_NODE, "buildah", "rmi", image)
