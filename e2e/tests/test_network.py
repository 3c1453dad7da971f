"""The cluster's network as the migration tests rely on it: pods reach each other across nodes, and a ClusterIP
Service reaches its pod from the test host and from another pod."""

from __future__ import annotations

import json
import subprocess

from e2elib import NAMESPACE, SOURCE_NODE, TARGET_NODE, counter_pod, read_counter, running_pod
from kubernetes import client

PROBE = (
    "import json,socket,sys; c=socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5); "
    "print(c.makefile().readline().strip())"
)


def read_from_pod(pod: str, ip: str, port: int) -> dict:
    """One counter reading made from inside `pod` (kubectl exec), so the traffic starts in the pod network."""
    out = subprocess.run(
        ["kubectl", "exec", "-n", NAMESPACE, pod, "--", "python3", "-c", PROBE, ip, str(port)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_pods_and_services_are_reachable_across_nodes(core, pods, unique):
    client_pod, server_pod = f"net-client-{unique}", f"net-server-{unique}"
    core.create_namespaced_pod(NAMESPACE, counter_pod(client_pod, SOURCE_NODE))
    core.create_namespaced_pod(NAMESPACE, counter_pod(server_pod, TARGET_NODE))
    pods.extend([client_pod, server_pod])
    service = client.V1Service(
        metadata=client.V1ObjectMeta(name=server_pod),
        spec=client.V1ServiceSpec(
            selector={"app": server_pod}, ports=[client.V1ServicePort(port=80, target_port=8080)]
        ),
    )
    cluster_ip = core.create_namespaced_service(NAMESPACE, service).spec.cluster_ip
    try:
        running_pod(core, client_pod)
        server = running_pod(core, server_pod)
        direct = read_counter(server.status.pod_ip)

        assert read_from_pod(client_pod, server.status.pod_ip, 8080)["token"] == direct["token"]
        assert read_counter(cluster_ip, 80)["token"] == direct["token"]
        assert read_from_pod(client_pod, cluster_ip, 80)["token"] == direct["token"]
    finally:
        core.delete_namespaced_service(server_pod, NAMESPACE)
