"""Fixtures of the operator's tests, laid out like the code (api/, domain/, clients/, controller/, webhooks/,
identity/, cli/, chart/). The fakes and builders are pmfakes.py, importable through pytest's ``pythonpath``
(pyproject.toml): tests/operator has no __init__.py on purpose, the package name "operator" would shadow the
standard library."""

import pytest
from pmfakes import CONFIG, SERVICE, FakeClock, FakeHelpers, FakeKube, make_helper_pod, make_node, make_pod

from podmigration import api
from podmigration.controller import faults
from podmigration.controller.context import Deps


@pytest.fixture
def world():
    """A two-container pod on worker-1 behind a Service, helpers on both workers; (kube, helpers, clock, events,
    deps). The replacement pod becomes Running and Ready as soon as it exists."""
    kube = FakeKube(
        pods=[make_pod("counter", containers=("app", "side"))],
        nodes=[make_node("worker-1"), make_node("worker-2")],
        services=[SERVICE],
        helper_pods=[make_helper_pod("worker-1", "10.0.0.1"), make_helper_pod("worker-2", "10.0.0.2")],
    )
    helpers = FakeHelpers(kube)
    clock = FakeClock()
    events: list = []

    def record(obj, *, type, reason, message):
        events.append((obj["kind"], type, reason, message))

    def replacement_becomes_ready(k):
        for pod in k.pods.values():
            if (
                api.MIGRATION_ANNOTATION in pod["metadata"].get("annotations", {})
                and pod["status"]["phase"] == "Pending"
            ):
                pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}

    kube.on_get_migration.append(replacement_becomes_ready)
    deps = Deps(kube=kube, helpers=helpers, config=CONFIG, events=record, clock=clock, faults=faults)
    return kube, helpers, clock, events, deps
