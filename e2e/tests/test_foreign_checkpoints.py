"""Checkpoint images from elsewhere (F2): with `enable_criu_support` CRI-O restores any image that carries its
checkpoint annotation, under any name and from any registry, with the credentials, capabilities and seccomp state
recorded in it; pod-guard only knows podmigration's own names. The mitigation a stock CRI-O offers, which README.md
recommends for the namespaces that are never migrated: a signature policy in effect for the namespace
(`<signature_policy_dir>/<namespace>.json`) makes CRI-O refuse every restore there (podmigration's too, which is why
it cannot cover the namespaces that migrate). Shown here on the target node for the test namespace; the test
removes the file again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2elib import NAMESPACE, SOURCE_NODE, TARGET_NODE, checkpoint_image, counter_pod, node_exec, running_pod, wait_for
from test_smoke import kubelet_checkpoint

#: CRI-O's default signature_policy_dir (v1.36); the file's content is the nodes' system policy, so pulls are
#: judged as before.
POLICY = f"/etc/crio/policies/{NAMESPACE}.json"


@pytest.fixture
def namespaced_policy() -> Iterator[None]:
    node_exec(TARGET_NODE, "sh", "-c", f"mkdir -p /etc/crio/policies && cp /etc/containers/policy.json {POLICY}")
    try:
        yield
    finally:
        node_exec(TARGET_NODE, "rm", "-f", POLICY)


def create_error(core, name: str) -> str | None:
    statuses = core.read_namespaced_pod(name, NAMESPACE).status.container_statuses or []
    assert not any(s.state.running for s in statuses), f"pod {name} started from the foreign checkpoint image"
    waiting = [
        s.state.waiting for s in statuses if s.state.waiting and s.state.waiting.reason == "CreateContainerError"
    ]
    return waiting[0].message if waiting else None


def test_a_foreign_checkpoint_image_is_refused_in_a_namespace_with_a_signature_policy(
    api, core, pods, unique, namespaced_policy
):
    victim = f"f2-{unique}"
    core.create_namespaced_pod(NAMESPACE, counter_pod(victim, SOURCE_NODE))
    pods.append(victim)
    running_pod(core, victim)
    # Any checkpoint archive, as an attacker's registry would serve it: an image of an innocent name.
    archive = kubelet_checkpoint(api, SOURCE_NODE, victim, "counter")
    data = node_exec(SOURCE_NODE, "cat", archive)
    node_exec(SOURCE_NODE, "rm", "-f", archive)
    image = f"localhost/innocent-app:{unique}"
    checkpoint_image(TARGET_NODE, data, image)
    thief = f"f2-thief-{unique}"
    try:
        spec = counter_pod(thief, TARGET_NODE, image=image)
        spec["spec"]["containers"][0]["imagePullPolicy"] = "Never"
        core.create_namespaced_pod(NAMESPACE, spec)  # admission has nothing against this name
        pods.append(thief)
        message = wait_for(f"CRI-O's refusal of pod {thief}", lambda: create_error(core, thief), timeout=90)
        assert "signature validation is not supported for container restore" in message, message
    finally:
        core.delete_namespaced_pod(thief, NAMESPACE, grace_period_seconds=0)
        wait_for(
            f"pod {thief} gone",
            lambda: (
                thief
                not in {
                    p.metadata.name for p in core.list_namespaced_pod(NAMESPACE, label_selector=f"app={thief}").items
                }
            ),
            timeout=60,
        )
        node_exec(TARGET_NODE, "buildah", "rmi", "-f", image, check=False)
