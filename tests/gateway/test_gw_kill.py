"""`kill -9` the gateway again and again while it streams: every committed reading reaches
InfluxDB (through the real collector), each exactly once; with every poll cycle synced to the
card, and with write-behind (a RAM file, which outlives the process: gateway/spool.py)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from gwkit import (
    Chain,
    ModbusTestServer,
    broker_settings,
    float_words,
    gateway_metric,
    meter_device,
    write_config,
)

from dynamo.devservices import InfluxdProcess, MosquittoProcess, free_port, wait_until
from gateway.spool import Spool
from telemetry.site import SpoolOptions

# Kill instants after each start, in seconds: early (during start-up or the first commits)
# and late (while streaming with messages in flight).
KILL_AFTER_S = (0.4, 2.5, 1.1, 3.0, 1.7, 2.2)


@pytest.mark.parametrize("write_behind_s", [0, 10], ids=["synced", "write-behind"])
def test_kill_9_while_streaming_loses_nothing_and_duplicates_nothing(
        tmp_path: Path, mosquitto: MosquittoProcess, influxd: InfluxdProcess,
        modbus_server: Callable[..., ModbusTestServer], write_behind_s: int) -> None:
    site = f"k{uuid.uuid4().hex[:10]}"
    meter = modbus_server()
    meter.set_registers("input", 72, float_words(42.0))
    meter.set_registers("input", 12, float_words(1500.0))
    spool_dir = tmp_path / "spool"
    options = SpoolOptions(write_behind_s=write_behind_s, ram_dir=str(tmp_path / "ram"))
    config = write_config(tmp_path / "gw.yaml", site=site,
                          broker=broker_settings(mosquitto, "test-gw"), spool_dir=spool_dir,
                          devices=[meter_device(meter, interval=0.1)],
                          extra={"spool": options.model_dump(include={"write_behind_s",
                                                                      "ram_dir"})})
    chain = Chain(tmp_path, site=site, mosquitto=mosquitto, influx_url=influxd.url)
    subscriber, influx = chain.subscriber, chain.influx
    try:
        for round_, after_s in enumerate(KILL_AFTER_S):
            before = len(subscriber.telemetry())
            gateway = chain.gateway(config)
            if round_ % 2:  # every other round, make sure it streamed before the kill
                wait_until(lambda b=before: len(subscriber.telemetry()) > b + 3,
                           timeout_s=60, what=f"telemetry in round {round_}")
            with contextlib.suppress(subprocess.TimeoutExpired):
                gateway.wait(timeout=after_s)
            assert gateway.poll() is None, chain.log("gateway")
            gateway.send_signal(signal.SIGKILL)
            gateway.wait(timeout=15)
        # A last, clean run forwards what the killed ones left in the spool. It must be
        # running (new polls arriving) before the SIGTERM: a spool the last kill left empty
        # would otherwise let the signal land during the start, before its handler exists.
        before, port = len(subscriber.telemetry()), free_port()
        gateway = chain.gateway(config, metrics_port=port)
        wait_until(lambda: len(subscriber.telemetry()) > before + 3
                   and gateway_metric(port, "dynamo_gateway_spool_messages") == 0,
                   timeout_s=60, what="the spool to drain")
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(timeout=30) == 0, chain.log("gateway")

        spool = Spool(path=spool_dir / "spool.sqlite", options=options)
        assert spool.void is None  # killed, never powered off: every number accounted for
        committed = spool.next_seq
        # Polls committed after the drain was seen wait in the spool for the next start (a
        # message leaves it only on the collector's end-to-end acknowledgement).
        left = {m.seq for m in spool.read(start=0, end=None, limit=committed)}
        spool.close()
        assert committed > 50, "too few polls to prove anything"
        wait_until(lambda: {m["seq"] for m in subscriber.telemetry()} >= set(range(committed))
                   - left, timeout_s=60, what="every committed sequence number at a subscriber")
        seqs = {m["seq"] for m in subscriber.telemetry()}
        assert seqs <= set(range(committed))
        stamps = {m["ts"] for m in subscriber.telemetry()}
        assert len(stamps) == len(seqs), "one poll, one timestamp"

        def stored(sensor: str) -> list[int]:
            series = influx.query(f"SELECT value FROM readings WHERE sensor = '{sensor}'")
            return [int(row["time"]) for s in series for row in s.rows()]

        wait_until(lambda: len(stored("rig.meter.energy")) >= len(stamps), timeout_s=60,
                   what="every reading in InfluxDB")
        for sensor in ("rig.meter.energy", "rig.meter.power"):
            times = stored(sensor)
            assert sorted(times) == sorted(stamps), f"{sensor}: missing or extra points"
    finally:
        chain.close()

