"""A gateway over TLS with its client certificate → Mosquitto → collector (TLS too) → InfluxDB,
and the renewal of the gateway's certificate while it streams: not one reading lost.

Real gateway (its configuration file, with `tls: {ca, cert, key}` relative to the file), a real
Modbus server, the real collector, real influxd and Mosquitto.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from gwkit import TEMPLATES, ModbusTestServer, Subscriber, float_words, meter_device, running

from collector import Collector, DeadLetterStore
from dynamo.devservices import wait_until
from telemetry.influx.client import InfluxClient
from telemetry.loader import load_gateway_config
from telemetry.pki import Pki, certificate_expiry


def _config(path: Path, *, site: str, tls_site: Any, meter: ModbusTestServer) -> Path:
    """A gateway configuration whose TLS files are named relative to the file, as on a Pi."""
    pki: Pki = tls_site.pki

    def relative(file: Path) -> str:
        return os.path.relpath(file, path.parent)

    config = {
        "template_dirs": [str(TEMPLATES)], "site": site, "gateway": "test-gw",
        "spool_dir": str(path.parent / "spool"),
        "broker": {"host": tls_site.broker.host, "port": tls_site.broker.tls_port,
                   "keepalive_s": 5,
                   "tls": {"ca": relative(pki.ca_cert), "cert": relative(pki.client_cert(
                       "test-gw")), "key": relative(pki.client_key("test-gw"))}},
        "equipment": [{"id": "rig", "kind": "other"}],
        "devices": [meter_device(meter, interval=0.1)],
        "status_interval_s": 1,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_a_gateway_streams_over_tls_and_moves_to_its_renewed_certificate(
        tls_site: Any, influx: InfluxClient, tmp_path: Path) -> None:
    pki: Pki = tls_site.pki
    site = f"tls{uuid.uuid4().hex[:8]}"
    meter = ModbusTestServer().start()
    meter.set_registers("input", 72, float_words(1234.5))
    config = load_gateway_config(_config(tmp_path / "gw.yaml", site=site, tls_site=tls_site,
                                         meter=meter))
    assert config.broker.tls is not None and Path(config.broker.tls.cert or "").is_absolute()
    collector = Collector(broker=tls_site.tls_broker("collector"), influx=influx,
                          dead_letters=DeadLetterStore(tmp_path / "dead.sqlite"),
                          client_id=f"collector-{site}", flush_interval_s=0.05)
    # Every message as the broker delivers it (persistent session): seq -> the poll's time.
    watcher = Subscriber(broker=tls_site.tls_broker("api"), topic=f"dynamo/v1/{site}/#")
    collector.start()
    try:
        assert collector.connected.wait(15) and watcher.subscribed.wait(15)
        seqs = lambda: {m["seq"]: m["ts"] for m in watcher.telemetry()}  # noqa: E731
        first_expiry = certificate_expiry(pki.client_cert("test-gw"))
        with running(config) as gateway:
            wait_until(lambda: len(seqs()) >= 5, timeout_s=30, what="telemetry over TLS")
            # Renewal (docs/pki.md): a new key and certificate in place of the old files,
            # the old certificate revoked, the broker restarted (it also reads the CRL then).
            # The old certificate can no longer get in: only a gateway that moved to the new
            # files reconnects.
            old_serial = x509.load_pem_x509_certificate(
                pki.client_cert("test-gw").read_bytes()).serial_number
            renewed = pki.issue_client("test-gw")
            assert renewed.serial_number != old_serial
            pki.revoke(serial=old_serial)
            before = gateway.spool.next_seq
            tls_site.broker.stop()
            tls_site.broker.start()
            wait_until(lambda: max(seqs(), default=-1) >= before + 10, timeout_s=60,
                       what="telemetry after the renewal")
            # The birth after reconnecting reports the new certificate's end of validity.
            new_ms = int(renewed.not_valid_after_utc.timestamp() * 1000)
            wait_until(lambda: any(s.get("cert_expires_ts") == new_ms
                                   for s in watcher.statuses()),
                       timeout_s=15, what="a status with the new certificate's expiry")
            # Every seq from the first to well past the renewal (the gateway still running:
            # what it has not sent yet when it stops is no part of the question).
            upto = max(seqs())
            wait_until(lambda: set(range(upto + 1)) <= set(seqs()), timeout_s=30,
                       what="every seq up to after the renewal at the watcher")
        times = {ts for seq, ts in seqs().items() if seq <= upto}
        assert len(times) == upto + 1  # one poll, one time

        def stored() -> set[int]:
            series = influx.query(f"SELECT value FROM readings WHERE site = '{site}' "
                                  "AND sensor = 'rig.meter.energy'")
            return {int(row["time"]) for s in series for row in s.rows()}

        wait_until(lambda: times <= stored(), timeout_s=30,
                   what="every message's reading in InfluxDB")
        # Nothing but the gateway's polls, each once (InfluxDB keeps one point per time).
        wait_until(lambda: stored() <= set(seqs().values()), timeout_s=15,
                   what="InfluxDB holding only the gateway's polls")
        assert first_expiry <= renewed.not_valid_after_utc
    finally:
        watcher.close()
        collector.stop()
        meter.stop()
