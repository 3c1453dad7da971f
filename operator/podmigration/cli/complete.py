"""Shell completion. kubectl (1.26+) completes `kubectl migrate ...` by running `kubectl_complete-migrate` with the
words typed so far, the last one being the word to complete, and reads Cobra's answer: one candidate a line, then
`:4` (no file names). argcomplete does the parsing; the completers here name pods, migrations and nodes."""

from __future__ import annotations

import argparse
import io
import os
import shlex
import sys
from collections.abc import Callable, Sequence

import argcomplete

from ..clients.kube import Kube
from .args import shorthand
from .entry import COMMANDS, connect, default_namespace, parser

#: Cobra's ShellCompDirectiveNoFileComp: the shell must not fall back to file names.
NO_FILES = ":4"

Lister = Callable[[Kube, argparse.Namespace], list[str]]


def _namespace(args: argparse.Namespace) -> str:
    return getattr(args, "namespace", None) or default_namespace(args.context, args.kubeconfig)


def pods(kube: Kube, args: argparse.Namespace) -> list[str]:
    return [p["metadata"]["name"] for p in kube.list_pods(_namespace(args), "")]


def migrations(kube: Kube, args: argparse.Namespace) -> list[str]:
    return [m["metadata"]["name"] for m in kube.list_migrations(_namespace(args))]


def nodes(kube: Kube, args: argparse.Namespace) -> list[str]:
    return [n["metadata"]["name"] for n in kube.list_nodes()]


#: argument dest -> what completes it.
LISTERS: dict[str, Lister] = {"pod": pods, "name": migrations, "node": nodes, "target": nodes}


def _completer(lister: Lister, kube: Kube | None) -> Callable[..., list[str]]:
    def complete(prefix: str, parsed_args: argparse.Namespace, **_: object) -> list[str]:
        try:
            return [name for name in lister(kube or connect(parsed_args), parsed_args) if name.startswith(prefix)]
        except Exception:
            return []

    return complete


def completing_parser(kube: Kube | None) -> argparse.ArgumentParser:
    """The CLI's parser with completers on the arguments that name cluster objects."""
    full = parser()
    for action in full._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                for argument in sub._actions:
                    if argument.dest in LISTERS:
                        argument.completer = _completer(LISTERS[argument.dest], kube)
    return full


class _Finder(argcomplete.CompletionFinder):
    def _init_debug_stream(self) -> None:
        """Debug output to stderr: argcomplete's default, file descriptor 9, may belong to someone else."""
        argcomplete.io.debug_stream = sys.stderr


def completions(words: Sequence[str], partial: str, kube: Kube | None = None) -> list[str]:
    """Candidates for `partial` after `words` (what follows `kubectl migrate`)."""
    rewritten = shorthand(words, COMMANDS)
    if rewritten == list(words) and not (words and words[0] in COMMANDS):  # no command or pod named yet
        offered = [] if partial.startswith("-") else [name for name in COMMANDS if name.startswith(partial)]
        return offered + _argcomplete(["pod", *words], partial, kube)
    return _argcomplete(rewritten, partial, kube)


def _argcomplete(words: Sequence[str], partial: str, kube: Kube | None) -> list[str]:
    line = shlex.join(["kubectl-migrate", *words]) + " " + partial
    out = io.StringIO()
    environment = {"_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)), "_ARGCOMPLETE_IFS": "\n"}
    saved = {key: os.environ.get(key) for key in environment}
    os.environ.update(environment)
    try:
        _Finder()(completing_parser(kube), always_complete_options=False, output_stream=out, exit_method=sys.exit)
    except SystemExit:
        pass
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return [word.rstrip() for word in out.getvalue().split("\n") if word.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    """The `kubectl_complete-migrate` entry point."""
    words = list(sys.argv[1:] if argv is None else argv) or [""]
    print("\n".join(completions(words[:-1], words[-1]) + [NO_FILES]))
    return 0
