"""Collector test fixtures: a running collector and a test gateway's client, on the shared broker.

Both take options by indirect parametrisation, e.g.
`@pytest.mark.parametrize("collector", [{"receive_maximum": 5}], indirect=True)`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from collector import Collector, DeadLetterStore
from dynamo.devservices import wait_until
from telemetry.influx.client import InfluxClient
from telemetry.mqtt import connect, make_client
from telemetry.site import Broker


@pytest.fixture
def collector(request: pytest.FixtureRequest, broker_for: Callable[[str], Broker],
              influx: InfluxClient, tmp_path: Path) -> Iterator[Collector]:
    """A collector (user `collector`) writing to this test's `influx` database, subscribed.

    Parameter: keyword arguments for `Collector`, over the defaults below.
    """
    options = {"client_id": f"collector-{uuid.uuid4().hex[:6]}", "flush_interval_s": 0.05,
               **getattr(request, "param", {})}
    service = Collector(broker=broker_for("collector"), influx=influx,
                        dead_letters=DeadLetterStore(tmp_path / "dead.sqlite"), **options)
    service.start()
    assert service.connected.wait(10)
    time.sleep(0.2)  # let the SUBACK land before anything is published
    yield service
    service.stop()


@pytest.fixture
def gateway(request: pytest.FixtureRequest,
            broker_for: Callable[[str], Broker]) -> Iterator[mqtt.Client]:
    """A connected MQTT client of a gateway's user (parameter: the user, `test-gw` unless said)."""
    broker = broker_for(getattr(request, "param", "test-gw"))
    client = make_client(broker=broker, client_id=f"gw-{uuid.uuid4().hex[:6]}")
    connect(client, broker)
    wait_until(client.is_connected, timeout_s=15, what=f"{broker.username}'s connection",
               interval_s=0.05)
    yield client
    client.disconnect()
    client.loop_stop()
