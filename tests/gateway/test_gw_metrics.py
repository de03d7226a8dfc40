"""A real `dynamo gateway run` process: its Prometheus `/metrics` count polls per device and
result, show the spool and the collector's end-to-end acknowledgement, and its logs on stdout
are JSON lines with the standard keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
from gwkit import REPO, ModbusTestServer, broker_settings, float_words, meter_device, write_config
from prometheus_client.parser import text_string_to_metric_families

from collector import Collector, DeadLetterStore
from dynamo.devservices import MosquittoProcess, free_port, stop_processes, wait_until
from telemetry.influx.client import InfluxClient


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _value(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
           **labels: str) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), -1.0)


def test_gateway_metrics_and_json_logs(tmp_path: Path, mosquitto: MosquittoProcess,
                                       modbus_server: Callable[..., ModbusTestServer],
                                       influx: InfluxClient) -> None:
    site = f"g{uuid.uuid4().hex[:8]}"
    meter = modbus_server()
    meter.set_registers("input", 72, float_words(42.0))
    meter.set_registers("input", 12, float_words(1500.0))
    # A second device on a port nobody listens on: every poll of it fails.
    dead_port = free_port()
    dead = meter_device(meter, device_id="dead", interval=0.2)
    dead["connection"] = {"type": "tcp", "host": "127.0.0.1", "port": dead_port}
    config = write_config(tmp_path / "gw.yaml", site=site,
                          broker=broker_settings(mosquitto, "test-gw"),
                          spool_dir=tmp_path / "spool",
                          devices=[meter_device(meter, interval=0.2), dead])
    collector = Collector(broker=broker_settings(mosquitto, "collector"), influx=influx,
                          dead_letters=DeadLetterStore(tmp_path / "dead.sqlite"), site=site,
                          client_id=f"collector-{site}", flush_interval_s=0.05)
    collector.start()
    assert collector.connected.wait(15)
    port = free_port()
    stdout = (tmp_path / "stdout.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "dynamo", "gateway", "run", "--config", str(config),
         "--metrics-port", str(port)], cwd=REPO, stdout=stdout, stderr=subprocess.STDOUT,
        env={**os.environ, "DYNAMO_LOG_FORMAT": "auto"})  # a file, not a terminal: JSON
    try:
        def polled() -> bool:
            try:
                metrics = _scrape(port)
            except httpx.HTTPError:
                return False
            return _value(metrics, "dynamo_gateway_polls_total", device="meter",
                          result="ok") >= 3 and _value(
                metrics, "dynamo_gateway_polls_total", device="dead", result="error") >= 3

        wait_until(polled, timeout_s=60, what="three polls of each device counted")
        wait_until(lambda: _value(_scrape(port), "dynamo_gateway_connected") == 1,
                   timeout_s=30, what="the gateway connected")
        # The collector stored the first messages and said so end to end.
        wait_until(lambda: _value(_scrape(port), "dynamo_gateway_last_ack_seq") >= 2,
                   timeout_s=30, what="the end-to-end acknowledgement's watermark")
        metrics = _scrape(port)
    finally:
        stop_processes([process])
        stdout.close()
        collector.stop()
    assert process.returncode == 0
    assert _value(metrics, "dynamo_gateway_polls_total", device="meter", result="error") == 0
    assert _value(metrics, "dynamo_gateway_polls_total", device="dead", result="ok") == 0
    assert _value(metrics, "dynamo_gateway_device_up", device="meter") == 1
    assert _value(metrics, "dynamo_gateway_device_up", device="dead") == 0
    assert _value(metrics, "dynamo_gateway_spool_next_seq") >= 3  # meter messages committed
    assert _value(metrics, "dynamo_gateway_spool_messages") >= 0
    assert _value(metrics, "dynamo_gateway_spool_dropped_total") == 0
    # One message a poll, numbered from 0 across both devices: the watermark cannot pass what
    # was committed, and the meter's readings are in InfluxDB.
    polls = sum(_value(metrics, "dynamo_gateway_polls_total", device=d, result=r)
                for d in ("meter", "dead") for r in ("ok", "error"))
    assert 2 <= _value(metrics, "dynamo_gateway_last_ack_seq") <= polls - 1
    stored = influx.query(f"SELECT count(value) FROM readings WHERE site = '{site}' "
                          f"AND sensor = 'rig.meter.power'")
    assert stored[0].rows()[0]["count"] >= 1
    assert any(name == "dynamo_gateway_info" and dict(labels)["site"] == site
               for name, labels in metrics)

    lines = (tmp_path / "stdout.log").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.strip()]  # every line is JSON
    assert records, "the gateway logged nothing"
    for record in records:
        assert {"ts", "level", "event", "service", "logger", "site", "gateway"} <= set(record)
        assert (record["service"], record["site"], record["gateway"]) == \
            ("gateway", site, "test-gw")
    # The dead device's failure is logged as a warning naming it.
    assert any(r["level"] == "warning" and r.get("device") == "dead" for r in records)
