"""Migration benchmark on the cluster of KUBECONFIG: durations by the amount of in-memory state, with
`compression: none` as the baseline and `zstd` measured against it in the same run. Prints figures, asserts nothing.

    make bench                                   # the local cluster, sizes 0, 64 and 256 MiB, 2 runs each
    python e2e/bench.py --sizes 0,512 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from kubernetes import client, config

sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))
import e2elib as lib  # noqa: E402

STAGES = ("checkpoint", "transfer", "restore", "downtime", "total")
MIB = 1 << 20


def migrate_once(core: client.CoreV1Api, custom: client.CustomObjectsApi, size: int, compression: str,
                 run: int) -> dict[str, float]:
    """One migration of a counter holding `size` MiB more memory; its durations and byte counts."""
    name = f"bench-{size}m-{compression}-{run}"
    core.create_namespaced_pod(lib.NAMESPACE, lib.counter_pod(name, lib.SOURCE_NODE, ballast_mb=size))
    migration_name = None
    try:
        lib.running_pod(core, name, timeout=300)
        migration_name = lib.start_migration(custom, name, lib.TARGET_NODE, compression=compression)
        status = lib.finished_migration(custom, migration_name, timeout=600)["status"]
        if status["phase"] != "Succeeded":
            raise SystemExit(f"{name}: {status['phase']}: {status.get('message')}")
        figures = {stage: status["durations"][stage] for stage in STAGES}
        figures["archive"] = status["checkpointBytes"] / MIB
        figures["wire"] = sum(c.get("wireBytes", 0) for c in status.get("containers", [])) / MIB
        return figures
    finally:
        core.delete_collection_namespaced_pod(lib.NAMESPACE, label_selector=f"app={name}", grace_period_seconds=0)
        if migration_name:
            custom.delete_namespaced_custom_object(lib.GROUP, lib.VERSION, lib.NAMESPACE, lib.PLURAL, migration_name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="0,64,256", help="extra MiB of process memory, comma-separated")
    parser.add_argument("--repeat", type=int, default=2, help="runs per size and compression (medians are shown)")
    args = parser.parse_args()
    config.load_kube_config()
    core, custom = client.CoreV1Api(), client.CustomObjectsApi()

    columns = ("MiB", "compression") + STAGES + ("archive MiB", "wire MiB")
    print(" ".join(f"{c:>11}" for c in columns))
    for size in (int(s) for s in args.sizes.split(",")):
        medians = {}
        for compression in ("none", "zstd"):
            runs = [migrate_once(core, custom, size, compression, i) for i in range(args.repeat)]
            medians[compression] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            row = medians[compression]
            print(f"{size:>11} {compression:>11} " + " ".join(f"{row[k]:>11.3f}" for k in STAGES)
                  + f" {row['archive']:>11.1f} {row['wire']:>11.1f}", flush=True)
        ratio = {k: medians["zstd"][k] / medians["none"][k] for k in ("transfer", "downtime", "total", "wire")
                 if medians["none"][k]}
        print(f"{size:>11} {'zstd/none':>11} " + "  ".join(f"{k} {v:.2f}x" for k, v in ratio.items()), flush=True)


if __name__ == "__main__":
    main()
