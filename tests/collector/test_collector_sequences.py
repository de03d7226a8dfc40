"""Per-gateway sequence tracking and gateway status, through a real broker into influxd."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from collector import Collector, DeadLetterStore, SequenceEvent, SequenceTracker
from telemetry.influx.client import InfluxClient
from telemetry.mqtt import connect, make_client
from telemetry.payload import Reading, Status, Telemetry, encode
from telemetry.site import Broker
from telemetry.topics import status_topic, telemetry_topic

T0 = 1_763_700_000_000


def _wait(condition: Callable[[], bool], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_tracker_tells_gaps_repeats_late_and_resets_apart() -> None:
    tracker = SequenceTracker(window=100)
    seen = [tracker.observe(site="s", gateway="g", seq=seq)
            for seq in (10, 11, 14, 14, 12, 15, 11, 13, 16, 1)]
    assert [(o.kind, o.seq, o.count) if o else None for o in seen] == [
        None, None,
        (SequenceEvent.GAP, 14, 2),
        (SequenceEvent.REPEAT, 14, 1),
        (SequenceEvent.LATE, 12, 1),
        None,
        (SequenceEvent.REPEAT, 11, 1),
        (SequenceEvent.LATE, 13, 1),
        None,
        (SequenceEvent.LATE, 1, 1),  # within the window below 16, never seen
    ]
    # another gateway has its own numbering
    assert tracker.observe(site="s", gateway="h", seq=500) is None
    # far below the window: the gateway restarted its numbering
    assert tracker.observe(site="s", gateway="h", seq=500 + 300) is not None
    reset = tracker.observe(site="s", gateway="h", seq=0)
    assert reset is not None and reset.kind is SequenceEvent.RESET
    assert tracker.observe(site="s", gateway="h", seq=1) is None


def test_tracker_window_bounds_memory() -> None:
    tracker = SequenceTracker(window=50)
    for seq in range(10_000):
        tracker.observe(site="s", gateway="g", seq=seq)
    repeat = tracker.observe(site="s", gateway="g", seq=9_990)
    assert repeat is not None and repeat.kind is SequenceEvent.REPEAT
    old = tracker.observe(site="s", gateway="g", seq=100)
    assert old is not None and old.kind is SequenceEvent.RESET


@pytest.fixture
def collector(broker_for: Callable[[str], Broker], influx: InfluxClient,
              tmp_path: Path) -> Iterator[Collector]:
    service = Collector(broker=broker_for("collector"), influx=influx,
                        dead_letters=DeadLetterStore(tmp_path / "dead.sqlite"),
                        client_id=f"collector-{uuid.uuid4().hex[:6]}", flush_interval_s=0.05)
    service.start()
    assert service.connected.wait(10)
    time.sleep(0.2)
    yield service
    service.stop()


@pytest.fixture
def gateway(broker_for: Callable[[str], Broker]) -> Iterator[mqtt.Client]:
    client = make_client(broker=broker_for("test-gw"), client_id=f"gw-{uuid.uuid4().hex[:6]}")
    connect(client, broker_for("test-gw"))
    _wait(client.is_connected)
    yield client
    client.disconnect()
    client.loop_stop()


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
    _wait(lambda: collector.counters.messages >= 7 and collector.queue_depth == 0
          and collector.counters.points >= 9)
    assert (collector.counters.sequence_gaps, collector.counters.sequence_repeats,
            collector.counters.sequence_late) == (3, 1, 1)
    events = influx.query(f"SELECT kind, seq, count FROM sequence_events WHERE site = '{site}'")
    rows = sorted((r["time"], r["kind"], r["seq"], r["count"]) for r in events[0].rows())
    assert rows == [(T0 + 3000, "late", 3, 1), (T0 + 6000, "gap", 6, 3),
                    (T0 + 6000, "repeat", 6, 1)]


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

    _wait(lambda: len(rows()) == 2)
    online, offline = rows()
    assert online["time"] == T0
    assert (online["online"], online["version"], online["config_hash"], online["buffer_depth"],
            online["buffer_thinned"], online["buffer_dropped"], online["clock_synced"],
            online["devices"], online["devices_ok"]) == (1, "1.2.3", "abc123", 42, 3, 0, 1, 2, 1)
    assert offline["online"] == 0 and offline["time"] > T0  # the last will: receipt time
