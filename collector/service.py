"""The collector: MQTT in, InfluxDB out, acknowledging each message only once it is stored.

paho's network thread validates each message (collector.points) and puts its lines in the inbox
(collector.inbox); writer threads take them in batches by size and time, write them
(collector.writer) and acknowledge (MQTT `manual_ack`) the messages of a batch once InfluxDB
confirmed it.

Backpressure is MQTT 5 flow control, not a growing queue: the collector announces a Receive
Maximum, and the broker stops sending once that many messages wait for our acknowledgement.
While InfluxDB is down nothing is acknowledged, so the collector holds at most
`receive_maximum` messages and the broker keeps the rest in our persistent session. paho's
thread never blocks, so keepalives flow and the session stays up throughout the outage.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, fields
from typing import Any

import paho.mqtt.client as mqtt

from collector.deadletters import DeadLetterStore
from collector.fastpath import FastPath
from collector.inbox import Inbox
from collector.points import decode, sequence_event_line
from collector.sequence import SequenceEvent, SequenceTracker
from collector.writer import Backoff, Writer, WriterStopped
from telemetry.errors import PayloadError
from telemetry.influx.client import InfluxClient, InfluxError
from telemetry.influx.lineprotocol import line
from telemetry.influx.schema import COLLECTOR_STATUS
from telemetry.mqtt import connect, make_client
from telemetry.site import Broker
from telemetry.topics import Channel, subscription

log = logging.getLogger(__name__)

_SEQUENCE_COUNTER = {
    SequenceEvent.GAP: "sequence_gaps",
    SequenceEvent.REPEAT: "sequence_repeats",
    SequenceEvent.LATE: "sequence_late",
    SequenceEvent.RESET: "sequence_resets",
    SequenceEvent.LOST: "sequence_lost",
    SequenceEvent.STALE: "sequence_stale",
}
# How each event moves the number of messages missing (open gaps).
_MISSING_DELTA = {SequenceEvent.GAP: 1, SequenceEvent.LATE: -1, SequenceEvent.LOST: -1}


@dataclass
class Counters:
    """What the collector did since it started; `/metrics` exposes these."""

    messages: int = 0
    points: int = 0
    batches: int = 0
    retries: int = 0
    dead_letters: int = 0
    rejected_points: int = 0
    sequence_gaps: int = 0  # messages skipped, summed over the gaps seen (filled or not)
    sequence_repeats: int = 0
    sequence_late: int = 0  # skipped messages that arrived after all (a backlog's)
    sequence_lost: int = 0  # skipped messages given up (see collector.sequence)
    sequence_stale: int = 0
    sequence_resets: int = 0
    sequence_missing: int = 0  # a gauge: skipped messages neither arrived nor given up yet
    last_write_ms: int = 0
    lag_ms: int = 0  # at the last write: now − the oldest gateway timestamp of the batch
    held: int = 0  # a gauge: messages received and not yet acknowledged (≤ receive_maximum)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: int) -> None:
        with self.lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def snapshot(self) -> dict[str, int]:
        """A consistent copy of every counter."""
        with self.lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "lock"}


@dataclass(frozen=True, slots=True)
class _Item:
    lines: list[str]  # line protocol, one or more lines per item (collector.points.Decoded)
    points: int
    mid: int
    qos: int
    generation: int  # the connection that delivered it: a packet id means nothing on another
    ts: int | None


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
        site: str = "+",
        batch_points: int = 5000,
        flush_interval_s: float = 0.2,
        receive_maximum: int = 2000,
        writers: int = 1,
        backoff: Backoff | None = None,
        session_expiry_s: int = 7 * 86400,
        track_sequences: bool | None = None,
        drain_timeout_s: float = 10.0,
        status_interval_s: float = 30.0,
    ) -> None:
        if not 1 <= receive_maximum <= 65535:
            raise ValueError("receive_maximum must be within 1..65535 (MQTT 5)")
        if writers < 1:
            raise ValueError("writers must be at least 1")
        self.influx = influx
        self._site = site  # "+" for every site; one site id for a per-site collector
        self.dead_letters = dead_letters
        self.counters = Counters()
        self.connected = threading.Event()
        self.receive_maximum = receive_maximum
        self._broker = broker
        self._share_group = share_group
        self._session_expiry_s = session_expiry_s
        self._drain_timeout_s = drain_timeout_s
        self._client_id = client_id
        self._status_interval_s = status_interval_s
        self._status_thread = threading.Thread(target=self._status_loop, name="collector-status",
                                               daemon=True)
        # Shared subscriptions split a gateway's sequence between collectors: no one sees it all.
        track = share_group is None if track_sequences is None else track_sequences
        self._sequences = SequenceTracker() if track else None
        self._fast = FastPath()  # paho's thread alone uses it
        # Flow control bounds what the broker sends us; the slack covers QoS 0 and a reconnect's
        # redelivery overlapping items of the previous connection still in the inbox.
        # A batch also goes once it holds its share of the flow-control window: the broker sends
        # no more until we acknowledge, and each writer should have a batch to write.
        self._inbox: Inbox[_Item] = Inbox(batch_points=batch_points,
                                          batch_messages=max(1, receive_maximum // (writers + 1)),
                                          flush_interval_s=flush_interval_s,
                                          capacity=2 * receive_maximum + 64)
        self._generation = 0
        self._closing = threading.Event()
        self._draining = threading.Event()
        self._give_up = threading.Event()
        self._writer = Writer(influx=influx, dead_letters=dead_letters, give_up=self._give_up,
                              backoff=backoff, on_retry=lambda: self.counters.add(retries=1),
                              on_rejected=lambda points, letters: self.counters.add(
                                  rejected_points=points, dead_letters=letters))
        self._threads = [threading.Thread(target=self._write_loop, name=f"influx-writer-{i}",
                                          daemon=True) for i in range(writers)]
        self._client = make_client(broker=broker, client_id=client_id, manual_ack=True)
        self._client.on_connect = self._connected
        self._client.on_disconnect = self._disconnected
        self._client.on_message = self._received

    @property
    def queue_depth(self) -> int:
        """Messages received and waiting for their write."""
        return len(self._inbox)

    def start(self) -> None:
        """Start the writers and connect; returns at once (see `connected`)."""
        for thread in self._threads:
            thread.start()
        self._status_thread.start()
        # A persistent session: what arrives while we are away waits for us at the broker.
        connect(self._client, self._broker, clean_start=False,
                session_expiry_s=self._session_expiry_s, receive_maximum=self.receive_maximum)

    def stop(self) -> None:
        """Write and acknowledge what was received, then disconnect.

        Messages not yet written when `drain_timeout_s` runs out (InfluxDB down) stay
        unacknowledged: the broker delivers them again to the next session.
        """
        self._closing.set()
        self._draining.set()
        deadline = time.monotonic() + self._drain_timeout_s
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._give_up.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._client.disconnect()
        self._client.loop_stop()

    # -- MQTT side (paho's thread) ------------------------------------------------------------

    def _connected(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the collector: %s", reason)
            return
        self._generation += 1
        for channel in (Channel.TELEMETRY, Channel.STATUS):
            client.subscribe(subscription(channel, site=self._site, share_group=self._share_group),
                             qos=1)
        self.connected.set()
        log.info("collector connected and subscribed")

    def _disconnected(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected.clear()
        log.warning("collector disconnected: %s", reason)

    def _received(self, client: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        if self._closing.is_set():
            return  # not acknowledged: the broker keeps it for our next session
        try:
            self._accept(client, message)
        except Exception as exc:
            # A bug of ours must neither kill paho's thread nor come back forever as a poison
            # message: set the message aside like any refused one, where replay can retry it.
            log.exception("could not handle a message on %s", message.topic)
            self.dead_letters.add(topic=message.topic, reason=f"collector error: {exc!r}"[:500],
                                  payload=bytes(message.payload))
            self.counters.add(dead_letters=1)
            client.ack(message.mid, message.qos)

    def _accept(self, client: mqtt.Client, message: mqtt.MQTTMessage) -> None:
        self.counters.add(messages=1)
        payload = bytes(message.payload)
        now_ms = int(time.time() * 1000)
        try:
            decoded = decode(message.topic, payload, received_ms=now_ms, fast=self._fast)
        except PayloadError as exc:
            # Stored durably first, then acknowledged: set aside, never lost.
            self.dead_letters.add(topic=message.topic, reason=exc.reason, payload=payload)
            self.counters.add(dead_letters=1)
            client.ack(message.mid, message.qos)
            return
        lines, points = decoded.lines, decoded.points
        if self._sequences is not None and decoded.seq is not None:
            ts = decoded.ts or now_ms
            seen = self._sequences.observe(site=decoded.site, gateway=decoded.gateway,
                                           seq=decoded.seq, ts=ts)
            if seen:
                deltas = {_SEQUENCE_COUNTER[o.kind]: o.count for o in seen}
                missing = sum(_MISSING_DELTA.get(o.kind, 0) * o.count for o in seen)
                self.counters.add(sequence_missing=missing, **deltas)
                # The event's time is the message's own: a redelivery rewrites the same point.
                lines = [*lines, *(sequence_event_line(
                    site=decoded.site, gateway=decoded.gateway, kind=o.kind, seq=o.seq,
                    count=o.count, time_ms=ts) for o in seen)]
                points += len(seen)
        self.counters.add(held=1)
        self._inbox.put(_Item(lines, points, message.mid, message.qos, self._generation,
                              decoded.ts))

    # -- InfluxDB side (writer threads) --------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            batch = self._inbox.take()
            if not batch:
                if self._draining.is_set():
                    return
                continue
            lines = [text for item in batch for text in item.lines]
            try:
                refused = self._writer.write(lines)
            except WriterStopped:
                self.counters.add(held=-len(batch))
                return  # stopping with InfluxDB down: the broker redelivers these later
            now_ms = int(time.time() * 1000)
            oldest = min((item.ts for item in batch if item.ts is not None), default=now_ms)
            self.counters.add(points=sum(item.points for item in batch) - refused, batches=1)
            with self.counters.lock:
                self.counters.last_write_ms = now_ms
                self.counters.lag_ms = max(0, now_ms - oldest)
            # Before the acknowledgements: the broker's next messages must find the room free.
            self.counters.add(held=-len(batch))
            generation = self._generation
            for item in batch:
                # After a reconnect the broker redelivers what we had not acknowledged, under
                # packet ids that may since name other messages: acknowledge only the current.
                if item.qos > 0 and item.generation == generation:
                    self._client.ack(item.mid, item.qos)

    def _status_loop(self) -> None:
        """Every `status_interval_s`, the collector's own state for the fleet dashboard.

        Best effort and written beside the telemetry path: a status missed while InfluxDB is
        down is a gap in a gauge, not lost data, and must never hold telemetry back.
        """
        while not self._closing.wait(self._status_interval_s):
            status = line(COLLECTOR_STATUS, {"collector": self._client_id},
                          {"dead_letters": self.dead_letters.count(),
                           "queued_messages": self.queue_depth}, int(time.time() * 1000))
            try:
                self.influx.write([status])
            except InfluxError as exc:
                log.debug("collector status not written: %s", exc)
