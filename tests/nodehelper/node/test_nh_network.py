"""/v1/network/cut and /restore: the pod's pinned netns found from real crictl answers, iptables state idempotent."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from nhcalls import call
from nhtestlib import DATA_DIR, RunningHelper

from nodehelper.errors import BadRequest, NotFound
from nodehelper.identity import tlsconfig
from nodehelper.node.netcut import NetworkCut
from nodehelper.runtime.commands import CommandError, Tools
from nodehelper.runtime.containers import Containers

TOOLS = Tools("unix:///var/run/crio/crio.sock", Path("/s"), Path("/r"), "overlay")
# Real answers of crictl 1.36 / CRI-O 1.36 on the local cluster (inspectp trimmed to the fields the helper reads).
PODS = json.loads((DATA_DIR / "crictl-pods.json").read_text())
INSPECTP = json.loads((DATA_DIR / "crictl-inspectp.json").read_text())
INSPECTP_HOSTNET = json.loads((DATA_DIR / "crictl-inspectp-hostnetwork.json").read_text())
UID = PODS["items"][0]["metadata"]["uid"]
PINNED = "/var/run/netns/5835ff77-3aa9-4e44-8aa5-879078eff7b2"  # in crictl-inspectp.json
EMPTY = ["-P INPUT ACCEPT", "-P FORWARD ACCEPT", "-P OUTPUT ACCEPT"]


class FakeIptables:
    """The filter table of one address family as iptables -S prints it, changed by the commands the helper runs."""

    def __init__(self, rules: list[str] | None = None) -> None:
        self.chains: dict[str, list[str]] = {"INPUT": [], "FORWARD": [], "OUTPUT": []}
        self.user: list[str] = []
        for rule in rules or []:
            self.run(rule.split())

    def listing(self) -> str:
        lines = [f"-P {c} ACCEPT" for c in ("INPUT", "FORWARD", "OUTPUT")] + [f"-N {c}" for c in self.user]
        lines += [f"-A {chain} {rule}" for chain in [*self.chains] for rule in self.chains[chain]]
        return "\n".join(lines) + "\n"

    def run(self, args: list[str]) -> str:
        op, chain, rest = args[0], args[1] if len(args) > 1 else "", args[2:]
        fail = CommandError(["iptables", *args], 1, f"iptables: bad command {args}")
        if op == "-S":
            return self.listing()
        if op == "-N":
            if chain in self.chains:
                raise fail
            self.chains[chain] = []
            self.user.append(chain)
        elif op == "-F":
            self.chains[chain] = []
        elif op == "-X":
            if self.chains.pop(chain) or any(f"-j {chain}" in r for rules in self.chains.values() for r in rules):
                raise fail
            self.user.remove(chain)
        elif op == "-A":
            self.chains[chain].append(" ".join(rest))
        elif op == "-I":
            self.chains[chain].insert(int(rest[0]) - 1, " ".join(rest[1:]))
        elif op == "-D":
            self.chains[chain].remove(" ".join(rest))
        return ""


class FakeNode:
    """crictl and iptables (through nsenter) of one node; the pinned netns lives under `netns_dir` instead."""

    def __init__(self, netns_dir: Path, inspectp: dict[str, Any] = INSPECTP, ipv6: bool = True) -> None:
        self.netns = netns_dir / Path(PINNED).name
        self.netns.touch()
        self.inspectp = json.loads(json.dumps(inspectp).replace(PINNED, str(self.netns)))
        self.tables = {"iptables": FakeIptables(), "ip6tables": FakeIptables()}
        self.ipv6 = ipv6

    def __call__(self, argv: Sequence[str]) -> str:
        if argv[0] == "crictl":
            sub = argv[5]
            if sub == "pods":
                label = argv[argv.index("--label") + 1]
                return json.dumps(PODS if label == f"io.kubernetes.pod.uid={UID}" else {"items": []})
            assert sub == "inspectp" and argv[-1] == PODS["items"][0]["id"]
            return json.dumps(self.inspectp)
        assert argv[:3] == ["nsenter", f"--net={self.netns}", "--"] and argv[4:6] == ["-w", "5"]
        if argv[3] == "ip6tables" and not self.ipv6:
            raise CommandError(argv, 3, "ip6tables v1.8.11 (nf_tables): can't initialize ip6tables table `filter'")
        return self.tables[argv[3]].run(list(argv[6:]))


CUT = EMPTY + [
    "-N PODMIGRATION-CUT",
    "-A INPUT -j PODMIGRATION-CUT",
    "-A OUTPUT -j PODMIGRATION-CUT",
    "-A PODMIGRATION-CUT -i lo -j ACCEPT",
    "-A PODMIGRATION-CUT -o lo -j ACCEPT",
    "-A PODMIGRATION-CUT -j DROP",
]


@pytest.fixture
def node(helpers: tuple[RunningHelper, RunningHelper], tmp_path: Path) -> tuple[RunningHelper, FakeNode]:
    source, _ = helpers
    fake = FakeNode(tmp_path)
    source.pods.containers = Containers(TOOLS, runner=fake)
    source.pods.netcut = NetworkCut(TOOLS, runner=fake)
    return source, fake


def test_cut_drops_all_but_loopback_first_in_input_and_output_and_restore_removes_it(
    node: tuple[RunningHelper, FakeNode], pki: dict[str, Path]
) -> None:
    helper, fake = node
    ctx = tlsconfig.client_context(pki["node"])
    fake.tables["iptables"] = FakeIptables(["-A INPUT -p tcp -j ACCEPT", "-A OUTPUT -j ACCEPT"])  # the pod's own
    assert call(helper, "POST", "/v1/network/cut", {"podUID": UID}, ctx=ctx) == (200, {"cut": True})
    v4 = fake.tables["iptables"].listing().splitlines()
    assert v4[v4.index("-A INPUT -j PODMIGRATION-CUT") + 1] == "-A INPUT -p tcp -j ACCEPT"  # ours is first
    assert v4[v4.index("-A OUTPUT -j PODMIGRATION-CUT") + 1] == "-A OUTPUT -j ACCEPT"
    assert fake.tables["ip6tables"].listing().splitlines() == CUT

    before = [t.listing() for t in fake.tables.values()]
    assert call(helper, "POST", "/v1/network/cut", {"podUID": UID}, ctx=ctx) == (200, {"cut": True})
    assert [t.listing() for t in fake.tables.values()] == before  # idempotent: nothing added twice

    assert call(helper, "POST", "/v1/network/restore", {"podUID": UID}, ctx=ctx) == (200, {"cut": False})
    assert fake.tables["iptables"].listing().splitlines() == [
        *EMPTY,
        "-A INPUT -p tcp -j ACCEPT",
        "-A OUTPUT -j ACCEPT",
    ]
    assert fake.tables["ip6tables"].listing().splitlines() == EMPTY
    assert call(helper, "POST", "/v1/network/restore", {"podUID": UID}, ctx=ctx) == (200, {"cut": False})


def test_a_stopped_sandbox_cannot_be_cut_and_has_nothing_to_restore(
    node: tuple[RunningHelper, FakeNode], pki: dict[str, Path]
) -> None:
    helper, fake = node
    ctx = tlsconfig.client_context(pki["node"])
    fake.netns.unlink()  # CRI-O removed the pinned namespace when the sandbox stopped; crictl still names it
    status, body = call(helper, "POST", "/v1/network/cut", {"podUID": UID}, ctx=ctx)
    assert status == 404 and "is gone" in body["error"]
    assert call(helper, "POST", "/v1/network/restore", {"podUID": UID}, ctx=ctx) == (200, {"cut": False})


def test_a_half_installed_cut_is_completed_and_a_doubled_jump_fully_removed(tmp_path: Path) -> None:
    fake = FakeNode(tmp_path)
    cut = NetworkCut(TOOLS, runner=fake)
    fake.tables["iptables"] = FakeIptables(["-N PODMIGRATION-CUT", "-A PODMIGRATION-CUT -j DROP"])
    cut.cut(fake.netns)
    assert fake.tables["iptables"].listing().splitlines() == CUT
    fake.tables["iptables"].run(["-A", "INPUT", "-j", "PODMIGRATION-CUT"])
    cut.restore(fake.netns)
    assert fake.tables["iptables"].listing().splitlines() == EMPTY


def test_a_namespace_without_ipv6_is_cut_for_ipv4_only(tmp_path: Path) -> None:
    fake = FakeNode(tmp_path, ipv6=False)
    assert NetworkCut(TOOLS, runner=fake).cut(fake.netns) == ["iptables"]
    assert fake.tables["iptables"].listing().splitlines() == CUT


class BrokenIptables(FakeIptables):
    def run(self, args: list[str]) -> str:
        raise CommandError(["iptables", *args], 4, "iptables v1.8.11 (nf_tables): no nf_tables")


def test_ipv4_failure_fails_the_cut(tmp_path: Path) -> None:
    fake = FakeNode(tmp_path)
    fake.tables["iptables"] = BrokenIptables()
    with pytest.raises(CommandError, match="no nf_tables"):
        NetworkCut(TOOLS, runner=fake).cut(fake.netns)


def test_the_netns_comes_from_the_sandbox_and_a_host_network_pod_is_refused(tmp_path: Path) -> None:
    fake = FakeNode(tmp_path)
    assert Containers(TOOLS, runner=fake).sandbox_netns(UID) == fake.netns
    with pytest.raises(NotFound, match="no sandbox of pod 00000000"):
        Containers(TOOLS, runner=fake).sandbox_netns("00000000-1111-2222-3333-444444444444")
    with pytest.raises(BadRequest, match="network mode NODE"):
        Containers(TOOLS, runner=FakeNode(tmp_path, inspectp=INSPECTP_HOSTNET)).sandbox_netns(UID)
