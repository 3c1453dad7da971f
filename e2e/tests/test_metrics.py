"""The operator's Prometheus metrics, scraped as Prometheus would reach them: through the API server's pod proxy."""

from __future__ import annotations

from e2elib import (
    NAMESPACE,
    OPERATOR_NAMESPACE,
    OPERATOR_SELECTOR,
    SOURCE_NODE,
    TARGET_NODE,
    finished_migration,
    start_migration,
    wait_for,
)
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families

METRICS_PORT, HELPER_METRICS_PORT = 9090, 9091  # chart values metrics.port, metrics.helperPort
HELPER_SELECTOR = "app.kubernetes.io/name=podmigration-node-helper"


def scrape(
    core, selector: str = OPERATOR_SELECTOR, port: int = METRICS_PORT, node: str | None = None
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of every Ready pod selected (on `node`), summed by name and labels (for the operator: the
    leader counts, the others add 0). Retried while a pod refuses (503 from the proxy): an earlier test's rollout
    of the operator may still be replacing replicas."""

    def attempt() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for pod in core.list_namespaced_pod(OPERATOR_NAMESPACE, label_selector=selector).items:
            if (
                pod.status.phase != "Running"
                or pod.metadata.deletion_timestamp
                or not all(s.ready for s in pod.status.container_statuses or [])
                or node not in (None, pod.spec.node_name)
            ):
                continue
            try:
                text = core.connect_get_namespaced_pod_proxy_with_path(
                    f"{pod.metadata.name}:{port}", OPERATOR_NAMESPACE, "metrics"
                )
            except ApiException as exc:
                if exc.status == 503:
                    return None
                raise
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    key = (sample.name, tuple(sorted(sample.labels.items())))
                    samples[key] = samples.get(key, 0.0) + sample.value
        return samples or None

    return wait_for(f"metrics of the pods {selector}", attempt, timeout=60, interval=1)


def total(samples, name: str, **labels: str) -> float:
    return sum(
        value
        for (metric, got), value in samples.items()
        if metric == name and all(dict(got).get(k) == v for k, v in labels.items())
    )


def test_a_migration_is_counted_with_its_result_downtime_and_bytes_and_its_events_come_from_the_operator(
    core, custom, running_counter, unique
):
    name = f"metrics-{unique}"
    running_counter(name)
    before = scrape(core)
    helper_before = scrape(core, HELPER_SELECTOR, HELPER_METRICS_PORT, SOURCE_NODE)
    migration = start_migration(custom, name, TARGET_NODE)
    status = finished_migration(custom, migration)["status"]
    assert status["phase"] == "Succeeded", status
    after = scrape(core)
    helper_after = scrape(core, HELPER_SELECTOR, HELPER_METRICS_PORT, SOURCE_NODE)

    def grew(metric: str, **labels: str) -> float:
        return total(after, metric, **labels) - total(before, metric, **labels)

    assert grew("podmigration_migrations_finished_total", result="Succeeded", reason=status["reason"]) == 1
    assert grew("podmigration_migrations_started_total") >= 1
    assert grew("podmigration_downtime_seconds_count") >= 1
    assert grew("podmigration_transferred_bytes_total") >= status["transferredBytes"] > 0
    assert grew("podmigration_phase_duration_seconds_count", phase="Checkpointing") >= 1

    # the source node's helper shows what it sent
    assert total(helper_after, "podmigration_helper_transferred_bytes_total") > total(
        helper_before, "podmigration_helper_transferred_bytes_total"
    )
    assert total(helper_after, "podmigration_helper_transfer_throughput_bytes_per_second_count") > total(
        helper_before, "podmigration_helper_transfer_throughput_bytes_per_second_count"
    )
    assert ("podmigration_helper_archive_store_bytes", ()) in helper_after

    # and its Events come from the operator (kubectl describe: "From: podmigration-operator"), not from kopf
    events = core.list_namespaced_event(NAMESPACE, field_selector=f"involvedObject.name={migration}").items
    assert events and {e.source.component for e in events} == {"podmigration-operator"}, events
