"""`kubectl migrate check` (cli/check.py): a verdict per node from the runtime, the kubelet, readiness and the helper,
and what to fix."""

from __future__ import annotations

import argparse
import io

from pmfakes import GOOD_NODE_FACTS, FakeApiError, FakeKube, make_helper_pod, make_node

from podmigration.cli.check import do_check, kubelet_problem, runtime_problem
from podmigration.cli.terminal import EXIT_FAILED, EXIT_OK


class Term:
    def __init__(self) -> None:
        self.out, self.err = io.StringIO(), io.StringIO()


def node(name: str, runtime: str = "cri-o://1.36.3", kubelet: str = "v1.36.3", **kw) -> dict:
    made = make_node(name, **kw)
    made["status"]["nodeInfo"] = {"containerRuntimeVersion": runtime, "kubeletVersion": kubelet}
    return made


def run(kube: FakeKube, *nodes: str) -> tuple[int, str]:
    term = Term()
    code = do_check(kube, argparse.Namespace(nodes=list(nodes), operator_namespace="podmigration-system"), term)
    return code, term.out.getvalue()


def test_every_node_ready():
    kube = FakeKube(
        nodes=[node("w1"), node("w2")], helper_pods=[make_helper_pod("w1", "1"), make_helper_pod("w2", "2")]
    )
    code, out = run(kube)
    assert code == EXIT_OK and out.count(" ready") == 2 and "fix" not in out


def test_a_node_without_a_ready_helper_is_named_with_the_fix():
    kube = FakeKube(
        nodes=[node("w1"), node("w2")],
        helper_pods=[make_helper_pod("w1", "1"), make_helper_pod("w2", "2", ready=False)],
    )
    code, out = run(kube, "w2")
    assert code == EXIT_FAILED and "NOT READY" in out and "fix w2: its node-helper is not Ready" in out


def test_runtimes_and_kubelets_that_cannot_migrate():
    assert runtime_problem("cri-o://1.34.6") is None
    assert "removed restore" in runtime_problem("containerd://2.4.2")
    assert "CRI-O only" in runtime_problem("containerd://2.3.1")
    assert kubelet_problem("v1.30.0") is None and "ContainerCheckpoint" in kubelet_problem("v1.29.4")


def two_nodes() -> FakeKube:
    return FakeKube(
        nodes=[node("w1"), node("w2")], helper_pods=[make_helper_pod("w1", "1"), make_helper_pod("w2", "2")]
    )


def test_a_node_whose_crio_restores_nothing_is_named_with_the_settings():
    kube = two_nodes()
    kube.node_facts["helper-w2"] = {**GOOD_NODE_FACTS, "crio_restores": False}
    code, out = run(kube)
    assert code == EXIT_FAILED and out.count("NOT READY") == 1
    assert "fix w2: CRI-O restores no containers: set enable_criu_support = true" in out
    assert 'container_level_enabled = "checkpoint_restore"' in out and "docs/security.md" in out
    assert "fix w1" not in out


def test_free_space_below_the_floor_and_an_unreadable_crio():
    kube = two_nodes()
    kube.node_facts["helper-w1"] = {**GOOD_NODE_FACTS, "free_bytes": 3 << 30, "floor_bytes": 8 << 30}
    kube.node_facts["helper-w2"] = {**GOOD_NODE_FACTS, "crio_restores": None, "crio_error": "unix:///x: refused"}
    code, out = run(kube)
    assert code == EXIT_FAILED
    assert "fix w1: only 3.0 GiB free in /var/lib/kubelet/checkpoints/podmigration, floor 8.0 GiB" in out
    assert "fix w2: cannot read CRI-O's configuration (unix:///x: refused)" in out


def test_a_proxy_call_that_fails_says_why_and_how_to_fix():
    kube = two_nodes()
    kube.node_facts["helper-w1"] = FakeApiError(403, 'pods "helper-w1" is forbidden')
    kube.node_facts["helper-w2"] = FakeApiError(503, "no endpoints available")
    code, out = run(kube)
    assert code == EXIT_FAILED
    assert "fix w1: you may not read what its node-helper sees (GET pods/proxy in podmigration-system" in out
    assert "kubectl auth can-i get pods/proxy -n podmigration-system" in out
    assert "fix w2: its node-helper did not answer GET /v1/node (no endpoints available)" in out
    assert "kubectl logs -n podmigration-system helper-w2" in out and "Traceback" not in out


def test_a_node_without_criu_is_named_with_where_the_helper_looked_and_the_fix():
    kube = two_nodes()
    kube.node_facts["helper-w2"] = {**GOOD_NODE_FACTS, "criu_path": None}
    code, out = run(kube)
    assert code == EXIT_FAILED and out.count("NOT READY") == 1
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:3]}
    assert "/usr/sbin/criu" in rows["w1"] and rows["w1"][-1] == "ready"
    assert "missing" in rows["w2"] and rows["w2"][-2:] == ["NOT", "READY"]
    assert (
        "fix w2: CRIU not found in /usr/local/sbin, /usr/local/bin, /usr/sbin, /usr/bin on the node: install CRIU 4.0 "
        "or later (4.2 on Linux 6.16+) on the runtime's PATH, or set nodeHelper.criuSearchPath to where it is"
    ) in out
    assert "fix w1" not in out and "Not reported yet" not in out
    assert "CRIU's version is not read" in out


def test_a_helper_that_does_not_report_criu_shows_unknown_without_a_problem():
    """An older helper (no criu_* fields), or nodeHelper.criuSearchPath empty: nothing looked for, nothing claimed."""
    kube = two_nodes()
    kube.node_facts["helper-w1"] = {k: v for k, v in GOOD_NODE_FACTS.items() if not k.startswith("criu_")}
    kube.node_facts["helper-w2"] = {**GOOD_NODE_FACTS, "criu_searched": [], "criu_path": None}
    code, out = run(kube)
    assert code == EXIT_OK and "fix" not in out
    header, w1, w2 = (line.split() for line in out.splitlines()[:3])
    criu = header.index("CRIU") - 1  # "CRI-O RESTORES" is two words in the header
    assert w1[criu] == "?" and w2[criu] == "?"
