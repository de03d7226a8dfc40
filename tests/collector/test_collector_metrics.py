"""The collector's Prometheus endpoint, scraped over HTTP while real messages flow."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from collector import Collector, DeadLetterStore, serve_metrics
from dynamo.devservices import free_port, wait_until
from telemetry.influx.client import InfluxClient
from telemetry.mqtt import connect, make_client
from telemetry.payload import Reading, Telemetry, encode
from telemetry.site import Broker
from telemetry.topics import telemetry_topic


def _scrape(port: int) -> dict[str, float]:
    """Samples by name, labelled ones as `name{label=value,...}` (labels sorted)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {sample.name + ("{" + ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                           + "}" if sample.labels else ""): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_metrics_count_what_happened(broker_for: Callable[[str], Broker], influx: InfluxClient,
                                     tmp_path: Path) -> None:
    # Its own site only: other tests' retained statuses would be counted too.
    site = f"m{uuid.uuid4().hex[:8]}"
    service = Collector(broker=broker_for("collector"), influx=influx,
                        dead_letters=DeadLetterStore(tmp_path / "dead.sqlite"),
                        client_id=f"collector-{uuid.uuid4().hex[:6]}", flush_interval_s=0.05,
                        receive_maximum=321, site=site)
    port = free_port()
    stop_metrics = serve_metrics(service, port=port)
    gateway = make_client(broker=broker_for("test-gw"), client_id=f"gw-{uuid.uuid4().hex[:6]}")
    topic = telemetry_topic(site, "test-gw", "dryer")
    try:
        assert _scrape(port)["dynamo_collector_connected"] == 0
        service.start()
        assert service.connected.wait(10)
        time.sleep(0.2)
        connect(gateway, broker_for("test-gw"))
        wait_until(gateway.is_connected, timeout_s=15, what="the test gateway's connection",
                   interval_s=0.05)
        sent_at_ms = int(time.time() * 1000)
        for seq in range(5):
            message = Telemetry(site=site, gateway="test-gw", equipment="dryer", device="m",
                                seq=seq, ts=sent_at_ms - 60_000 + seq,  # a minute old
                                readings=tuple(Reading(sensor=f"dryer.s{k}", value=1.0, unit="W")
                                               for k in range(4)))
            gateway.publish(topic, encode(message), qos=1)
        gateway.publish(topic, b"garbage", qos=1)
        wait_until(lambda: service.counters.points >= 20 and service.counters.dead_letters == 1,
                   timeout_s=15, what="20 points written and one dead letter", interval_s=0.05)
        metrics = _scrape(port)
    finally:
        gateway.disconnect()
        gateway.loop_stop()
        service.stop()
        stop_metrics()
    assert metrics["dynamo_collector_messages_total"] == 6
    assert metrics["dynamo_collector_points_written_total"] == 20
    assert metrics["dynamo_collector_batches_written_total"] >= 1
    # The garbage message, by reason; the other reasons are there at 0.
    assert metrics["dynamo_collector_dead_letters_total{reason=invalid}"] == 1
    assert metrics["dynamo_collector_dead_letters_total{reason=influx_refused}"] == 0
    assert metrics["dynamo_collector_dead_letters_total{reason=collector_error}"] == 0
    assert metrics["dynamo_collector_write_retries_total"] == 0
    assert metrics["dynamo_collector_queue_depth"] == 0
    assert metrics["dynamo_collector_unacknowledged"] == 0
    assert metrics["dynamo_collector_receive_maximum"] == 321
    assert metrics["dynamo_collector_connected"] == 1
    assert 59 <= metrics["dynamo_collector_lag_seconds"] < 120
    # Per gateway: the newest message stored was stamped a minute ago (+4 ms), so the lag is
    # a minute plus the time since, and the timestamp is the message's own.
    labels = f"gateway=test-gw,site={site}"
    assert 59 <= metrics[f"dynamo_collector_gateway_lag_seconds{{{labels}}}"] < 120
    assert metrics[f"dynamo_collector_gateway_last_stored_timestamp_seconds{{{labels}}}"] == \
        (sent_at_ms - 60_000 + 4) / 1000
    assert 0 <= metrics["dynamo_collector_seconds_since_last_write"] < 60
