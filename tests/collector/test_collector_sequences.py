"""Per-gateway sequence tracking and gateway status, through a real broker into influxd.

The tracker's rules alone: test_collector_sequence_tracker.py.
"""

from __future__ import annotations

import json
import uuid

import paho.mqtt.client as mqtt

from collector import Collector
from dynamo.devservices import wait_until
from telemetry.influx.client import InfluxClient
from telemetry.payload import Reading, Status, Telemetry, encode
from telemetry.topics import status_topic, telemetry_topic

T0 = 1_763_700_000_000


def _telemetry(site: str, seq: int) -> bytes:
    return encode(Telemetry(site=site, gateway="test-gw", equipment="dryer", device="m",
                            seq=seq, ts=T0 + seq * 1000,
                            readings=(Reading(sensor="dryer.p", value=float(seq), unit="W"),)))


def test_gaps_and_repeats_are_counted_and_written(collector: Collector, gateway: mqtt.Client,
                                                  influx: InfluxClient) -> None:
    site = f"q{uuid.uuid4().hex[:8]}"
    for seq in (0, 1, 2, 6, 6, 3, 7):  # 3, 4, 5 skipped; 6 redelivered; 3 arrives late
        gateway.publish(telemetry_topic(site, "test-gw", "dryer"), _telemetry(site, seq),
                        qos=1).wait_for_publish(timeout=10)
    wait_until(lambda: collector.counters.messages >= 7 and collector.queue_depth == 0
               and collector.counters.points >= 9, timeout_s=15,
               what="the seven messages handled", interval_s=0.05)
    assert (collector.counters.sequence_gaps, collector.counters.sequence_repeats,
            collector.counters.sequence_late) == (3, 1, 1)
    events = influx.query(f"SELECT kind, seq, count FROM sequence_events WHERE site = '{site}'")
    rows = sorted((r["time"], r["kind"], r["seq"], r["count"]) for r in events[0].rows())
    assert rows == [(T0 + 3000, "late", 3, 1), (T0 + 6000, "gap", 6, 3),
                    (T0 + 6000, "repeat", 6, 1)]


def test_a_backlog_behind_live_data_fills_its_gap(collector: Collector, gateway: mqtt.Client,
                                                 influx: InfluxClient) -> None:
    """After an outage the gateway sends live messages first and its backlog behind them."""
    site = f"q{uuid.uuid4().hex[:8]}"
    order = list(range(10))
    live, backlog = list(range(510, 530)), list(range(10, 510))
    for part in range(10):
        order += live[part * 2:(part + 1) * 2] + backlog[part * 50:(part + 1) * 50]
    for seq in order:
        gateway.publish(telemetry_topic(site, "test-gw", "dryer"), _telemetry(site, seq), qos=1)
    gateway.publish(telemetry_topic(site, "test-gw", "dryer"), _telemetry(site, 3),
                    qos=1).wait_for_publish(timeout=30)  # and one redelivery

    def events() -> dict[str, int]:
        found = influx.query("SELECT sum(count) FROM sequence_events "
                             f"WHERE site = '{site}' GROUP BY kind")
        return {series.tags["kind"]: series.values[0][1] for series in found}

    # The counters move before a message's points are queued: once these are stored, they are.
    wait_until(lambda: events() == {"gap": 500, "late": 500, "repeat": 1}, timeout_s=30,
               what="the gap, its 500 late arrivals and the repeat in InfluxDB",
               interval_s=0.1)
    counters = collector.counters.snapshot()
    assert (counters["sequence_gaps"], counters["sequence_late"], counters["sequence_missing"],
            counters["sequence_repeats"], counters["sequence_lost"], counters["sequence_resets"],
            counters["sequence_stale"]) == (500, 500, 0, 1, 0, 0, 0)


def test_gateway_status_is_written(collector: Collector, gateway: mqtt.Client,
                                   influx: InfluxClient) -> None:
    site = f"q{uuid.uuid4().hex[:8]}"
    birth = Status(site=site, gateway="test-gw", state="online", ts=T0, version="1.2.3",
                   config_hash="abc123", buffer_depth=42, buffer_thinned=3, buffer_dropped=0,
                   clock_synced=True,
                   devices={"meter": "ok", "probe": "timeout"})
    gateway.publish(status_topic(site, "test-gw"), encode(birth), qos=1)
    gateway.publish(status_topic(site, "test-gw"),
                    json.dumps({"v": 1, "site": site, "gateway": "test-gw",
                                "state": "offline"}).encode(), qos=1)

    def rows() -> list[dict[str, object]]:
        series = influx.query(f"SELECT * FROM gateway_status WHERE site = '{site}'")
        return series[0].rows() if series else []

    wait_until(lambda: len(rows()) == 2, timeout_s=15,
               what="the birth and last-will statuses in InfluxDB", interval_s=0.05)
    online, offline = rows()
    assert online["time"] == T0
    assert (online["online"], online["version"], online["config_hash"], online["buffer_depth"],
            online["buffer_thinned"], online["buffer_dropped"], online["clock_synced"],
            online["devices"], online["devices_ok"]) == (1, "1.2.3", "abc123", 42, 3, 0, 1, 2, 1)
    assert offline["online"] == 0 and offline["time"] > T0  # the last will: receipt time
