"""The spool under the end-to-end acknowledgement: a message leaves only when the collector says
it is stored; the broker's PUBACK does not remove it, a refusal keeps it marked with the reason.

The spool cases use a real SQLite file; the end-to-end case a real broker, collector and InfluxDB.
"""

from __future__ import annotations

import sqlite3
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from gwkit import ModbusTestServer

from collector import Collector, DeadLetterStore
from dynamo.devservices import wait_until
from gateway.spool import Spool
from telemetry.influx.client import InfluxClient
from telemetry.mqtt import connect, make_client
from telemetry.payload import Ack, decode_ack
from telemetry.site import Broker, SpoolOptions
from telemetry.topics import ack_topic

sys.path.insert(0, str(Path(__file__).parents[1] / "fault"))
from faultkit import (
    broker_settings,
    gateway_config,
    make_broker,
    meter,
    running,
    stored_times,
)


def _spool(tmp_path: Path, count: int) -> Spool:
    spool = Spool(path=tmp_path / "spool.sqlite", options=SpoolOptions(synchronous="normal"))
    for i in range(count):
        spool.append(topic="t", device="d", ts=1_800_000_000_000 + i,
                     encode=lambda seq: f'{{"seq":{seq}}}'.encode())
    return spool


def test_remove_acked_forgets_the_watermark_and_the_intervals_only(tmp_path: Path) -> None:
    spool = _spool(tmp_path, 10)  # seqs 0..9
    assert spool.floor == 0
    # upto 2 and [5, 6]: 0 1 2 5 6 go (5 messages), 3 4 7 8 9 stay.
    assert spool.remove_acked(upto=2, stored=[(5, 6)]) == 5
    assert [m.seq for m in spool.read(start=0, end=None, limit=100)] == [3, 4, 7, 8, 9]
    assert (spool.depth, spool.floor) == (5, 3)
    assert spool.remove_acked(upto=9) == 5
    assert (spool.depth, spool.floor) == (0, 10)  # empty: the floor is the next seq
    spool.close()
    assert Spool(path=tmp_path / "spool.sqlite").floor == 10


def test_refusals_are_kept_by_reason_and_totals_persist(tmp_path: Path) -> None:
    spool = _spool(tmp_path, 4)
    spool.mark_refused({1: "0x87 Not authorized", 2: "0x87 Not authorized",
                        3: "0x97 Quota exceeded"})
    spool.mark_refused({3: None})  # accepted on a later attempt
    spool.mark_refused({1: "0x87 Not authorized"})  # refused once more: 3 refusals of 0x87
    spool.close()
    again = Spool(path=tmp_path / "spool.sqlite")
    assert again.refused() == {1: "0x87 Not authorized", 2: "0x87 Not authorized"}
    assert again.refused_totals() == {"0x87 Not authorized": 3, "0x97 Quota exceeded": 1}
    assert [m.seq for m in again.get([2, 1, 7])] == [1, 2]  # 7 was never there
    again.close()


def test_a_spool_of_the_previous_version_gains_the_refused_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # the schema before the end-to-end acknowledgement
        db.executescript("""
            CREATE TABLE messages (seq INTEGER PRIMARY KEY, device TEXT NOT NULL,
                ts INTEGER NOT NULL, mono_ms INTEGER, topic TEXT NOT NULL,
                payload BLOB NOT NULL);
            CREATE TABLE state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
            INSERT INTO messages VALUES (7, 'd', 1, NULL, 't', x'7b7d');
            INSERT INTO state VALUES ('next_seq', 8);
        """)
    spool = Spool(path=path)
    assert (spool.depth, spool.next_seq, spool.floor, spool.refused()) == (1, 8, 7, {})
    spool.mark_refused({7: "0x87 Not authorized"})
    assert spool.refused() == {7: "0x87 Not authorized"}
    spool.close()


