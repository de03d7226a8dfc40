"""Prometheus metrics of a running collector, read from its counters at each scrape.

Served by default on 127.0.0.1:9732 (`dynamo collector run --metrics-port`); every metric is
listed in docs/operations.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector as _PrometheusCollector

from telemetry.metrics import CertificateExpiry, serve_registry
from telemetry.site import Broker

if TYPE_CHECKING:
    from collector.service import Collector

_PREFIX = "dynamo_collector"

# counter field -> (metric name without _total, help)
# Reasons a message is set aside, always exported (at 0 too, so that rate() sees the first):
# invalid payload or topic, the collector's own error, InfluxDB refused the points (400).
# Other reasons (the configuration's checks) appear once they happen.
DEAD_LETTER_REASONS = ("invalid", "collector_error", "influx_refused")

_COUNTERS = {
    "messages": ("messages", "MQTT messages received (telemetry and status)"),
    "points": ("points_written", "Points InfluxDB confirmed"),
    "batches": ("batches_written", "Write batches InfluxDB confirmed"),
    "retries": ("write_retries", "Write attempts retried (unreachable, 5xx, 429, auth, 404)"),
    "rejected_points": ("rejected_points", "Points InfluxDB refused as invalid (400)"),
    "units_converted": ("units_converted",
                        "Readings converted to their sensor's configured unit (admission)"),
    "sequence_gaps": ("sequence_gap_messages", "Messages missing from gateways' sequences"),
    "sequence_repeats": ("sequence_repeats", "Messages received again (redeliveries)"),
    "sequence_late": ("sequence_late", "Missing messages that arrived after all (backlog)"),
    "sequence_lost": ("sequence_lost", "Missing messages given up as lost"),
    "sequence_stale": ("sequence_stale",
                       "Messages below what the sequence tracker remembers (not classified)"),
    "sequence_resets": ("sequence_resets", "Gateways that restarted their numbering"),
    "sequence_void": ("sequence_void", "Numbers a gateway's power cut left unaccounted for "
                      "(lost with the cut or never used)"),
}


class _Exporter(_PrometheusCollector):
    def __init__(self, service: Collector) -> None:
        self._service = service

    def collect(self) -> Iterator[Metric]:
        counts = self._service.counters.snapshot()
        reasons, stored = self._service.counters.breakdowns()
        for key, (name, doc) in _COUNTERS.items():
            yield CounterMetricFamily(f"{_PREFIX}_{name}", doc, value=counts[key])
        dead = CounterMetricFamily(f"{_PREFIX}_dead_letters",
                                   "Messages or refused point groups set aside, by reason",
                                   labels=["reason"])
        for reason in sorted({*DEAD_LETTER_REASONS, *reasons}):
            dead.add_metric([reason], reasons.get(reason, 0))
        yield dead
        yield from _per_gateway(stored)
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
        yield from _dead_letter_store(self._service)
        yield from _configuration(self._service)


def _dead_letter_store(service: Collector) -> Iterator[Metric]:
    """The dead-letter store's fill and what its bound dropped (collector.deadletters)."""
    stats = service.dead_letters.stats()
    yield GaugeMetricFamily(f"{_PREFIX}_dead_letters_stored", "Dead letters held",
                            value=stats.count)
    yield GaugeMetricFamily(f"{_PREFIX}_dead_letters_stored_bytes", "Payload bytes held",
                            value=stats.bytes)
    yield GaugeMetricFamily(f"{_PREFIX}_dead_letters_capacity_ratio",
                            "Fill of the store: the larger of count/max and bytes/max",
                            value=max(stats.count / service.dead_letters.max_count,
                                      stats.bytes / service.dead_letters.max_bytes))
    yield CounterMetricFamily(f"{_PREFIX}_dead_letters_dropped",
                              "Oldest dead letters dropped at the store's bound (since the "
                              "file was made)", value=stats.dropped)


def _configuration(service: Collector) -> Iterator[Metric]:
    """The site configurations the collector admits messages by (collector.admission)."""
    admission, configs = service.admission, service.site_configs
    yield GaugeMetricFamily(f"{_PREFIX}_declared_gateways",
                            "Gateways the site configurations declare (-1: no check)",
                            value=-1 if admission is None else len(admission.sources))
    if configs is not None:
        yield CounterMetricFamily(f"{_PREFIX}_config_reloads", "Configuration reloads applied",
                                  value=configs.reloads)
        yield CounterMetricFamily(f"{_PREFIX}_config_reload_failures",
                                  "Configuration reloads refused (the previous one kept)",
                                  value=configs.failed_reloads)


def _per_gateway(stored: dict[tuple[str, str], int]) -> Iterator[Metric]:
    """Freshness per gateway: what was stored last, and how far behind now that is.

    The lag grows while InfluxDB (or the gateway's uplink) is down and falls back to about a
    poll interval once the backlog is written: the outage shows, then the recovery.
    """
    newest = GaugeMetricFamily(f"{_PREFIX}_gateway_last_stored_timestamp_seconds",
                               "Gateway timestamp of the newest message of the gateway stored",
                               labels=["site", "gateway"])
    lag = GaugeMetricFamily(f"{_PREFIX}_gateway_lag_seconds",
                            "Now minus the gateway timestamp of its newest message stored",
                            labels=["site", "gateway"])
    now = time.time()
    for (site, gateway), ts_ms in sorted(stored.items()):
        newest.add_metric([site, gateway], ts_ms / 1000)
        lag.add_metric([site, gateway], max(0.0, now - ts_ms / 1000))
    yield newest
    yield lag


def registry_for(service: Collector, *, broker: Broker | None = None) -> CollectorRegistry:
    """A registry of this collector's metrics alone (several may live in one process), with
    the expiry of `broker`'s TLS certificates when it has some."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_Exporter(service))
    if broker is not None:
        registry.register(CertificateExpiry(broker))
    return registry


def serve_metrics(service: Collector, *, port: int, host: str = "127.0.0.1",
                  broker: Broker | None = None) -> Callable[[], None]:
    """Serve `/metrics` on host:port from a daemon thread; returns the function that stops it
    (a port already taken is logged, and the collector runs on without metrics)."""
    stop = serve_registry(registry_for(service, broker=broker), port=port, host=host,
                          service="collector")
    return stop or (lambda: None)
