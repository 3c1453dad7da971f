import os

from prometheus_client import CollectorRegistry

from nodehelper.metrics import Metrics


def test_transfers_and_the_archive_store_are_counted(tmp_path):
    metrics = Metrics(CollectorRegistry())
    metrics.transferred(4 << 20, 2.0)
    metrics.transferred(1 << 20, 0.0)  # too fast to time: counted, no throughput
    (tmp_path / "a.tar").write_bytes(b"x" * 300)
    (tmp_path / "b.tar").write_bytes(b"y" * 200)
    os.symlink("/etc/hostname", tmp_path / "link")  # never followed nor counted
    metrics.watch_store(tmp_path)
    value = metrics.registry.get_sample_value
    assert value("podmigration_helper_transferred_bytes_total") == 5 << 20
    assert value("podmigration_helper_transfer_throughput_bytes_per_second_count") == 1
    assert value("podmigration_helper_transfer_throughput_bytes_per_second_sum") == 2 << 20
    assert value("podmigration_helper_archive_store_bytes") == 500
    assert value("podmigration_helper_archive_store_files") == 2
