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

from collector.acks import AckTracker
from collector.admission import Admission, Refused, SiteConfigs
from collector.deadletters import DeadLetterStore
from collector.fastpath import FastPath
from collector.inbox import Inbox
from collector.points import Decoded, decode, sequence_event_line, telemetry_seq
from collector.sequence import Observation, SequenceEvent, SequenceTracker
from collector.writer import Backoff, Writer, WriterStopped
from telemetry.errors import PayloadError
from telemetry.influx.client import InfluxClient, InfluxError
from telemetry.influx.lineprotocol import line
from telemetry.influx.schema import COLLECTOR_STATUS
from telemetry.mqtt import connect, make_client
from telemetry.payload import decode_ack
from telemetry.site import Broker
from telemetry.topics import Channel, ack_subscription, parse_ack_topic, subscription

log = logging.getLogger(__name__)

_SEQUENCE_COUNTER = {
    SequenceEvent.GAP: "sequence_gaps",
    SequenceEvent.REPEAT: "sequence_repeats",
    SequenceEvent.LATE: "sequence_late",
    SequenceEvent.RESET: "sequence_resets",
    SequenceEvent.LOST: "sequence_lost",
    SequenceEvent.STALE: "sequence_stale",
    SequenceEvent.VOID: "sequence_void",
}
# How each event moves the number of messages missing (open gaps).
_MISSING_DELTA = {SequenceEvent.GAP: 1, SequenceEvent.LATE: -1, SequenceEvent.LOST: -1,
                  SequenceEvent.VOID: -1}


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
    sequence_void: int = 0  # numbers a gateway's power cut left unaccounted for (its status)
    sequence_missing: int = 0  # a gauge: skipped messages neither arrived nor given up yet
    last_write_ms: int = 0
    lag_ms: int = 0  # at the last write: now − the oldest gateway timestamp of the batch
    held: int = 0  # a gauge: messages received and not yet acknowledged (≤ receive_maximum)
    units_converted: int = 0  # readings converted to their sensor's configured unit
    # dead letters by reason (a short word: collector.metrics.DEAD_LETTER_REASONS), and per
    # (site, gateway) the gateway timestamp (ms) of its newest message stored
    dead_letter_reasons: dict[str, int] = field(default_factory=dict, repr=False)
    stored_ts: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: int) -> None:
        with self.lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def dead_letter(self, reason: str, count: int = 1) -> None:
        """`count` messages or point groups set aside for `reason` (a short word)."""
        with self.lock:
            self.dead_letters += count
            self.dead_letter_reasons[reason] = self.dead_letter_reasons.get(reason, 0) + count

    def stored(self, newest: dict[tuple[str, str], int]) -> None:
        """A batch was stored: the newest gateway timestamp of each (site, gateway) in it."""
        with self.lock:
            for key, ts in newest.items():
                self.stored_ts[key] = max(ts, self.stored_ts.get(key, 0))

    def breakdowns(self) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
        """Copies of the labelled counts: dead letters by reason, newest stored per gateway."""
        with self.lock:
            return dict(self.dead_letter_reasons), dict(self.stored_ts)

    def snapshot(self) -> dict[str, int]:
        """A consistent copy of every counter."""
        with self.lock:
            return {f.name: getattr(self, f.name) for f in fields(self)
                    if f.name not in _NOT_COUNTS}


_NOT_COUNTS = frozenset({"lock", "dead_letter_reasons", "stored_ts"})


