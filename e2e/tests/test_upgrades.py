"""Upgrades and uninstalls while migrations run: the node-helper DaemonSet restarted under three migrations, and
`helm uninstall` in the middle of one (then the chart installed again for the tests after it)."""

from __future__ import annotations

import datetime
import subprocess
import time

from e2elib import (
    GROUP,
    NAMESPACE,
    OPERATOR_NAMESPACE,
    PLURAL,
    REPO,
    SOURCE_NODE,
    TARGET_NODE,
    VERSION,
    counter_pod,
    finished_migration,
    node_exec,
    nothing_left_of_pods,
    nothing_left_on_nodes,
    pod_gone,
    read_counter,
    running_pod,
    start_migration,
    wait_for,
)

HELPERS = "podmigration-node-helper"
PAUSE_AT, PAUSED_AT = f"{GROUP}/test-pause-at", f"{GROUP}/test-paused-at"


def restart_helpers(apps) -> None:
    """What `kubectl rollout restart ds/podmigration-node-helper` does: a new template annotation."""
    now = datetime.datetime.now(datetime.UTC).isoformat()
    apps.patch_namespaced_daemon_set(
        HELPERS,
        OPERATOR_NAMESPACE,
        {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}},
    )


def helpers_rolled_out(apps) -> None:
    def done() -> bool:
        ds = apps.read_namespaced_daemon_set(HELPERS, OPERATOR_NAMESPACE)
        s = ds.status
        return (
            s.observed_generation == ds.metadata.generation
            and s.updated_number_scheduled == s.desired_number_scheduled == s.number_ready == s.number_available
        )

    wait_for("the node-helper DaemonSet rolled out", done, timeout=300, interval=1)


def test_migrations_survive_a_restart_of_every_node_helper(core, apps, custom, pods, unique):
    names = [f"up{i}-{unique}" for i in range(3)]
    for name in names:
        core.create_namespaced_pod(NAMESPACE, counter_pod(name, SOURCE_NODE, ballast_mb=384))
        pods.append(name)
    before = {name: read_counter(running_pod(core, name, timeout=180).status.pod_ip) for name in names}
    migrations = [start_migration(custom, name, TARGET_NODE, timeoutSeconds=600) for name in names]
    time.sleep(1.5)
    restart_helpers(apps)
    for name, migration in zip(names, migrations):
        status = finished_migration(custom, migration, timeout=600)["status"]
        assert (status["phase"], status["reason"]) == ("Succeeded", "Succeeded"), status
        new = running_pod(core, status["targetPod"])
        assert new.spec.node_name == TARGET_NODE
        after = read_counter(new.status.pod_ip)
        assert after["token"] == before[name]["token"], f"{name} restarted instead of continuing"
        assert after["count"] >= before[name]["count"]
        pod_gone(core, name)
    helpers_rolled_out(apps)
    nothing_left_of_pods(core, custom, *names)


def helm(*args: str, check: bool = True) -> None:
    """The chart's helm (e2e/cluster/build-helm.sh prints its path) on the cluster of KUBECONFIG."""
    binary = subprocess.run(
        ["bash", f"{REPO}/e2e/cluster/build-helm.sh"], capture_output=True, text=True, check=True
    ).stdout.strip()
    subprocess.run([binary, *args], check=check, timeout=600)


def install_again() -> None:
    """The chart installed as e2e/install.sh does, for the tests after this one; a release a failed uninstall left
    half-removed is finished without hooks first."""
    if subprocess.run(["bash", f"{REPO}/e2e/install.sh"], timeout=900).returncode != 0:
        helm("uninstall", "podmigration", "-n", OPERATOR_NAMESPACE, "--no-hooks", "--wait", check=False)
        subprocess.run(["bash", f"{REPO}/e2e/install.sh"], check=True, timeout=900)


def criu_blocks(core) -> dict[str, bool]:
    """Node -> whether its /etc/criu/runc.conf holds the helper's managed block."""
    return {
        node.metadata.name: b"BEGIN podmigration"
        in node_exec(node.metadata.name, "sh", "-c", "cat /etc/criu/runc.conf 2>/dev/null || true")
        for node in core.list_node().items
    }


def test_helm_uninstall_during_a_migration_rolls_it_back_and_leaves_nothing(core, apps, custom, pods, unique):
    name = f"un-{unique}"
    core.create_namespaced_pod(NAMESPACE, counter_pod(name, SOURCE_NODE, ballast_mb=64))
    pods.append(name)
    before = read_counter(running_pod(core, name).status.pod_ip)
    assert all(criu_blocks(core).values())
    migration = start_migration(custom, name, TARGET_NODE, annotations={PAUSE_AT: "transferring"})
    held = wait_for(
        f"PodMigration {migration} held in Transferring",
        lambda: (lambda m: m if m["metadata"].get("annotations", {}).get(PAUSED_AT) else None)(
            custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, migration)
        ),
        timeout=120,
    )
    try:
        helm("uninstall", "podmigration", "-n", OPERATOR_NAMESPACE, "--wait", "--timeout", "5m")
        # The source serves again, as the same process: thawed, its network and Service labels back.
        source = running_pod(core, name)
        assert source.spec.node_name == SOURCE_NODE
        after = read_counter(source.status.pod_ip)
        assert after["token"] == before["token"] and after["count"] >= before["count"]
        assert not any(criu_blocks(core).values()), criu_blocks(core)
        assert custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"] == []
        nothing_left_on_nodes(core, held["metadata"]["uid"], source.metadata.uid)
    finally:
        install_again()
    assert all(criu_blocks(core).values())
    helpers_rolled_out(apps)