def test_the_spool_keeps_what_the_broker_accepted_until_the_collector_stored_it(
        tmp_path: Path, influx: InfluxClient,
        modbus_server: Callable[..., ModbusTestServer]) -> None:
    site = f"a{uuid.uuid4().hex[:10]}"
    broker = make_broker(tmp_path / "mqtt", gateways=("gw-a",))
    broker.start()
    config = gateway_config(tmp_path, site=site, gateway="gw-a", broker=broker,
                            meter=meter(modbus_server))

    def collector() -> Collector:
        service = Collector(broker=broker_settings(broker, "collector"), influx=influx,
                            dead_letters=DeadLetterStore(tmp_path / "dead.sqlite"),
                            client_id="ack-collector", flush_interval_s=0.05)
        service.start()
        assert service.connected.wait(15)
        return service

    service = collector()
    time.sleep(0.3)  # the SUBACK, so that the session exists before the gateway publishes
    try:
        with running(config) as run:
            forwarder = run.gateway.forwarder
            wait_until(lambda: (forwarder.stored_upto or -1) >= 10, timeout_s=30,
                       what="the first acknowledgements")
            service.stop()  # the broker keeps accepting (PUBACK) and queues for the session
            before = run.gateway.spool.next_seq
            wait_until(lambda: run.gateway.spool.next_seq >= before + 20, timeout_s=30,
                       what="20 polls while the collector is away")
            assert forwarder.depth >= 20, "PUBACKed messages must stay until stored"
            held = forwarder.depth
            upto = forwarder.stored_upto
            service = collector()
            # The restarted collector read its retained ack back before anything new came.
            assert service.acks is not None
            wait_until(lambda: forwarder.depth < held / 2, timeout_s=30,
                       what="the spool to drain once the collector stores again")
            assert (forwarder.stored_upto or -1) > (upto or -1)
            end = run.gateway.spool.next_seq
            wait_until(lambda: (forwarder.stored_upto or -1) >= end - 1, timeout_s=30,
                       what="the watermark to pass every commit")
            commits = dict(run.commits)
        times = set(stored_times(influx, site, "gw-a"))
        assert {commits[s] for s in range(end)} <= times
        # The retained ack the broker holds says the same (what a restarted gateway reads).
        retained = _retained(broker_settings(broker, "gw-a"), ack_topic(site, "gw-a"))
        assert retained is not None and retained.upto >= end - 1
    finally:
        service.stop()
        broker.stop()


def _retained(broker: Broker, topic: str) -> Ack:
    """The retained message on `topic`, read as the gateway's own user would."""
    box: list[bytes] = []
    client = make_client(broker=broker, client_id=f"probe-{uuid.uuid4().hex[:6]}")

    def on_connect(c: mqtt.Client, *_: object) -> None:
        c.subscribe(topic, qos=1)

    client.on_connect = on_connect
    client.on_message = lambda _c, _u, m: box.append(bytes(m.payload))
    connect(client, broker)
    try:
        wait_until(lambda: bool(box), timeout_s=15, what="the retained ack")
    finally:
        client.disconnect()
        client.loop_stop()
    return decode_ack(box[-1])


def test_messages_the_broker_accepted_for_nobody_are_sent_again(
        tmp_path: Path, influx: InfluxClient,
        modbus_server: Callable[..., ModbusTestServer]) -> None:
    """Published before the collector's session existed, the first messages were accepted
    (PUBACK) and dropped by the broker: once later messages are stored, the gateway notices
    (`resend_after_s`, 2 s here) and replays them without any reconnection."""
    site = f"n{uuid.uuid4().hex[:10]}"
    broker = make_broker(tmp_path / "mqtt", gateways=("gw-a",))
    broker.start()
    config = gateway_config(tmp_path, site=site, gateway="gw-a", broker=broker,
                            meter=meter(modbus_server))
    service: Collector | None = None
    try:
        with running(config) as run:
            wait_until(lambda: run.gateway.spool.next_seq >= 15, timeout_s=30,
                       what="15 polls published to a broker no collector listens to")
            lost_at_broker = run.gateway.spool.next_seq
            service = Collector(broker=broker_settings(broker, "collector"), influx=influx,
                                dead_letters=DeadLetterStore(tmp_path / "dead.sqlite"),
                                client_id="late-collector", flush_interval_s=0.05)
            service.start()
            forwarder = run.gateway.forwarder
            wait_until(lambda: (forwarder.stored_upto or -1) >= lost_at_broker + 5,
                       timeout_s=60, what="the watermark past the messages nobody received")
            assert forwarder.replays >= 1
            assert run.gateway.publisher.connections == 1  # no reconnection was needed
            commits = dict(run.commits)
        times = set(stored_times(influx, site, "gw-a"))
        assert {commits[s] for s in range(lost_at_broker)} <= times
    finally:
        if service is not None:
            service.stop()
        broker.stop()
