"""Cuts a pod off the network inside its own network namespace, so nothing from outside reaches its processes over
new or established connections while it is moved (the Service fence leaves established flows alone).

One filter chain, PODMIGRATION-CUT, accepts loopback and drops everything else; INPUT and OUTPUT jump to it first.
IPv4 must work; IPv6 is cut where the namespace has it."""

from __future__ import annotations

import logging
from pathlib import Path

from nodehelper.errors import NotFound
from nodehelper.runtime.commands import CommandError, Runner, Tools, run

log = logging.getLogger(__name__)

CHAIN = "PODMIGRATION-CUT"
HOOKS = ("INPUT", "OUTPUT")
# As `iptables -S` prints them, so the installed chain can be compared with what we want.
RULES = (f"-A {CHAIN} -i lo -j ACCEPT", f"-A {CHAIN} -o lo -j ACCEPT", f"-A {CHAIN} -j DROP")
JUMPS = {hook: f"-A {hook} -j {CHAIN}" for hook in HOOKS}


class NetworkCut:
    def __init__(self, tools: Tools, runner: Runner = run) -> None:
        self.tools = tools
        self.run = runner

    def cut(self, netns: Path) -> list[str]:
        """Installs the chain and the jumps where missing (idempotent); returns the families now cut."""
        if not netns.exists():
            raise NotFound(f"network namespace {netns} is gone (the sandbox was stopped)")
        return [binary for binary in ("iptables", "ip6tables") if self._apply(netns, binary, cut=True)]

    def restore(self, netns: Path) -> list[str]:
        """Removes every jump and the chain (idempotent); returns the families it looked at: none when the
        namespace is gone with its stopped sandbox, as nothing is cut then."""
        if not netns.exists():
            return []
        return [binary for binary in ("iptables", "ip6tables") if self._apply(netns, binary, cut=False)]

    def _apply(self, netns: Path, binary: str, cut: bool) -> bool:
        def ipt(*args: str) -> str:
            return self.run(self.tools.in_netns(netns, binary, "-w", "5", *args))

        try:
            lines = ipt("-S").splitlines()
        except CommandError as exc:
            if binary == "iptables":
                raise
            log.info("no IPv6 filtering in network namespace %s, left alone: %s", netns.name, exc.stderr[-200:])
            return False
        has_chain = f"-N {CHAIN}" in lines
        if cut:
            if not has_chain:
                ipt("-N", CHAIN)
            if tuple(line for line in lines if line.startswith(f"-A {CHAIN} ")) != RULES:
                if has_chain:
                    ipt("-F", CHAIN)
                for rule in RULES:
                    ipt(*rule.split())
            for hook in HOOKS:
                first = next((line for line in lines if line.startswith(f"-A {hook} ")), None)
                if first != JUMPS[hook]:
                    ipt("-I", hook, "1", "-j", CHAIN)
        else:
            for hook in HOOKS:
                for _ in range(lines.count(JUMPS[hook])):
                    ipt("-D", hook, "-j", CHAIN)
            if has_chain:
                ipt("-F", CHAIN)
                ipt("-X", CHAIN)
        return True
