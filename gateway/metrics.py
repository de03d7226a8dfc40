"""Prometheus metrics of a running gateway: its polls, its spool, its uplink.

Served by default on 127.0.0.1:9731 (`dynamo gateway run --metrics-port`); a Prometheus on the
server reaches it through the site's VPN or a node exporter's textfile, as docs/operations.md
says. Events (polls) are counted as they happen; the state (spool, uplink, devices) is read at
each scrape, so a scrape never waits on the event loop.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector as _PrometheusCollector

from telemetry.metrics import CertificateExpiry

if TYPE_CHECKING:
    from gateway.agent import Gateway

_PREFIX = "dynamo_gateway"


@dataclass
class GatewayMetrics:
    """The gateway's registry and the instruments its code updates."""

    registry: CollectorRegistry
    polls: Counter
    last_ack_seq: Gauge

    @classmethod
    def create(cls, gateway: Gateway) -> GatewayMetrics:
        registry = CollectorRegistry(auto_describe=True)
        polls = Counter(f"{_PREFIX}_polls", "Device polls, by device and result (ok, error)",
                        ["device", "result"], registry=registry)
        for device in gateway.health:
            for result in ("ok", "error"):
                polls.labels(device=device, result=result)  # at 0 before the first poll
        last_ack = Gauge(f"{_PREFIX}_last_ack_seq",
                         "Watermark of the collector's end-to-end acknowledgement: every "
                         "sequence number up to it is stored in InfluxDB (-1: none yet)",
                         registry=registry)
        last_ack.set(-1)
        registry.register(_State(gateway))
        registry.register(CertificateExpiry(gateway.config.broker))
        return cls(registry=registry, polls=polls, last_ack_seq=last_ack)

    def poll(self, device: str, ok: bool) -> None:
        self.polls.labels(device=device, result="ok" if ok else "error").inc()


class _State(_PrometheusCollector):
    """What the gateway holds now, read at each scrape."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def collect(self) -> Iterator[Metric]:
        gw = self._gateway
        counters = gw.forwarder.counters
        labels = ["site", "gateway"]
        ids = [gw.config.site, gw.config.gateway]
        info = GaugeMetricFamily(f"{_PREFIX}_info", "Always 1: the gateway's identity and version",
                                 labels=[*labels, "version", "config_hash"])
        info.add_metric([*ids, _version(), gw.config_hash], 1)
        yield info
        yield GaugeMetricFamily(f"{_PREFIX}_connected", "1 while connected to the broker",
                                value=1.0 if gw.publisher.connected.is_set() else 0.0)
        yield GaugeMetricFamily(f"{_PREFIX}_spool_messages",
                                "Messages in the spool, not yet acknowledged",
                                value=gw.forwarder.depth)
        oldest = counters.oldest_ts
        yield GaugeMetricFamily(f"{_PREFIX}_spool_oldest_age_seconds",
                                "Age of the oldest message in the spool (0: empty)",
                                value=max(0.0, time.time() - oldest / 1000) if oldest else 0.0)
        yield GaugeMetricFamily(f"{_PREFIX}_spool_next_seq",
                                "Sequence number the next message will get",
                                value=counters.next_seq)
        yield CounterMetricFamily(f"{_PREFIX}_spool_thinned",
                                  "Messages thinned out at the spool's bound (oldest first)",
                                  value=counters.thinned)
        yield CounterMetricFamily(f"{_PREFIX}_spool_dropped",
                                  "Messages dropped at the spool's bound", value=counters.dropped)
        void = counters.void
        yield GaugeMetricFamily(f"{_PREFIX}_spool_void_numbers",
                                "Numbers the last power cut left unaccounted for (write-behind; "
                                "0: none)", value=0 if void is None else void[1] - void[0] + 1)
        yield CounterMetricFamily(f"{_PREFIX}_restamped",
                                  "Spooled messages re-stamped when the clock was set",
                                  value=gw.restamped)
        yield GaugeMetricFamily(f"{_PREFIX}_clock_synced", "1 while the clock is synchronised",
                                value=1.0 if gw.clock_synced else 0.0)
        up = GaugeMetricFamily(f"{_PREFIX}_device_up", "1 while the device's last poll was ok",
                               labels=["device"])
        for device, health in sorted(gw.health.items()):
            up.add_metric([device], 1.0 if health == "ok" else 0.0)
        yield up
        yield from _heartbeats(gw)


def _heartbeats(gateway: Gateway) -> Iterator[Metric]:
    """Age and bound of each loop's heartbeat: past its bound, the watchdog keep-alives stop
    (gateway/watchdog.py), so `age > bound` warns before systemd restarts the gateway."""
    age = GaugeMetricFamily(f"{_PREFIX}_poll_heartbeat_age_seconds",
                            "Seconds since the device's poll loop last completed a poll",
                            labels=["device"])
    bound = GaugeMetricFamily(f"{_PREFIX}_poll_heartbeat_bound_seconds",
                              "Longest a healthy poll loop of the device goes between two polls",
                              labels=["device"])
    forwarder = None
    for name, (seconds, bound_s) in sorted(gateway.liveness.ages().items()):
        kind, _, device = name.partition(":")
        if kind == "poll":
            age.add_metric([device], seconds)
            bound.add_metric([device], bound_s)
        elif kind == "forwarder":
            forwarder = seconds
    yield age
    yield bound
    # Declared with no sample until the forwarder's loop first goes round.
    loop = GaugeMetricFamily(f"{_PREFIX}_forwarder_heartbeat_age_seconds",
                             "Seconds since the forwarder's loop last went round")
    if forwarder is not None:
        loop.add_metric([], forwarder)
    yield loop


def scrape(url: str, *, timeout_s: float = 5.0) -> dict[str, float]:
    """A running gateway's metrics read from `url`: each sample's value by its name (for
    metrics with labels, the last sample served). OSError while nothing answers there."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        text = response.read().decode()
    return {sample.name: float(sample.value)
            for family in text_string_to_metric_families(text) for sample in family.samples}


def _version() -> str:
    from gateway.agent import software_version

    return software_version()
