"""A publish the broker refuses (its ACL forbids the topic): the gateway keeps those messages,
counts them by reason in its status and in `dynamo gateway spool`, and delivers them once the
ACL is fixed and reloaded (SIGHUP), with no reconnection. Real broker, collector and InfluxDB.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner
from gwkit import ModbusTestServer, Subscriber

from collector import Collector, DeadLetterStore
from dynamo.cli import main as cli
from dynamo.devservices import wait_until
from telemetry.influx.client import InfluxClient

sys.path.insert(0, str(Path(__file__).parents[1] / "fault"))
from faultkit import (
    broker_settings,
    gateway_config,
    make_broker,
    meter,
    running,
)

NOT_AUTHORISED = "0x87 Not authorized"  # MQTT 5 PUBACK reason code 0x87 (docs/sources.md)


def _acl(site: str, *, cold_allowed: bool) -> str:
    """gw-a may write its status and `rig` telemetry; `cold` telemetry only once fixed."""
    cold = "topic write dynamo/v1/{s}/gw-a/telemetry/cold\n" if cold_allowed else ""
    return (f"user gw-a\ntopic write dynamo/v1/{site}/gw-a/status\n"
            f"topic write dynamo/v1/{site}/gw-a/telemetry/rig\n"
            + cold.format(s=site) +
            "topic read dynamo/v1/+/ack/gw-a\n\n"
            "user collector\ntopic read dynamo/v1/#\ntopic write dynamo/v1/+/ack/+\n")


def _cold_points(influx: InfluxClient, site: str) -> int:
    series = influx.query(f"SELECT count(value) FROM readings WHERE site = '{site}' "
                          "AND equipment = 'cold'")
    return int(series[0].values[0][1]) if series else 0


def test_refused_messages_are_kept_reported_and_delivered_once_the_acl_is_fixed(
        tmp_path: Path, influx: InfluxClient,
        modbus_server: Callable[..., ModbusTestServer]) -> None:
    site = f"r{uuid.uuid4().hex[:10]}"
    broker = make_broker(tmp_path / "mqtt", gateways=("gw-a",),
                         acl=_acl(site, cold_allowed=False))
    broker.start()
    cold_meter = meter(modbus_server, 3.5)
    cold = {"id": "cold-meter", "template": "eastron-sdm120", "equipment": "cold",
            "connection": {"type": "tcp", "host": "127.0.0.1", "port": cold_meter.port},
            "unit_id": 1, "poll_interval_s": 0.2, "timeout_s": 0.5, "retries": 0,
            "backoff_max_s": 1,
            "sensors": [{"id": "cold.power", "point": "total_power_w",
                         "role": "electric_power"}]}
    config = gateway_config(tmp_path, site=site, gateway="gw-a", broker=broker,
                            meter=meter(modbus_server), extra_devices=[cold],
                            equipment=("rig", "cold"), spool={"refused_retry_s": 1})
    config_file = tmp_path / "gw-a.yaml"
    service = Collector(broker=broker_settings(broker, "collector"), influx=influx,
                        dead_letters=DeadLetterStore(tmp_path / "dead.sqlite"),
                        client_id=f"c-{uuid.uuid4().hex[:6]}", flush_interval_s=0.05)
    service.start()
    assert service.connected.wait(15)
    statuses = Subscriber(broker=broker_settings(broker, "collector"),
                          topic=f"dynamo/v1/{site}/gw-a/status")
    time.sleep(0.3)  # SUBACKs
    try:
        with running(config) as run:
            forwarder = run.gateway.forwarder
            wait_until(lambda: forwarder.refused_by_reason().get(NOT_AUTHORISED, 0) >= 10,
                       timeout_s=60, what="ten refused `cold` messages")
            # The allowed equipment flows and is acknowledged meanwhile; the refused stay.
            wait_until(lambda: (forwarder.stored_upto or -1) >= 0 or forwarder.depth > 0,
                       timeout_s=30, what="acknowledgements")
            assert _cold_points(influx, site) == 0
            held = forwarder.refused_by_reason()[NOT_AUTHORISED]
            assert forwarder.depth >= held
            # Reported in the status (published every 2 s here) ...
            wait_until(lambda: any(s.get("buffer_refused", {}).get(NOT_AUTHORISED, 0) >= 5
                                   for s in statuses.statuses()),
                       timeout_s=30, what="a status reporting the refused messages")
            # ... and by `dynamo gateway spool`, reading the spool while the gateway runs.
            result = CliRunner().invoke(cli, ["gateway", "spool", "--config", str(config_file)])
            assert result.exit_code == 0, result.output
            assert f": {NOT_AUTHORISED}" in result.output, result.output
            assert "refused by the broker, kept:" in result.output
            # The operator fixes the ACL and reloads the broker: no reconnection needed.
            connections = run.gateway.publisher.connections
            (tmp_path / "mqtt" / "acl").write_text(_acl(site, cold_allowed=True))
            broker.reload()
            wait_until(lambda: not forwarder.refused_by_reason(), timeout_s=60,
                       what="the refused messages accepted after the reload")
            end = run.gateway.spool.next_seq
            wait_until(lambda: (forwarder.stored_upto or -1) >= end - 1, timeout_s=60,
                       what="every message stored, the once-refused ones included")
            assert run.gateway.publisher.connections == connections
            seen = len(statuses.statuses())
            wait_until(lambda: any("buffer_refused" not in s
                                   for s in statuses.statuses()[seen:]),
                       timeout_s=30, what="a status with nothing refused any more")
            commits = len(run.commits)
        # Every poll committed below the watermark is in InfluxDB, the once-refused included:
        # one reading per message (rig.meter.power or cold.power), one point per reading.
        assert _cold_points(influx, site) >= held
        total = influx.query(f"SELECT count(value) FROM readings WHERE site = '{site}'")
        assert end <= int(total[0].values[0][1]) <= commits
    finally:
        statuses.close()
        service.stop()
        broker.stop()

