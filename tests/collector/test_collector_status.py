"""The collector writes its own status (dead letters, queue) for the fleet dashboard."""

from __future__ import annotations

import paho.mqtt.client as mqtt
import pytest

from collector import Collector
from dynamo.devservices import wait_until
from telemetry.influx.client import InfluxClient
from telemetry.topics import telemetry_topic


def _statuses(influx: InfluxClient) -> list[dict[str, object]]:
    series = influx.query('SELECT dead_letters, queued_messages, "collector" '
                          "FROM collector_status")
    return [row for s in series for row in s.rows()]


@pytest.mark.parametrize("collector", [{"status_interval_s": 0.2}], indirect=True)
def test_status_counts_dead_letters(collector: Collector, gateway: mqtt.Client,
                                    influx: InfluxClient) -> None:
    wait_until(lambda: bool(_statuses(influx)), timeout_s=15, what="a first collector status")
    assert _statuses(influx)[-1]["dead_letters"] == 0
    for _ in range(3):
        gateway.publish(telemetry_topic("status-site", "test-gw", "dryer"), b"not json",
                        qos=1).wait_for_publish(timeout=10)
    wait_until(lambda: _statuses(influx)[-1]["dead_letters"] == 3, timeout_s=15,
               what="the three dead letters in the collector's status")
    # tagged with the collector's client id (the fixture's are collector-<hex>)
    assert str(_statuses(influx)[-1]["collector"]).startswith("collector-")
