"""The collector: MQTT in, InfluxDB out, acknowledging each message only once it is stored.

paho's network thread decodes messages and hands their lines to a bounded queue; the writer
thread batches lines to InfluxDB and acknowledges (MQTT `manual_ack`) the messages of a batch
once InfluxDB confirmed the write. While InfluxDB is down the writer retries, the queue fills,
paho's thread blocks on it, and the broker keeps the rest: backpressure instead of memory growth.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt

from collector.deadletters import DeadLetterStore
from collector.points import status_line, telemetry_lines
from telemetry.errors import PayloadError
from telemetry.influx.client import (
    InfluxClient,
    InfluxRejected,
    InfluxThrottled,
    InfluxTooLarge,
    InfluxUnavailable,
)
from telemetry.mqtt import connect, make_client
from telemetry.payload import decode_status, decode_telemetry
from telemetry.site import Broker
from telemetry.topics import Channel, parse_topic, subscription

log = logging.getLogger(__name__)


@dataclass
class Counters:
    messages: int = 0
    points: int = 0
    batches: int = 0
    retries: int = 0
    dead_letters: int = 0
    rejected_points: int = 0
    last_write_ms: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: int) -> None:
        with self.lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)


@dataclass(frozen=True, slots=True)
class _Item:
    lines: list[str]
    mid: int
    qos: int


class Collector:
    """Subscribes to every gateway's telemetry and status and writes them to InfluxDB."""

    def __init__(
        self,
        *,
        broker: Broker,
        influx: InfluxClient,
        dead_letters: DeadLetterStore,
        client_id: str = "dynamo-collector",
        share_group: str | None = None,
        batch_points: int = 5000,
        flush_interval_s: float = 0.2,
        max_queued_messages: int = 20000,
    ) -> None:
        self.influx = influx
        self.dead_letters = dead_letters
        self.counters = Counters()
        self.connected = threading.Event()
        self._broker = broker
        self._share_group = share_group
        self._batch_points = batch_points
        self._flush_interval_s = flush_interval_s
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=max_queued_messages)
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="influx-writer",
                                        daemon=True)
        self._client = make_client(broker=broker, client_id=client_id, manual_ack=True)
        self._client.on_connect = self._connected
        self._client.on_disconnect = self._disconnected
        self._client.on_message = self._received

    def start(self) -> None:
        self._writer.start()
        # A persistent session: what arrives while we are away waits for us at the broker.
        connect(self._client, self._broker, clean_start=False, session_expiry_s=7 * 86400)

    def stop(self) -> None:
        """Disconnect, then flush what was received; unacknowledged messages stay at the broker."""
        self._client.disconnect()
        self._client.loop_stop()
        self._stop.set()
        self._writer.join(timeout=30)

    # -- MQTT side (paho's thread) ------------------------------------------------------------

    def _connected(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the collector: %s", reason)
            return
        for channel in (Channel.TELEMETRY, Channel.STATUS):
            client.subscribe(subscription(channel, share_group=self._share_group), qos=1)
        self.connected.set()
        log.info("collector connected and subscribed")

    def _disconnected(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected.clear()
        log.warning("collector disconnected: %s", reason)

    def _received(self, client: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self.counters.add(messages=1)
        try:
            lines = self._lines_of(message.topic, bytes(message.payload))
        except PayloadError as exc:
            self.dead_letters.add(topic=message.topic, reason=exc.reason,
                                  payload=bytes(message.payload))
            self.counters.add(dead_letters=1)
            client.ack(message.mid, message.qos)
            return
        # Blocks when the writer is behind: this is the backpressure.
        self._queue.put(_Item(lines, message.mid, message.qos))

    def _lines_of(self, topic_name: str, payload: bytes) -> list[str]:
        topic = parse_topic(topic_name)
        if topic is None:
            raise PayloadError("not a dynamo/v1 topic")
        if topic.channel is Channel.STATUS:
            status = decode_status(payload)
            if (status.site, status.gateway) != (topic.site, topic.gateway):
                raise PayloadError("site/gateway in payload differ from the topic")
            return [status_line(status, received_ms=int(time.time() * 1000))]
        telemetry = decode_telemetry(payload)
        # The topic is what the broker's ACL vouches for; the payload must agree with it.
        if (telemetry.site, telemetry.gateway, telemetry.equipment) != (
                topic.site, topic.gateway, topic.equipment):
            raise PayloadError("site/gateway/equipment in payload differ from the topic")
        return telemetry_lines(telemetry)

    # -- InfluxDB side (writer thread) ---------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            batch = self._next_batch()
            if not batch:
                if self._stop.is_set():
                    return
                continue
            self._write(batch)
            for item in batch:
                if item.qos > 0:
                    self._client.ack(item.mid, item.qos)

    def _next_batch(self) -> list[_Item]:
        batch: list[_Item] = []
        points = 0
        deadline = time.monotonic() + self._flush_interval_s
        while points < self._batch_points:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            batch.append(item)
            points += len(item.lines)
        return batch

    def _write(self, batch: list[_Item]) -> None:
        """Write until InfluxDB confirms; only refused points are set aside."""
        lines = [line for item in batch for line in item.lines]
        delay = 0.5
        while True:
            try:
                self._write_split(lines)
                self.counters.add(points=len(lines), batches=1)
                self.counters.last_write_ms = int(time.time() * 1000)
                return
            except InfluxUnavailable as exc:
                wait = exc.retry_after_s if isinstance(exc, InfluxThrottled) and \
                    exc.retry_after_s else delay * random.uniform(0.5, 1.5)
                log.warning("InfluxDB unavailable (%s); retrying in %.1f s", exc, wait)
                self.counters.add(retries=1)
                time.sleep(wait)
                delay = min(delay * 2, 30.0)

    def _write_split(self, lines: list[str]) -> None:
        try:
            self.influx.write(lines)
        except InfluxTooLarge:
            if len(lines) == 1:
                self._reject(lines, "point larger than the server's body limit")
                return
            half = len(lines) // 2
            self._write_split(lines[:half])
            self._write_split(lines[half:])
        except InfluxRejected as exc:
            # 1.x writes the valid points of a batch and refuses the rest ("partial write").
            self._reject(lines, str(exc))

    def _reject(self, lines: list[str], reason: str) -> None:
        log.error("InfluxDB refused points: %s", reason)
        self.dead_letters.add(topic="influxdb-write", reason=reason[:500],
                              payload="\n".join(lines).encode())
        self.counters.add(rejected_points=len(lines), dead_letters=1)