@dataclass(frozen=True, slots=True)
class _Item:
    lines: list[str]  # line protocol, one or more lines per item (collector.points.Decoded)
    points: int
    mid: int
    qos: int
    generation: int  # the connection that delivered it: a packet id means nothing on another
    ts: int | None
    source: tuple[str, str] | None = None  # (site, gateway), for the lag per gateway
    seq: int | None = None  # telemetry: its number and numbering epoch, for the end-to-end ack
    epoch: int = 0


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
        acks: bool | None = None,
        ack_interval_s: float = 0.2,
        drain_timeout_s: float = 10.0,
        status_interval_s: float = 30.0,
        admission: Admission | None = None,
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
        # End-to-end acks need every message of a gateway, like sequence tracking (acks.py).
        publish_acks = share_group is None if acks is None else acks
        self.acks = AckTracker(publish=self._publish_ack, interval_s=ack_interval_s) \
            if publish_acks else None
        self._fast = FastPath()  # paho's thread alone uses it
        # What the site configurations declare (None: no check, e.g. tests' throwaway sites).
        # A new one is handed to paho's thread through `_pending_admission` (set_admission).
        self._admission = admission
        self._pending_admission: tuple[int, Admission | None] = (0, admission)
        self._admission_version = 0
        self.site_configs: SiteConfigs | None = None  # the reloader, when the CLI runs one
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
                              on_rejected=self._rejected)
        self._threads = [threading.Thread(target=self._write_loop, name=f"influx-writer-{i}",
                                          daemon=True) for i in range(writers)]
        self._client = make_client(broker=broker, client_id=client_id, manual_ack=True)
        self._client.on_connect = self._connected
        self._client.on_disconnect = self._disconnected
        self._client.on_message = self._received

    def _rejected(self, points: int, letters: int) -> None:
        self.counters.add(rejected_points=points)
        self.counters.dead_letter("influx_refused", letters)

    def set_admission(self, admission: Admission | None) -> None:
        """Judge messages by these configurations from the next message on (a reload)."""
        self._pending_admission = (self._pending_admission[0] + 1, admission)

    @property
    def admission(self) -> Admission | None:
        """The configurations in force (or about to be, at the next message)."""
        return self._pending_admission[1]

    @property
    def queue_depth(self) -> int:
        """Messages received and waiting for their write."""
        return len(self._inbox)

    def start(self) -> None:
        """Start the writers and connect; returns at once (see `connected`)."""
        for thread in self._threads:
            thread.start()
        self._status_thread.start()
        if self.acks is not None:
            self.acks.start()
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
        if self.acks is not None:
            self.acks.stop()  # the last stored numbers, told before we go
        self._client.disconnect()
        self._client.loop_stop()

    # -- MQTT side (paho's thread) ------------------------------------------------------------

    def _connected(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the collector: %s", reason)
            return
        self._generation += 1
        if self.acks is not None:
            # Our own retained acks come back first: what was stored before a restart.
            client.subscribe(ack_subscription(site=self._site), qos=1)
            self.acks.republish()
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
            if self.acks is not None and self._ack_read_back(message):
                client.ack(message.mid, message.qos)
                return
            self._accept(client, message)
        except Exception as exc:
            # A bug of ours must neither kill paho's thread nor come back forever as a poison
            # message: set the message aside like any refused one, where replay can retry it.
            log.exception("could not handle a message on %s", message.topic,
                          extra={"topic": message.topic, "reason": "collector_error"})
            self.dead_letters.add(topic=message.topic, reason=f"collector error: {exc!r}"[:500],
                                  payload=bytes(message.payload), kind="collector_error")
            self.counters.dead_letter("collector_error")
            client.ack(message.mid, message.qos)

    def _accept(self, client: mqtt.Client, message: mqtt.MQTTMessage) -> None:
        self.counters.add(messages=1)
        payload = bytes(message.payload)
        now_ms = int(time.time() * 1000)
        version, admission = self._pending_admission
        if version != self._admission_version:
            # New configurations: the fast path's series were admitted by the old ones.
            self._admission_version, self._admission = version, admission
            self._fast = FastPath()
        try:
            decoded = decode(message.topic, payload, received_ms=now_ms, fast=self._fast,
                             admission=self._admission)
        except PayloadError as exc:
            kind = exc.kind if isinstance(exc, Refused) else "invalid"
            # Stored durably first, then acknowledged: set aside, never lost.
            self.dead_letters.add(topic=message.topic, reason=exc.reason, payload=payload,
                                  kind=kind)
            self.counters.dead_letter(kind)
            log.warning("message set aside: %s", exc.reason,
                        extra={"topic": message.topic, "reason": kind})
            self._ack_set_aside(message.topic, payload)
            client.ack(message.mid, message.qos)
            return
        lines, points = decoded.lines, decoded.points
        if decoded.converted:
            self.counters.add(units_converted=decoded.converted)
        epoch = 0
        if self._sequences is not None and decoded.seq is not None:
            ts = decoded.ts or now_ms
            seen = self._sequences.observe(site=decoded.site, gateway=decoded.gateway,
                                           seq=decoded.seq, ts=ts)
            if seen:
                if self.acks is not None and any(o.kind is SequenceEvent.RESET for o in seen):
                    self.acks.reset(decoded.site, decoded.gateway)
                lines, points = self._sequence_events(decoded, seen, ts, lines, points)
        if decoded.void is not None:
            lines, points = self._void(decoded, decoded.void, decoded.ts or now_ms, lines, points)
        if self.acks is not None:
            if decoded.seq is not None:
                epoch = self.acks.epoch(decoded.site, decoded.gateway)
            elif decoded.floor is not None:
                self.acks.floor(decoded.site, decoded.gateway, decoded.floor)
        self.counters.add(held=1)
        self._inbox.put(_Item(lines, points, message.mid, message.qos, self._generation,
                              decoded.ts, (decoded.site, decoded.gateway)
                              if decoded.seq is not None else None, decoded.seq, epoch))

    def _sequence_events(self, decoded: Decoded, seen: list[Observation], ts: int,
                         lines: list[str], points: int) -> tuple[list[str], int]:
        """Count what a message or a status revealed and add its `sequence_events` lines."""
        deltas = {_SEQUENCE_COUNTER[o.kind]: o.count for o in seen}
        missing = sum(_MISSING_DELTA.get(o.kind, 0) * o.count for o in seen)
        self.counters.add(sequence_missing=missing, **deltas)
        # The event's time is the message's own: a redelivery rewrites the same point.
        return [*lines, *(sequence_event_line(
            site=decoded.site, gateway=decoded.gateway, kind=o.kind, seq=o.seq,
            count=o.count, time_ms=ts) for o in seen)], points + len(seen)

    def _void(self, decoded: Decoded, void: tuple[int, int], ts: int, lines: list[str],
              points: int) -> tuple[list[str], int]:
        """A status's `buffer_void`: numbers the gateway's power cut left unaccounted for are
        settled, in its sequence and in its acknowledgement. Every status repeats the range;
        applying it again changes nothing."""
        first, last = void
        if self._sequences is not None:
            if self._sequences.predates_numbering(site=decoded.site, gateway=decoded.gateway,
                                                  ts=ts):
                # Sent before the numbering restarted: its numbers are the old numbering's,
                # and settling them now could acknowledge new messages never stored.
                log.warning("ignoring a void range older than the gateway's numbering",
                            extra={"site": decoded.site, "gateway": decoded.gateway,
                                   "first": first, "last": last})
                return lines, points
            seen = self._sequences.void(site=decoded.site, gateway=decoded.gateway,
                                        first=first, last=last, ts=ts)
            if seen:
                lines, points = self._sequence_events(decoded, seen, ts, lines, points)
        if self.acks is not None:
            self.acks.void(decoded.site, decoded.gateway, first, last)
        return lines, points

    def _ack_read_back(self, message: mqtt.MQTTMessage) -> bool:
        """True for one of our own acks (retained, read back at start: `AckTracker.seed`)."""
        topic = message.topic
        if topic.count("/") != 4 or (where := parse_ack_topic(topic)) is None:
            return False
        try:
            ack = decode_ack(bytes(message.payload))
        except PayloadError as exc:
            log.warning("ignoring a malformed ack on %s: %s", topic, exc.reason)
            return True
        if (ack.site, ack.gateway) == where and self.acks is not None:
            self.acks.seed(ack)
        return True

    def _ack_set_aside(self, topic: str, payload: bytes) -> None:
        """A telemetry message set aside is durably kept (dead letters, replayable): the
        gateway need not keep it, nor send it again after every reconnection."""
        if self.acks is None:
            return
        found = telemetry_seq(topic, payload)
        if found is not None:
            site, gateway, seq = found
            self.acks.stored([(site, gateway, self.acks.epoch(site, gateway), seq)])

    def _publish_ack(self, topic: str, payload: bytes) -> bool:
        if not self.connected.is_set():
            return False
        self._client.publish(topic, payload, qos=1, retain=True)
        return True

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
            newest = _newest(batch)
            self.counters.stored(newest)
            if log.isEnabledFor(logging.DEBUG):  # one line per gateway and batch, when asked
                for (site, gateway), ts in newest.items():
                    log.debug("stored", extra={"site": site, "gateway": gateway, "ts_ms": ts,
                                               "batch_messages": len(batch)})
            if self.acks is not None:
                self.acks.stored((item.source[0], item.source[1], item.epoch, item.seq)
                                 for item in batch
                                 if item.source is not None and item.seq is not None)
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
            letters = self.dead_letters.stats()
            # dead_letters_dropped: what the store's bound dropped, for good (an alert's input).
            status = line(COLLECTOR_STATUS, {"collector": self._client_id},
                          {"dead_letters": letters.count, "dead_letter_bytes": letters.bytes,
                           "dead_letters_dropped": letters.dropped,
                           "queued_messages": self.queue_depth}, int(time.time() * 1000))
            try:
                self.influx.write([status])
            except InfluxError as exc:
                log.debug("collector status not written: %s", exc)


def _newest(batch: list[_Item]) -> dict[tuple[str, str], int]:
    """Per (site, gateway) of a batch, its newest gateway timestamp (ms)."""
    newest: dict[tuple[str, str], int] = {}
    for item in batch:
        if item.source is not None and item.ts is not None:
            newest[item.source] = max(item.ts, newest.get(item.source, 0))
    return newest
