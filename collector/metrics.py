"""Prometheus metrics of a running collector, read from its counters at each scrape."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector as _PrometheusCollector

if TYPE_CHECKING:
    from collector.service import Collector

_PREFIX = "dynamo_collector"

# counter field -> (metric name without _total, help)
_COUNTERS = {
    "messages": ("messages", "MQTT messages received (telemetry and status)"),
    "points": ("points_written", "Points InfluxDB confirmed"),
    "batches": ("batches_written", "Write batches InfluxDB confirmed"),
    "retries": ("write_retries", "Write attempts retried (unreachable, 5xx, 429, auth, 404)"),
    "dead_letters": ("dead_letters", "Messages or refused point groups set aside"),
    "rejected_points": ("rejected_points", "Points InfluxDB refused as invalid (400)"),
    "sequence_gaps": ("sequence_gap_messages", "Messages missing from gateways' sequences"),
    "sequence_repeats": ("sequence_repeats", "Messages received again (redeliveries)"),
    "sequence_late": ("sequence_late", "Missing messages that arrived after all (backlog)"),
    "sequence_lost": ("sequence_lost", "Missing messages given up as lost"),
    "sequence_stale": ("sequence_stale",
                       "Messages below what the sequence tracker remembers (not classified)"),
    "sequence_resets": ("sequence_resets", "Gateways that restarted their numbering"),
}


class _Exporter(_PrometheusCollector):
    def __init__(self, service: Collector) -> None:
        self._service = service

    def collect(self) -> Iterator[Metric]:
        counts = self._service.counters.snapshot()
        for key, (name, doc) in _COUNTERS.items():
            yield CounterMetricFamily(f"{_PREFIX}_{name}", doc, value=counts[key])
        yield GaugeMetricFamily(f"{_PREFIX}_sequence_missing",
                                "Messages skipped by gateways, neither arrived nor given up yet",
                                value=counts["sequence_missing"])
        yield GaugeMetricFamily(f"{_PREFIX}_queue_depth",
                                "Messages received, waiting for their write",
                                value=self._service.queue_depth)
        yield GaugeMetricFamily(f"{_PREFIX}_unacknowledged",
                                "Messages received and not yet acknowledged to the broker",
                                value=counts["held"])
        yield GaugeMetricFamily(f"{_PREFIX}_receive_maximum",
                                "Most unacknowledged messages the broker may send us",
                                value=self._service.receive_maximum)
        yield GaugeMetricFamily(f"{_PREFIX}_lag_seconds",
                                "At the last write: now minus the oldest gateway timestamp",
                                value=counts["lag_ms"] / 1000)
        last = counts["last_write_ms"]
        yield GaugeMetricFamily(f"{_PREFIX}_seconds_since_last_write",
                                "Seconds since InfluxDB last confirmed a write (-1: never)",
                                value=time.time() - last / 1000 if last else -1.0)
        yield GaugeMetricFamily(f"{_PREFIX}_connected", "1 while connected to the broker",
                                value=1.0 if self._service.connected.is_set() else 0.0)


def registry_for(service: Collector) -> CollectorRegistry:
    """A registry of this collector's metrics alone (several may live in one process)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_Exporter(service))
    return registry


def serve_metrics(service: Collector, *, port: int, host: str = "127.0.0.1") -> Callable[[], None]:
    """Serve `/metrics` on host:port from a daemon thread; returns the function that stops it."""
    server, _thread = start_http_server(port, addr=host, registry=registry_for(service))

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return stop
