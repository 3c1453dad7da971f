"""Prometheus metrics of a node-helper (prometheus_client, on the container port named `metrics`, plain HTTP on the
node's IP): archives sent to other nodes and how fast, and how much the archive store holds now."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

#: Bytes per second: from a slow link (1 MiB/s) to a fast one (over 1 GiB/s).
THROUGHPUT_BUCKETS = tuple(float(2**n) for n in range(20, 32))


class ArchiveStore(Collector):
    """podmigration_helper_archive_store_bytes and _files: what the archive directory holds when scraped (its
    regular files, read without following links, as everything the helper does in it)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def collect(self) -> Iterator[GaugeMetricFamily]:
        size = count = 0
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            entries = []
        for entry in entries:
            if entry.is_file(follow_symlinks=False):
                size += entry.stat(follow_symlinks=False).st_size
                count += 1
        yield GaugeMetricFamily(
            "podmigration_helper_archive_store_bytes", "Bytes of archives stored on this node", value=size
        )
        yield GaugeMetricFamily("podmigration_helper_archive_store_files", "Archives stored on this node", value=count)


class Metrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self.sent = Counter(
            "podmigration_helper_transferred_bytes",
            "Bytes of archives sent to other nodes (on the wire, compressed)",
            registry=registry,
        )
        self.transfers = Histogram(
            "podmigration_helper_transfer_throughput_bytes_per_second",
            "Throughput of each archive sent to another node (wire bytes per second)",
            buckets=THROUGHPUT_BUCKETS,
            registry=registry,
        )
        self.store: ArchiveStore | None = None

    def transferred(self, wire_bytes: int, seconds: float) -> None:
        self.sent.inc(wire_bytes)
        if seconds > 0:
            self.transfers.observe(wire_bytes / seconds)

    def watch_store(self, directory: Path) -> None:
        self.store = ArchiveStore(directory)
        self.registry.register(self.store)


#: The process's metrics.
METRICS = Metrics()


def serve(address: str, port: int, archive_dir: Path) -> None:
    """/metrics on address:port (0: not at all), from a thread of prometheus_client's."""
    if port:
        METRICS.watch_store(archive_dir)
        start_http_server(port, addr=address)
