"""A power cut under write-behind (gateway/spool.py, docs/gateway.md "SD-card writes"), through
the real chain: gateway → Mosquitto → collector → InfluxDB.

The gateway streams to the collector, then loses the broker and spools; a flush moves the
oldest unacknowledged messages to the card, the newest stay in RAM; then the power goes: the
process is killed and its RAM file removed, as a reboot clears the tmpfs. After the restart
what the card held arrives, no number is used twice, the gateway declares the numbers it can
no longer account for (`buffer_void`), and the collector settles them as void, not as lost,
and acknowledges past them."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gwkit import (
    REPO,
    Chain,
    ModbusTestServer,
    Subscriber,
    broker_settings,
    float_words,
    meter_device,
    spooled_seqs,
    write_config,
)

from dynamo.commands.fleet import format_table
from dynamo.devservices import InfluxdProcess, MosquittoProcess, free_port, wait_until
from gateway.spool import ram_path
from telemetry.fleet import read_fleet
from telemetry.influx.client import InfluxClient
from telemetry.site import SpoolOptions


def _reserved(card: Path) -> int:
    db = sqlite3.connect(f"file:{card}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT value FROM state WHERE key = 'reserved'").fetchone()[0])
    finally:
        db.close()


def test_a_power_cut_loses_only_the_ram_and_its_numbers_are_void_not_lost(
        tmp_path: Path, mosquitto: MosquittoProcess, influxd: InfluxdProcess,
        modbus_server: Callable[..., ModbusTestServer]) -> None:
    site = f"p{uuid.uuid4().hex[:10]}"
    meter = modbus_server()
    meter.set_registers("input", 72, float_words(42.0))
    meter.set_registers("input", 12, float_words(1500.0))
    spool_dir = tmp_path / "spool"
    options = SpoolOptions(write_behind_s=10, ram_dir=str(tmp_path / "ram"))
    card, ram = spool_dir / "spool.sqlite", ram_path(spool_dir / "spool.sqlite", options)
    spool = {"spool": options.model_dump(include={"write_behind_s", "ram_dir"})}
    up = broker_settings(mosquitto, "test-gw")
    down = up.model_copy(update={"port": free_port()})  # nothing listens there
    devices = [meter_device(meter, interval=0.1)]
    online = write_config(tmp_path / "online.yaml", site=site, broker=up, spool_dir=spool_dir,
                          devices=devices, extra=spool)
    offline = write_config(tmp_path / "offline.yaml", site=site, broker=down,
                           spool_dir=spool_dir, devices=devices, extra=spool)
    chain = Chain(tmp_path, site=site, mosquitto=mosquitto, influx_url=influxd.url)
    subscriber, influx = chain.subscriber, chain.influx
    try:
        # 1. Streaming, acknowledged: the collector knows the gateway's numbering.
        gateway = chain.gateway(online)
        wait_until(lambda: len(subscriber.telemetry()) >= 10, timeout_s=60,
                   what="telemetry while online")
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(timeout=30) == 0, chain.log("gateway")
        before_cut = {m["seq"] for m in subscriber.telemetry()}

        # 2. The broker is gone: everything spools; a flush (every 5 s) moves what is older
        #    than the previous one to the card. Then the power goes, with newer ones in RAM.
        gateway = chain.gateway(offline)
        # The running gateway holds the card's file; its RAM file shows the flushes: nothing
        # is acknowledged, so the oldest number in RAM moves up only when a flush moved it.
        wait_until(lambda: spooled_seqs(ram) != [], timeout_s=30, what="messages in RAM")
        first_in_ram = spooled_seqs(ram)[0]
        wait_until(lambda: spooled_seqs(ram)[0] > first_in_ram, timeout_s=60,
                   what="a flush of unacknowledged messages to the card")
        wait_until(lambda: len(spooled_seqs(ram)) >= 5, timeout_s=30,
                   what="newer messages in RAM")
        assert gateway.poll() is None, chain.log("gateway")
        gateway.send_signal(signal.SIGKILL)
        gateway.wait(timeout=15)
        on_card, in_ram = set(spooled_seqs(card)), set(spooled_seqs(ram))
        reserved = _reserved(card)
        assert on_card and in_ram and max(on_card) < min(in_ram) < reserved
        for path in ram.parent.iterdir():  # the reboot clears the tmpfs
            path.unlink()

        # 3. Power back, broker back.
        port = free_port()
        gateway = chain.gateway(online, metrics_port=port)
        wait_until(lambda: {m["seq"] for m in subscriber.telemetry()} >= on_card
                   and max(m["seq"] for m in subscriber.telemetry()) > reserved + 5,
                   timeout_s=60, what="the card's messages and new ones")
        statuses = [s for s in subscriber.statuses() if s.get("buffer_void")]
        assert statuses, "no status declared the void numbers"
        first, last = statuses[-1]["buffer_void"]
        # Everything the RAM held, and the numbers never used up to the reservation.
        assert max(on_card) < first <= min(in_ram) and last == reserved - 1
        assert max(before_cut) < first  # what the collector stored is not declared void
        # On the Pi: the running gateway holds its card's file; the command asks its metrics.
        shown = subprocess.run(
            [sys.executable, "-m", "dynamo", "gateway", "spool", "--config", str(online),
             "--metrics-port", str(port)], capture_output=True, text=True, timeout=60,
            check=True, cwd=REPO).stdout
        assert "held by a running gateway" in shown, shown
        assert f"{last - first + 1} number(s) void since a power cut" in shown, shown
        # At the centre: `dynamo fleet status` says it under the gateway.
        table = format_table(read_fleet(broker_settings(mosquitto, "collector"), site=site,
                                        wait_s=1.0), now_ms=int(time.time() * 1000))
        assert f"  power cut: numbers {first}-{last} void (lost with the cut or never used)" \
            in table, table
        received = [m["seq"] for m in subscriber.telemetry()]
        assert not set(received) & set(range(first, last + 1)), "a void number was sent"
        assert _no_reuse(subscriber.telemetry()), "a number used for two readings"
        # The collector: the void numbers settled as void (none lost, none missing), and its
        # end-to-end acknowledgement passes them.
        wait_until(lambda: _ack_upto(subscriber, site) > reserved, timeout_s=60,
                   what="the collector's acknowledgement past the void numbers")
        events = _sequence_events(influx)
        # None of them reached the collector (the broker was gone when they were used).
        assert events.get("void", 0) == last - first + 1, events
        assert events.get("lost", 0) == 0, events
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(timeout=30) == 0, chain.log("gateway")
    finally:
        chain.close()


def _no_reuse(telemetry: list[dict[str, Any]]) -> bool:
    """A number received twice is a redelivery of the same message (same timestamp)."""
    stamps: dict[int, int] = {}
    for message in telemetry:
        if stamps.setdefault(message["seq"], message["ts"]) != message["ts"]:
            return False
    return True


def _ack_upto(subscriber: Subscriber, site: str) -> int:
    with subscriber._lock:
        acks = [m for t, m in subscriber.messages if t == f"dynamo/v1/{site}/ack/test-gw"]
    return int(acks[-1]["upto"]) if acks else -1


def _sequence_events(influx: InfluxClient) -> dict[str, int]:
    counts: dict[str, int] = {}
    for series in influx.query("SELECT count, kind FROM sequence_events"):
        for row in series.rows():
            counts[row["kind"]] = counts.get(row["kind"], 0) + int(row["count"])
    return counts
