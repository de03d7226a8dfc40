"""The api's watch on the broker: a connected MQTT client whose state `/health` reports."""

from __future__ import annotations

import threading
from typing import Any

import paho.mqtt.client as mqtt

from telemetry.mqtt import connect, make_client
from telemetry.site import Broker


class BrokerMonitor:
    def __init__(self, *, broker: Broker, client_id: str = "dynamo-api") -> None:
        self._broker = broker
        self.connected = threading.Event()
        self.last_error = "not connected yet"
        self._client = make_client(broker=broker, client_id=client_id)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect

    def start(self) -> None:
        connect(self._client, self._broker)

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self.last_error = f"refused: {reason}"
            return
        self.connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected.clear()
        self.last_error = f"disconnected: {reason}"

    def describe(self) -> str:
        where = f"{self._broker.host}:{self._broker.port}"
        return f"connected to {where}" if self.connected.is_set() else \
            f"{where}: {self.last_error}"
