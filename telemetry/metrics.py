"""Serving a service's Prometheus `/metrics`: the one way every component does it.

Each component builds a `CollectorRegistry` of its own metrics (its `metrics.py`: instruments
for what happens, a collector that reads its state at each scrape) and serves it here, on
loopback by default: Prometheus scrapes unauthenticated from an internal interface
(docs/operations.md). Metrics are never worth a service: a port already taken is logged and
the service runs on without them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, disable_created_metrics, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector as _PrometheusCollector

from telemetry.site import Broker

log = logging.getLogger(__name__)
# No `_created` series beside each counter: twice the series for a start time nobody queries.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Default ports, one per kind of service, so that a scrape configuration is the same on every
# machine (firmware-config/prometheus/prometheus.yml). The api serves /metrics on its own port.
DEFAULT_PORTS = {"gateway": 9731, "collector": 9732, "alerting": 9733}


def serve_registry(registry: CollectorRegistry, *, port: int, host: str = "127.0.0.1",
                   service: str = "") -> Callable[[], None] | None:
    """Serve `registry` at http://host:port/metrics from a daemon thread.

    Returns the function that stops it, or None when the port could not be bound (logged).
    """
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        log.error("%s metrics not served on %s:%d: %s", service or "service", host, port, exc,
                  extra={"metrics_port": port})
        return None
    log.info("%s metrics at http://%s:%d/metrics", service or "service", host, port,
             extra={"metrics_port": port})

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return stop


class CertificateExpiry(_PrometheusCollector):
    """`dynamo_certificate_expiry_timestamp_seconds{role}` of a service's broker TLS files:
    `role="client"` its own certificate, `role="ca"` the CA it trusts. Read at each scrape, so
    a renewed certificate shows at once; an unreadable file is left out (and logged)."""

    NAME = "dynamo_certificate_expiry_timestamp_seconds"

    def __init__(self, broker: Broker) -> None:
        tls = broker.tls
        self._files = {} if tls is None else {
            role: path for role, path in (("client", tls.cert), ("ca", tls.ca)) if path}

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self.NAME, "Unix time the certificate stops being valid",
                                   labels=["role"])
        if self._files:
            from telemetry.pki import PkiError, certificate_expiry  # cryptography: TLS only

            for role, path in sorted(self._files.items()):
                try:
                    family.add_metric([role], certificate_expiry(path).timestamp())
                except PkiError as exc:
                    log.warning("certificate expiry not read: %s", exc)
        yield family
