"""Fixtures of the end-to-end suite: a real cluster from KUBECONFIG (helpers live in the e2elib package).

Nothing here starts a cluster: `make e2e` brings the local one up first, and any other cluster that meets
e2e/README.md works the same way by pointing KUBECONFIG (and PM_E2E_NODE_EXEC) at it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from e2elib import NAMESPACE, SOURCE_NODE, counter_pod, running_pod, wait_for
from kubernetes import client, config

#: Seconds an end-to-end test may take unless it says otherwise (@pytest.mark.timeout): a hung migration fails its
#: test instead of holding the suite (pyproject's default is for the unit tests).
E2E_TIMEOUT = 900
HERE = os.path.dirname(os.path.abspath(__file__))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if str(item.path).startswith(HERE + os.sep) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(E2E_TIMEOUT))


@pytest.fixture(scope="session")
def api() -> client.ApiClient:
    if not os.environ.get("KUBECONFIG"):
        pytest.fail("KUBECONFIG is not set: run through `make e2e` or point it at a cluster (see e2e/README.md)")
    config.load_kube_config()
    return client.ApiClient()


@pytest.fixture(scope="session")
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture(scope="session")
def apps(api: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api)


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:6]


@pytest.fixture
def pods(core: client.CoreV1Api) -> Iterator[list[str]]:
    """Names of pods a test creates; afterwards every pod labelled app=<name> goes (a migrated pod keeps its labels)."""
    names: list[str] = []
    yield names
    for name in names:
        core.delete_collection_namespaced_pod(NAMESPACE, label_selector=f"app={name}", grace_period_seconds=0)


@pytest.fixture
def running_counter(core: client.CoreV1Api, pods: list[str]) -> Any:
    """running_counter(name, node=worker-1): a counter pod the test owns (deleted after it), once Running and Ready."""

    def start(name: str, node: str = SOURCE_NODE) -> client.V1Pod:
        core.create_namespaced_pod(NAMESPACE, counter_pod(name, node))
        pods.append(name)
        return running_pod(core, name)

    return start


@pytest.fixture(scope="session")
def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


@pytest.fixture
def claim(core, unique) -> Iterator[Any]:
    """claim(mode): a PersistentVolume (hostPath-backed, no node affinity) bound to a claim with that access mode."""
    made: list[str] = []

    def make(mode: str) -> str:
        name = f"pm-claim-{unique}-{mode.lower()}"
        core.create_persistent_volume(
            {
                "metadata": {"name": name},
                "spec": {
                    "capacity": {"storage": "1Mi"},
                    "accessModes": [mode],
                    "storageClassName": "pm-e2e",
                    "persistentVolumeReclaimPolicy": "Retain",
                    "hostPath": {"path": f"/tmp/{name}", "type": "DirectoryOrCreate"},
                    "claimRef": {"namespace": NAMESPACE, "name": name},
                },
            }
        )
        core.create_namespaced_persistent_volume_claim(
            NAMESPACE,
            {
                "metadata": {"name": name},
                "spec": {
                    "accessModes": [mode],
                    "storageClassName": "pm-e2e",
                    "volumeName": name,
                    "resources": {"requests": {"storage": "1Mi"}},
                },
            },
        )
        made.append(name)
        wait_for(
            f"claim {name} Bound",
            lambda: core.read_namespaced_persistent_volume_claim(name, NAMESPACE).status.phase == "Bound",
            timeout=60,
        )
        return name

    yield make
    for name in made:
        core.delete_namespaced_persistent_volume_claim(name, NAMESPACE)
        core.delete_persistent_volume(name)
