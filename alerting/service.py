"""The central alerting service: MQTT in (the collector's stream, user `alerting`), engine,
SMS out, replies from gammu-smsd's inbox, commands from the api (acknowledge, silence), and a
steady tick for time-driven rules.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt

from alerting.commands import CommandHandler
from alerting.engine import AlertEvent, Engine
from alerting.events import decode_event, encode_event
from alerting.gammu import GammuInbox, GammuNotifier
from telemetry.errors import PayloadError
from telemetry.mqtt import connect, make_client
from telemetry.payload import decode_status, decode_telemetry
from telemetry.site import Broker
from telemetry.topics import (
    Channel,
    alert_commands_topic,
    events_topic,
    parse_topic,
    subscription,
)

log = logging.getLogger(__name__)
GATEWAY = "alerting"  # the pseudo-gateway level the broker's ACL gives the `alerting` user


@dataclass
class ServiceCounters:
    messages: int = 0
    malformed: int = 0
    replies: int = 0
    commands: int = 0  # applied or refused by the engine (e.g. the alert had resolved)
    commands_rejected: int = 0  # malformed, or not this site's: set aside in the store
    commands_duplicate: int = 0  # redeliveries of a command already handled
    evaluations: int = 0  # telemetry and statuses the engine evaluated (alerting/metrics.py)
    evaluation_errors: int = 0  # messages whose evaluation raised (logged, skipped)
    ticks: int = 0  # time-driven evaluations
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: int) -> None:
        with self.lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)


class AlertService:
    """Feeds the engine from the broker and the modem's inbox until stopped."""

    def __init__(self, *, engine: Engine, broker: Broker, inbox: GammuInbox | None = None,
                 client_id: str = "dynamo-alerting", tick_s: float = 1.0,
                 session_expiry_s: int = 0) -> None:
        """`session_expiry_s` > 0: a persistent session, so that what gateways publish while
        this service reconnects (an edge alert's handover above all) waits for it."""
        self.engine = engine
        self._session_expiry_s = session_expiry_s
        self.inbox = inbox
        self.counters = ServiceCounters()
        self.connected = threading.Event()
        self._broker = broker
        self._tick_s = tick_s
        self._stop = threading.Event()
        self._commands = CommandHandler(engine=engine)
        self._commands_topic = alert_commands_topic(engine.config.site)
        self._ticker = threading.Thread(target=self._tick_loop, name="alert-tick", daemon=True)
        self._client = make_client(broker=broker, client_id=client_id)
        self._client.on_connect = self._connected
        self._client.on_disconnect = self._disconnected
        self._client.on_subscribe = self._subscribed
        self._client.on_message = self._received

    def start(self) -> None:
        self._ticker.start()
        connect(self._client, self._broker, clean_start=not self._session_expiry_s,
                session_expiry_s=self._session_expiry_s)

    def stop(self) -> None:
        self._stop.set()
        self._client.disconnect()
        self._client.loop_stop()
        if self._ticker.is_alive():
            self._ticker.join(timeout=30)

    def publish_event(self, event: AlertEvent) -> None:
        """Announce an alert change on `dynamo/v1/{site}/alerting/events/{equipment}` (QoS 1).

        The broker's ACL lets the `alerting` user write only as the pseudo-gateway `alerting`.
        paho queues it while disconnected; the SQLite store stays the record.
        """
        alert = event.alert
        self._client.publish(events_topic(alert.site, GATEWAY, alert.equipment),
                             encode_event(event, gateway=GATEWAY), qos=1)

    def _connected(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the alerting service: %s", reason)
            return
        site = self.engine.config.site
        client.subscribe([(subscription(channel, site=site), 1)
                          for channel in (Channel.TELEMETRY, Channel.STATUS, Channel.EVENTS)]
                         + [(self._commands_topic, 1)])
        log.info("alerting connected, subscribing to site %s", site)

    def _subscribed(self, _c: mqtt.Client, _u: Any, _mid: int, reasons: Any, _p: Any) -> None:
        # Ready only once the broker confirmed: readings published before that are not ours.
        if any(reason.is_failure for reason in reasons):
            log.error("broker refused a subscription: %s", reasons)
            return
        self.connected.set()

    def _disconnected(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected.clear()
        log.warning("alerting disconnected: %s", reason)

    def _received(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self.counters.add(messages=1)
        if message.topic == self._commands_topic:
            self._command(bytes(message.payload))
            return
        try:
            topic = parse_topic(message.topic)
            if topic is None:
                raise PayloadError("not a dynamo/v1 topic")
            payload = bytes(message.payload)
            if topic.channel is Channel.EVENTS:
                if topic.gateway != GATEWAY:  # our own events come back to us: skip them
                    self._edge_event(topic.site, topic.gateway, payload)
            elif topic.channel is Channel.STATUS:
                status = decode_status(payload)
                if (status.site, status.gateway) != (topic.site, topic.gateway):
                    raise PayloadError("site/gateway in payload differ from the topic")
                self.engine.on_status(status)
                self.counters.add(evaluations=1)
            else:
                telemetry = decode_telemetry(payload)
                if (telemetry.site, telemetry.gateway, telemetry.equipment) != (
                        topic.site, topic.gateway, topic.equipment):
                    raise PayloadError("site/gateway/equipment in payload differ from the topic")
                self.engine.on_telemetry(telemetry)
                self.counters.add(evaluations=1)
        except PayloadError as exc:
            # The collector keeps the dead letter; here it is counted and skipped.
            self.counters.add(malformed=1)
            log.warning("malformed message on %s: %s", message.topic, exc.reason,
                        extra={"topic": message.topic, "reason": exc.reason})
        except Exception:  # one bad message or a store hiccup must not stop alerting
            self.counters.add(evaluation_errors=1)
            log.exception("alert evaluation failed on %s", message.topic,
                          extra={"topic": message.topic})

    def _command(self, payload: bytes) -> None:
        try:
            outcome = self._commands.handle(payload)
        except Exception:  # a store hiccup must not stop alerting; the command stays unrecorded
            log.exception("alert command failed")
            return
        if outcome.result == "rejected":
            self.counters.add(commands_rejected=1)
            log.warning("command rejected: %s", outcome.reason)
        elif outcome.result == "duplicate":
            self.counters.add(commands_duplicate=1)
        else:
            self.counters.add(commands=1)

    def _record_outcomes(self) -> None:
        """Follow SMS handed to gammu-smsd until the modem sent them or gave up."""
        store = self.engine.store
        for notifier in self.engine.notifier.notifiers:
            if not isinstance(notifier, GammuNotifier):
                continue
            for record in store.awaiting_outcome(notifier=notifier.name):
                outcome = notifier.outcome(record.reference)
                if outcome is not None:
                    store.set_outcome(notification_id=record.id, outcome=outcome)

    def _edge_event(self, site: str, gateway: str, payload: bytes) -> None:
        try:
            kind = json.loads(payload).get("type")
        except (ValueError, AttributeError):
            raise PayloadError("an event must be a JSON object") from None
        if kind != "alert":
            return  # other kinds of gateway events are the collector's business
        event = decode_event(payload)
        if (event.site, event.gateway) != (site, gateway):
            raise PayloadError("site/gateway in payload differ from the topic")
        self.engine.on_edge_event(gateway=gateway, rule_id=event.rule, subject=event.subject,
                                  event=event.event, at_ms=event.ts, by=event.detail)

    def _tick_loop(self) -> None:
        while not self._stop.wait(self._tick_s):
            try:
                if self.inbox is not None:
                    for sms in self.inbox.take():
                        self.counters.add(replies=1)
                        self.engine.on_sms(phone=sms.number, text=sms.text)
                self.engine.tick()
                self.counters.add(ticks=1)
                self._record_outcomes()
            except Exception:
                log.exception("alert tick failed")
