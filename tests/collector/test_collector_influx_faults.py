"""InfluxDB misbehaving between the collector and the real influxd (tests/collector/faultproxy.py):
500, 503 with Retry-After, a connection closed mid-response, a hang beyond the writer's
timeout, and an outage with connections refused, while a gateway streams. No point is lost,
none is duplicated, 503's Retry-After is honoured, and the lag metric shows the outage and
recovers.

Time is compressed: the suite's hang is 4 s against a 2 s writer timeout and its outage 20 s;
`DYNAMO_SOAK=1` runs the real durations (a 60 s hang against the default 10 s timeout, a
10-minute outage).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from prometheus_client.parser import text_string_to_metric_families

from collector import Collector, DeadLetterStore, serve_metrics
from collector.writer import Backoff
from dynamo.devservices import InfluxdProcess, free_port, wait_until
from telemetry.influx.client import InfluxClient
from telemetry.mqtt import connect, make_client
from telemetry.payload import Reading, Telemetry, encode
from telemetry.site import Broker
from telemetry.topics import telemetry_topic

sys.path.insert(0, str(Path(__file__).parent))
from faultproxy import Fault, FaultProxy

SOAK = os.environ.get("DYNAMO_SOAK") == "1"
WRITE_TIMEOUT_S = 10.0 if SOAK else 2.0
HANG_S = 60.0 if SOAK else 4.0
OUTAGE_S = 600.0 if SOAK else 20.0
RETRY_AFTER_S = 2
RATE_HZ = 20  # messages a second, 2 readings each


class Stream:
    """A gateway publishing numbered messages at a steady rate from a thread of its own."""

    def __init__(self, client: mqtt.Client, site: str) -> None:
        self.client, self.site = client, site
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(30)
        return self.sent

    def _run(self) -> None:
        topic = telemetry_topic(self.site, "test-gw", "rig")
        last_ts = 0
        while not self._stop.wait(1 / RATE_HZ):
            seq = self.sent
            ts = max(int(time.time() * 1000), last_ts + 1)  # one timestamp per message
            last_ts = ts
            message = Telemetry(site=self.site, gateway="test-gw", equipment="rig", device="m",
                                seq=seq, ts=ts,
                                readings=(Reading(sensor="rig.a", value=float(seq), unit="W"),
                                          Reading(sensor="rig.b", value=2.0 * seq, unit="W")))
            self.client.publish(topic, encode(message), qos=1).wait_for_publish(timeout=30)
            self.sent += 1


def _metrics(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {s.name + "".join(f",{k}={v}" for k, v in sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
def proxy(influxd: InfluxdProcess) -> Iterator[FaultProxy]:
    fault_proxy = FaultProxy(influxd.url)
    fault_proxy.retry_after_s = RETRY_AFTER_S
    fault_proxy.hang_s = HANG_S
    yield fault_proxy
    fault_proxy.close()


@pytest.mark.timeout(1800 if SOAK else 240)
def test_influx_faults_lose_nothing_duplicate_nothing(
        proxy: FaultProxy, influx: InfluxClient, broker_for: Callable[[str], Broker],
        tmp_path: Path) -> None:
    site = f"f{uuid.uuid4().hex[:8]}"
    through = InfluxClient(url=proxy.url, database=influx.database, timeout_s=WRITE_TIMEOUT_S)
    service = Collector(broker=broker_for("collector"), influx=through,
                        dead_letters=DeadLetterStore(tmp_path / "dead.sqlite"),
                        client_id=f"collector-{uuid.uuid4().hex[:6]}", site=site,
                        flush_interval_s=0.05, status_interval_s=3600,
                        backoff=None if SOAK else Backoff(initial_s=0.1, max_s=1.0))
    port = free_port()
    stop_metrics = serve_metrics(service, port=port)
    gateway = make_client(broker=broker_for("test-gw"), client_id=f"gw-{uuid.uuid4().hex[:6]}")
    stream = Stream(gateway, site)
    lag = f"dynamo_collector_gateway_lag_seconds,gateway=test-gw,site={site}"

    def written_after(count: int) -> Callable[[], bool]:
        """True once `count` more writes went through to InfluxDB than now."""
        start = len(proxy.writes)
        return lambda: sum(1 for w in proxy.writes[start:] if w.forwarded_status == 204) >= count

    try:
        service.start()
        assert service.connected.wait(15)
        time.sleep(0.2)
        connect(gateway, broker_for("test-gw"))
        wait_until(gateway.is_connected, timeout_s=15, what="the test gateway")
        stream.start()
        wait_until(lambda: service.counters.points >= 40, timeout_s=30, what="a first stream")

        # 500 three times, then through.
        proxy.set(Fault.ERROR_500, times=3)
        wait_until(written_after(1), timeout_s=30, what="a write after three 500s")

        # 503 with Retry-After twice: the next try waits the server's time, not the backoff's
        # 0.1-0.2 s.
        seen = len(proxy.writes)
        proxy.set(Fault.UNAVAILABLE_503, times=2)
        wait_until(written_after(1), timeout_s=30, what="a write after two 503s")
        writes = proxy.writes[seen:]
        for i, write in enumerate(writes[:-1]):
            if write.fault is Fault.UNAVAILABLE_503:
                assert writes[i + 1].at - write.at >= RETRY_AFTER_S - 0.05, writes

        # Closed mid-response after InfluxDB stored the points: written again, harmlessly.
        proxy.set(Fault.CLOSE_MID_RESPONSE, times=2)
        wait_until(written_after(1), timeout_s=30, what="a write after two closed responses")

        # A hang beyond the writer's timeout (InfluxDB stored the points, said nothing).
        started = time.monotonic()
        proxy.set(Fault.HANG, times=1)
        wait_until(written_after(1), timeout_s=HANG_S + 60, what="a write after a hang")
        assert time.monotonic() - started < HANG_S + WRITE_TIMEOUT_S + 30

        # An outage: connections refused. The lag grows with it, then falls back.
        before = _metrics(port)[lag]
        proxy.set(Fault.REFUSE)
        time.sleep(OUTAGE_S)
        during = _metrics(port)
        assert during[lag] >= OUTAGE_S - 3, (before, during[lag])
        assert during["dynamo_collector_seconds_since_last_write"] >= OUTAGE_S - 3
        proxy.clear()
        wait_until(lambda: _metrics(port)[lag] < 5, timeout_s=60 + OUTAGE_S / 10,
                   what="the lag to recover after the outage")

        sent = stream.stop()
        wait_until(lambda: service.counters.points >= 2 * sent, timeout_s=60,
                   what="every message written")
        after = _metrics(port)
    finally:
        stream.stop()
        gateway.disconnect()
        gateway.loop_stop()
        service.stop()
        stop_metrics()
        through.close()

    # Read from influxd directly, not through the proxy.
    [row] = influx.query(
        f"SELECT count(value) AS points, count(distinct(value)) AS seqs FROM readings "
        f"WHERE site = '{site}' AND sensor = 'rig.a'")[0].rows()
    [total] = influx.query(f"SELECT count(value) FROM readings WHERE site = '{site}'")[0].rows()
    [span] = influx.query(f"SELECT min(value), max(value) FROM readings "
                          f"WHERE site = '{site}' AND sensor = 'rig.a'")[0].rows()
    # `sent` messages numbered 0..sent-1, two readings each: each number once, no more points.
    assert (row["points"], row["seqs"]) == (sent, sent)
    assert (span["min"], span["max"]) == (0, sent - 1)
    assert total["count"] == 2 * sent
    assert service.dead_letters.count() == 0
    # 3 × 500, 2 × 503, 2 closed, 1 hang and at least one refused connection were retried.
    assert after["dynamo_collector_write_retries_total"] >= 3 + 2 + 2 + 1 + 1
    assert after["dynamo_collector_dead_letters_total,reason=influx_refused"] == 0
