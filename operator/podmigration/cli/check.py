"""`kubectl migrate check [NODE...]`: can these nodes take part in a migration, before the first one fails?

Per node, from what the API shows: the container runtime and its version (whether that runtime restores containers
at all), the kubelet's version (its checkpoint API), Ready and schedulable, and a Ready node-helper, which does not
start where CRI-O, its working directory or the checkpoint directory are missing; and from what that helper sees on
its node (GET /v1/node through the pod proxy, nodefacts.py): whether CRI-O restores, where the runtime would find
CRIU, free space against the floor. A verdict per node and what to fix. The helper runs no node binary, so CRIU's
version is not known: the closing line says so.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from .. import api
from ..clients.kube import Kube
from ..domain.helpers import helpers_from_pods
from ..domain.scheduling import node_ready
from . import args as cli_args
from . import nodefacts
from .output import table
from .terminal import EXIT_FAILED, EXIT_OK, Terminal, UsageError

Obj = dict[str, Any]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", text)[:2])


def runtime_problem(runtime: str) -> str | None:
    """Why this runtime (node.status.nodeInfo.containerRuntimeVersion, e.g. cri-o://1.36.3) cannot migrate pods."""
    kind, _, version = runtime.partition("://")
    if kind == "cri-o":
        return None
    if kind == "containerd":
        if _version(version) >= (2, 4):
            return (
                f"containerd {version} removed restore through CreateContainer (2.4; KEP-5823's RestorePod replaces "
                "it): it cannot restore a checkpoint; podmigration needs CRI-O"
            )
        return f"containerd {version}: podmigration restores through CRI-O only (use CRI-O on migrating nodes)"
    return f"runtime {runtime or 'unknown'}: podmigration needs CRI-O"


def kubelet_problem(version: str) -> str | None:
    """The kubelet checkpoint API (ContainerCheckpoint): on by default from 1.30, alpha (off) in 1.25-1.29."""
    if _version(version) >= (1, 30):
        return None
    if _version(version) >= (1, 25):
        return f"kubelet {version}: turn on the feature gate ContainerCheckpoint (alpha before 1.30)"
    return f"kubelet {version} has no checkpoint API (1.25 or later, 1.30 or later for it on by default)"


def node_problems(node: Obj, helper_ready: bool | None) -> list[str]:
    info = (node.get("status") or {}).get("nodeInfo") or {}
    problems = [
        p
        for p in (
            runtime_problem(info.get("containerRuntimeVersion", "")),
            kubelet_problem(info.get("kubeletVersion", "")),
        )
        if p
    ]
    if not node_ready(node):
        problems.append("the node is not Ready")
    if (node.get("spec") or {}).get("unschedulable"):
        problems.append("the node is cordoned: it can be a source, not a target")
    if helper_ready is None:
        problems.append("no podmigration node-helper on the node (nodeHelper.nodeSelector, tolerations, a taint?)")
    elif not helper_ready:
        problems.append(
            "its node-helper is not Ready: its log names what the node lacks (CRI-O's socket or working directory, "
            "CRIU, free space): kubectl logs -n <namespace> <helper pod>"
        )
    return problems


def do_check(kube: Kube, args: argparse.Namespace, term: Terminal) -> int:
    nodes = {n["metadata"]["name"]: n for n in kube.list_nodes()}
    missing = [n for n in args.nodes if n not in nodes]
    if missing:
        raise UsageError(f"no such node: {', '.join(missing)}")
    pods = kube.list_pods(args.operator_namespace, api.HELPER_LABEL_SELECTOR)
    helpers = helpers_from_pods(pods, 0)
    rows, fixes = [], []
    for name in args.nodes or sorted(nodes):
        info = (nodes[name].get("status") or {}).get("nodeInfo") or {}
        helper = helpers.get(name)
        problems = node_problems(nodes[name], helper.ready if helper else None)
        facts = None
        pod = _ready_pod(pods, name) if helper and helper.ready else None
        if pod is not None:
            facts, unreadable = nodefacts.fetch(kube, args.operator_namespace, pod)
            problems += nodefacts.fact_problems(facts) if facts is not None else [unreadable]
        helper_state = "none" if helper is None else ("Ready" if helper.ready else "not Ready")
        verdict = "ready" if not problems else "NOT READY"
        runtime, kubelet = info.get("containerRuntimeVersion", "?"), info.get("kubeletVersion", "?")
        rows.append([name, runtime, kubelet, helper_state, *nodefacts.summary(facts), verdict])
        fixes += [f"{name}: {p}" for p in problems]
    header = ["NODE", "RUNTIME", "KUBELET", "HELPER", "CRI-O RESTORES", "CRIU", "FREE", "VERDICT"]
    print(table([header, *rows]), file=term.out)
    for fix in fixes:
        print(f"  fix {fix}", file=term.out)
    print(
        "CRIU's version is not read (a helper runs no node binary): one too old fails at dump or restore, with "
        "CRIU's error. Needed: 4.0 or later (4.2 on Linux 6.16+): criu --version and criu check on the node.",
        file=term.out,
    )
    return EXIT_FAILED if fixes else EXIT_OK


def _ready_pod(pods: list[Obj], node: str) -> Obj | None:
    """The node's Ready helper pod (during a rollout a node can have two)."""
    return next((p for p in pods if (h := helpers_from_pods([p], 0).get(node)) is not None and h.ready), None)


def check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("nodes", nargs="*", metavar="NODE", help="the nodes to check (default: every node)")
    cli_args.version_arguments(parser)
