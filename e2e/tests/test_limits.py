"""Migrations at a time per source node: the ones over the limit wait in Pending, saying why, and then run."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
from e2elib import (
    GROUP,
    NAMESPACE,
    OPERATOR_NAMESPACE,
    PLURAL,
    SOURCE_NODE,
    TARGET_NODE,
    TERMINAL,
    VERSION,
    counter_pod,
    running_pod,
    start_migration,
)

RUNNING = {"Preparing", "Checkpointing", "Transferring", "Restoring", "Finalizing"}


def set_operator_env(value: str) -> None:
    for cmd in (
        ["set", "env", "deploy/podmigration-operator", f"PM_MAX_OUTBOUND_PER_NODE={value}"],
        ["rollout", "status", "deploy/podmigration-operator", "--timeout=120s"],
    ):
        subprocess.run(["kubectl", "-n", OPERATOR_NAMESPACE, *cmd], check=True, capture_output=True, timeout=150)


@pytest.fixture
def one_per_node() -> Iterator[None]:
    set_operator_env("1")
    try:
        yield
    finally:
        set_operator_env("2")  # the chart's value


def test_over_the_per_node_limit_migrations_wait_their_turn_and_say_why(core, custom, pods, unique, one_per_node):
    names = [f"lim-{i}-{unique}" for i in range(3)]
    for name in names:
        core.create_namespaced_pod(NAMESPACE, counter_pod(name, SOURCE_NODE))
        pods.append(name)
    for name in names:
        running_pod(core, name)
    migrations = [start_migration(custom, name, TARGET_NODE) for name in names]

    seen: dict[str, set[tuple[str, str, str]]] = {m: set() for m in migrations}
    most_at_once = 0
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        statuses = {
            m: custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, m).get("status") or {}
            for m in migrations
        }
        for m, status in statuses.items():
            seen[m].add((status.get("phase", ""), status.get("reason", ""), status.get("message", "")))
        most_at_once = max(most_at_once, sum(s.get("phase") in RUNNING for s in statuses.values()))
        if all(s.get("phase") in TERMINAL for s in statuses.values()):
            break
        time.sleep(0.1)

    assert [max(p for p, _, _ in seen[m] if p in TERMINAL) for m in migrations] == ["Succeeded"] * 3, seen
    assert most_at_once == 1, seen
    queued = [m for m in migrations if any(r == "Queued" for _, r, _ in seen[m])]
    assert len(queued) == 2, seen
    for m in queued:
        assert any(
            p == "Pending" and f"free slot on node {SOURCE_NODE}" in msg and "limit 1 per node" in msg
            for p, r, msg in seen[m]
            if r == "Queued"
        ), seen[m]
