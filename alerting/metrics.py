"""Prometheus metrics of the central alerting service, read at each scrape.

Served by default on 127.0.0.1:9733 (`dynamo alerts run --metrics-port`). Notifications are
counted from the alert store, the record of every SMS tried: the counts survive a restart and
agree with `dynamo alerts history`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector as _PrometheusCollector

from telemetry.metrics import CertificateExpiry
from telemetry.site import Broker

if TYPE_CHECKING:
    from alerting.service import AlertService

_PREFIX = "dynamo_alerting"
# Always exported (at 0 too) so that rate() and absent-series alerts see them from the start.
_RESULTS = ("sent", "failed", "rate_limited")


class _Exporter(_PrometheusCollector):
    def __init__(self, service: AlertService) -> None:
        self._service = service

    def collect(self) -> Iterator[Metric]:
        service = self._service
        c = service.counters
        with c.lock:
            counts = (c.messages, c.malformed, c.evaluations, c.evaluation_errors, c.ticks,
                      c.replies, c.commands, c.commands_rejected, c.commands_duplicate)
        (messages, malformed, evaluations, errors, ticks, replies, commands, rejected,
         duplicate) = counts
        yield CounterMetricFamily(f"{_PREFIX}_messages", "MQTT messages received",
                                  value=messages)
        yield CounterMetricFamily(f"{_PREFIX}_malformed_messages",
                                  "Messages that could not be read (counted and skipped)",
                                  value=malformed)
        evaluated = CounterMetricFamily(f"{_PREFIX}_evaluations",
                                        "Rule evaluations, by what started them",
                                        labels=["trigger"])
        evaluated.add_metric(["message"], evaluations)
        evaluated.add_metric(["tick"], ticks)
        yield evaluated
        yield CounterMetricFamily(f"{_PREFIX}_evaluation_errors",
                                  "Messages whose evaluation failed (logged, skipped)",
                                  value=errors)
        yield CounterMetricFamily(f"{_PREFIX}_sms_replies", "SMS replies read from the modem",
                                  value=replies)
        handled = CounterMetricFamily(f"{_PREFIX}_commands",
                                      "Commands from the api (acknowledge, silence), by result",
                                      labels=["result"])
        handled.add_metric(["applied"], commands)
        handled.add_metric(["rejected"], rejected)
        handled.add_metric(["duplicate"], duplicate)
        yield handled
        yield GaugeMetricFamily(f"{_PREFIX}_connected",
                                "1 while connected and subscribed to the broker",
                                value=1.0 if service.connected.is_set() else 0.0)
        yield from _from_store(service)


def _from_store(service: AlertService) -> Iterator[Metric]:
    notifications, open_alerts = service.engine.store.counts()
    sent = CounterMetricFamily(f"{_PREFIX}_notifications",
                               "SMS notifications tried, by notifier and result "
                               "(sent, failed, rate_limited)", labels=["notifier", "result"])
    names = {n.name for n in service.engine.notifier.notifiers}
    keys = {*notifications, *((name, r) for name in names for r in _RESULTS if r != "rate_limited"),
            ("", "rate_limited")}
    for notifier, result in sorted(keys):
        sent.add_metric([notifier, result], notifications.get((notifier, result), 0))
    yield sent
    alerts = GaugeMetricFamily(f"{_PREFIX}_open_alerts",
                               "Alerts pending or firing, by state and severity",
                               labels=["state", "severity"])
    for (state, severity), count in sorted(open_alerts.items()):
        alerts.add_metric([state, severity], count)
    yield alerts


def registry_for(service: AlertService, *, broker: Broker | None = None) -> CollectorRegistry:
    """A registry of this service's metrics alone (with its broker certificates' expiry)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_Exporter(service))
    if broker is not None:
        registry.register(CertificateExpiry(broker))
    return registry
