"""How `kubectl migrate` prints: tables, timings of a finished migration, and `-o json|yaml|name`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TextIO

import yaml

from .. import api
from ..api.types import Obj
from ..domain.progressview import size
from ..domain.status import parse_time

DURATION_ROWS = ("checkpoint", "transfer", "restore", "downtime", "total")
OUTPUT_FORMATS = ("json", "yaml", "name")


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def _size(value: int | None) -> str:
    return "-" if value is None else size(value)


def age(created: str | None, now: datetime) -> str:
    if not created:
        return "-"
    elapsed = int((now - parse_time(created)).total_seconds())
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if elapsed >= length:
            return f"{elapsed // length}{unit}"
    return f"{max(elapsed, 0)}s"


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def timings(status: Mapping[str, Any]) -> str:
    """The durations and sizes of a finished migration, as a small table."""
    durations = status.get("durations") or {}
    text = table([["STAGE", "SECONDS"]] + [[name, seconds(durations.get(name))] for name in DURATION_ROWS])
    text += f"\ncheckpoint size {_size(status.get('checkpointBytes'))}, sent {_size(status.get('transferredBytes'))}"
    for container in status.get("containers") or []:
        criu = container.get("criu") or {}
        if criu:
            frozen = criu.get("frozenTime")
            text += (
                f"\ncontainer {container['name']}: frozen {frozen / 1e6:.3f}s"
                if frozen is not None
                else f"\ncontainer {container['name']}:"
            )
            text += f", {criu.get('pagesWritten', '-')} pages written"
    for volume in status.get("volumes") or []:
        text += (
            f"\nvolume {volume['name']} ({volume.get('medium', 'Disk')}): {_size(volume.get('bytes'))}, "
            f"copied in {seconds(volume.get('packSeconds'))}, sent in {seconds(volume.get('transferSeconds'))}, "
            f"in place in {seconds(volume.get('unpackSeconds'))}"
        )
    for warning in status.get("warnings") or []:
        text += f"\nwarning: {warning}"
    return text


def object_name(obj: Obj) -> str:
    """What `-o name` prints, as kubectl does: resource.group/name."""
    return f"{api.KIND.lower()}.{api.GROUP}/{obj['metadata']['name']}"


def emit(objects: list[Obj], fmt: str, out: TextIO, *, single: bool) -> None:
    """`-o json|yaml|name`: one object as itself, several as a kubectl List (as `kubectl get` does)."""
    if fmt == "name":
        for obj in objects:
            print(object_name(obj), file=out)
        return
    document: Obj = (
        objects[0]
        if single
        else {"apiVersion": "v1", "kind": "List", "items": objects, "metadata": {"resourceVersion": ""}}
    )
    if fmt == "json":
        print(json.dumps(document, indent=4), file=out)
    else:
        print(yaml.safe_dump(document, sort_keys=False), end="", file=out)
