"""`make mutate`: plant each bug of mutations.txt in turn, run the tests meant to catch it, report caught or missed.

A developer's check that the suite can fail where it matters (not part of `make test`). Each entry replaces one
exact line of one file; the file is written back byte for byte after its run, whatever happens.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIST = Path(__file__).with_name("mutations.txt")
#: A planted bug that makes a test hang is caught by the per-test timeout (pyproject); this bounds the whole run.
RUN_TIMEOUT = 300


@dataclass(frozen=True)
class Mutation:
    why: str
    file: str
    old: str
    new: str
    tests: list[str]


def parse(text: str) -> list[Mutation]:
    """Blocks separated by blank lines, each with `why:`, `file:`, `old:`, `new:`, `tests:` lines (`#` comments).
    `old`/`new` are whole lines, leading spaces after the one space that follows the colon included."""
    mutations = []
    for block in text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            if line.strip() and not line.startswith("#"):
                key, _, value = line.partition(":")
                fields[key.strip()] = value[1:] if value.startswith(" ") else value
        if fields:
            mutations.append(
                Mutation(fields["why"], fields["file"], fields["old"], fields["new"], fields["tests"].split())
            )
    return mutations


def run(mutation: Mutation, python: str) -> str:
    """caught, missed or stale (the old line is not in the file exactly once)."""
    path = ROOT / mutation.file
    original = path.read_bytes()
    text = original.decode()
    lines = text.split("\n")
    if lines.count(mutation.old) != 1:
        return "stale"
    lines[lines.index(mutation.old)] = mutation.new
    try:
        path.write_text("\n".join(lines))
        done = subprocess.run(
            [python, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *mutation.tests],
            cwd=ROOT,
            capture_output=True,
            timeout=RUN_TIMEOUT,
        )
        return (
            "caught"
            if done.returncode == 1
            else ("missed" if done.returncode == 0 else f"error (pytest exit {done.returncode})")
        )
    except subprocess.TimeoutExpired:
        return "caught (hung: the suite's run was stopped)"
    finally:
        path.write_bytes(original)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-k", default="", help="only mutations whose `why` contains this")
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` restores the file
    mutations = [m for m in parse(LIST.read_text()) if args.k in m.why]
    results = []
    for mutation in mutations:
        result = run(mutation, args.python)
        results.append(result)
        print(f"{result:8} {mutation.file}: {mutation.why}", flush=True)
    caught = sum(r.startswith("caught") for r in results)
    print(f"{caught} of {len(results)} planted bugs caught")
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
