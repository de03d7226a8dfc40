"""Store-and-forward against a real Mosquitto: a broker outage delays data, never drops it.

No collector runs here, so the spools use `acknowledgement: broker` (removal on PUBACK); the
end-to-end acknowledgement has its own tests (test_gw_ack*.py, tests/fault/)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from gwkit import (
    ModbusTestServer,
    Subscriber,
    broker_settings,
    float_words,
    meter_device,
    running,
    spooled_seqs,
    write_config,
)

from dynamo.devservices import MosquittoProcess, wait_until
from gateway.forwarder import Forwarder
from gateway.publisher import Publisher
from gateway.spool import Spool, ram_path
from telemetry.loader import load_gateway_config
from telemetry.payload import Status
from telemetry.site import SpoolOptions
from telemetry.topics import telemetry_topic


@pytest.mark.parametrize("write_behind_s", [0, 10], ids=["synced", "write-behind"])
def test_a_broker_outage_delays_data_and_loses_none(
        tmp_path: Path, own_broker: MosquittoProcess,
        modbus_server: Callable[..., ModbusTestServer], write_behind_s: int) -> None:
    meter = modbus_server()
    meter.set_registers("input", 72, float_words(1234.5))
    meter.set_registers("input", 12, float_words(800.0))
    options = SpoolOptions(acknowledgement="broker", write_behind_s=write_behind_s,
                           ram_dir=str(tmp_path / "ram"))
    config = load_gateway_config(write_config(
        tmp_path / "gw.yaml", broker=broker_settings(own_broker, "test-gw"),
        spool_dir=tmp_path / "spool", devices=[meter_device(meter, interval=0.1)],
        extra={"spool": options.model_dump(include={"acknowledgement", "write_behind_s",
                                                    "ram_dir"})}))
    subscriber = Subscriber(broker=broker_settings(own_broker, "collector"))
    try:
        with running(config) as gateway:
            wait_until(lambda: len(subscriber.telemetry()) >= 5, timeout_s=30,
                       what="live telemetry")
            own_broker.stop()
            seq_at_outage = gateway.spool.next_seq
            wait_until(lambda: gateway.spool.next_seq >= seq_at_outage + 30, timeout_s=30,
                       what="polls spooled during the outage")
            assert gateway.forwarder.depth >= 25, "polls during the outage must wait on disk"
            if write_behind_s:  # the outage lasts until a flush has moved some to the card
                ram = ram_path(tmp_path / "spool" / "spool.sqlite", options)
                first_in_ram = spooled_seqs(ram)[0]  # nothing acknowledged: moves on a flush
                wait_until(lambda: spooled_seqs(ram)[0] > first_in_ram, timeout_s=30,
                           what="a write-behind flush to the card")
            own_broker.start()
            wait_until(lambda: gateway.forwarder.depth < 5 and gateway.spool.next_seq
                       >= seq_at_outage + 45, timeout_s=60, what="the backlog to drain")
        committed = Spool(path=tmp_path / "spool" / "spool.sqlite", options=options).next_seq
        seqs = lambda: {m["seq"] for m in subscriber.telemetry()}  # noqa: E731
        wait_until(lambda: seqs() == set(range(committed)), timeout_s=30,
                   what="every committed message at the subscriber")
        received = subscriber.telemetry()
        # Live data kept flowing: the readings are the meter's, each stamped at its poll.
        assert all(m["readings"][0]["value"] == 1234.5 for m in received)
        assert len({m["ts"] for m in received}) == committed
        # The backlog's size was reported in a status while it drained.
        assert any(s.get("buffer_depth", 0) > 0 for s in subscriber.statuses())
    finally:
        subscriber.close()


def test_live_messages_overtake_a_long_backlog(
        tmp_path: Path, mosquitto: MosquittoProcess) -> None:
    site = f"l{uuid.uuid4().hex[:10]}"
    topic = telemetry_topic(site, "test-gw", "rig")
    spool = Spool(path=tmp_path / "spool.sqlite", options=SpoolOptions(synchronous="normal"))

    def payload(seq: int) -> bytes:
        return json.dumps({"seq": seq}).encode()

    backlog = 3000  # e.g. hours of polls that waited for the uplink
    for i in range(backlog):
        spool.append(topic=topic, device="meter", ts=i, encode=payload)
    subscriber = Subscriber(broker=broker_settings(mosquitto, "collector"),
                            topic=f"dynamo/v1/{site}/#")
    wait_until(subscriber.subscribed.is_set, timeout_s=30, what="the subscription")

    async def scenario() -> None:
        box: list[Forwarder] = []
        publisher = Publisher(broker=broker_settings(mosquitto, "test-gw"), site=site,
                              gateway="test-gw",
                              birth=lambda: Status(site=site, gateway="test-gw", state="online",
                                                   ts=int(time.time() * 1000)),
                              on_acked=lambda mid: box[0].acked(mid))
        forwarder = Forwarder(spool=spool, publisher=publisher, in_flight=10, end_to_end=False)
        box.append(forwarder)
        stop = asyncio.Event()
        task = asyncio.create_task(forwarder.run(stop))
        publisher.start()
        deadline = time.monotonic() + 60
        # Streaming: the first backlog message is through. (Not the spool's depth: in broker
        # mode PUBACKed messages leave it in batches of 500 or every 0.5 s, by which time
        # hundreds may have gone.)
        while not subscriber.telemetry() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await forwarder.commit(topic=topic, device="meter", ts=backlog, encode=payload)
        while forwarder.counters.depth > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stop.set()
        await task
        publisher.stop()

    try:
        asyncio.run(scenario())
        wait_until(lambda: len(subscriber.telemetry()) >= backlog + 1, timeout_s=60,
                   what="the backlog and the live message")
        order = [m["seq"] for m in subscriber.telemetry()]
        assert sorted(set(order)) == list(range(backlog + 1))
        # The live message went out within a window or two of its commit, not after the
        # 3000 older ones; the backlog itself stayed in order.
        assert order.index(backlog) < 200, order.index(backlog)
        rest = [s for s in order if s != backlog]
        assert rest == sorted(rest)
    finally:
        subscriber.close()

