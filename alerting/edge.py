"""Edge alerting: the rules of one gateway's equipment, run on its Raspberry Pi, paging through
its own modem while its uplink is down.

It runs as its own process beside the gateway (`dynamo alerts edge`): the two components never
import each other and meet on the gateway's *local* broker, where a gateway configured with
`mirror_to_local: true` publishes each poll (the central topics' names) and, retained, its
uplink state (`telemetry.topics.uplink_topic`: `up`, `down`, `unknown`).

- The engine always evaluates, so a door opened before the uplink fell fires on time after.
- It sends SMS only while the uplink is `down`. Alerts that fire while it is `up` (or
  `unknown`) are marked as the central engine's and never announced, followed up nor resolved
  by SMS from here.
- Every change of an alert it handled (a resolution only if it sent it) is published, as
  the gateway (its credentials, its ACL prefix), on `dynamo/v1/{site}/{gateway}/events/{equipment}`
  of the central broker. Each event is first written to the store's outbox and removed once the
  broker confirms it (PUBACK): while the uplink is down paho holds them, and an edge restarted
  meanwhile publishes what is left in the outbox when it starts. When the uplink comes back,
  the open alerts are published again too. The central engine adopts them
  (`Engine.on_edge_event`): no second SMS. Its `edge_handover_s` window bounds the race with
  the gateway's backlog (docs/alerting.md, "At the edge").
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import paho.mqtt.client as mqtt

from alerting.alert import State
from alerting.engine import AlertEvent, Engine
from alerting.events import encode_event
from alerting.gammu import GammuInbox, GammuNotifier
from alerting.notifier import FallbackNotifier
from alerting.rules import AlertConfig, NoDataRule
from alerting.store import AlertStore
from telemetry.errors import PayloadError
from telemetry.mqtt import connect, make_client
from telemetry.payload import decode_telemetry, decode_uplink
from telemetry.site import GatewayConfig
from telemetry.topics import events_topic, telemetry_topic, uplink_topic

log = logging.getLogger(__name__)
_PUBLISHED = ("fired", "escalated", "acknowledged", "resolved")


def edge_rules(config: AlertConfig, gateway: GatewayConfig) -> AlertConfig:
    """The rules that watch `gateway`'s own equipment; gateway-offline rules stay central."""
    equipment = {e.id for e in gateway.equipment}
    rules = tuple(rule for rule in config.rules if rule.equipment in equipment
                  and not (isinstance(rule, NoDataRule) and rule.gateway is not None))
    return config.model_copy(update={"rules": rules})


class EdgeAlerting:
    """Local broker in, the gateway's modem out while the uplink is down, events to central."""

    def __init__(self, *, config: AlertConfig, gateway: GatewayConfig, store: AlertStore,
                 notifier: FallbackNotifier, inbox: GammuInbox | None = None,
                 tick_s: float = 1.0) -> None:
        if gateway.local_broker is None or not gateway.mirror_to_local:
            raise ValueError(f"gateway {gateway.gateway}: edge alerting needs `local_broker` "
                             "and `mirror_to_local: true` in its configuration")
        if config.site != gateway.site:
            raise ValueError(f"the rules are for site {config.site!r}, the gateway is in "
                             f"{gateway.site!r}")
        self.gateway = gateway
        self.uplink = "unknown"  # until the gateway says: the central engine pages
        self.ready = threading.Event()
        self.inbox = inbox
        self.engine = Engine(config=edge_rules(config, gateway), store=store,
                             notifier=notifier, on_event=self._publish_event,
                             pages=lambda: self.uplink == "down")
        self._tick_s = tick_s
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick_loop, name="edge-tick", daemon=True)
        site, name = gateway.site, gateway.gateway
        self._local = make_client(broker=gateway.local_broker,
                                  client_id=f"edge-{site}-{name}-local")
        self._local.on_connect = self._local_connected
        self._local.on_subscribe = lambda *_: self.ready.set()
        self._local.on_message = self._received
        # The gateway's own user: its ACL prefix is where edge events belong. Reconnect
        # attempts every 2 s at most, so that the events follow the uplink's return closely.
        self._central = make_client(broker=gateway.broker, client_id=f"edge-{site}-{name}")
        self._central.reconnect_delay_set(min_delay=1, max_delay=2)
        self._central.max_queued_messages_set(1000)
        self._central.on_publish = self._confirmed
        self._sent_lock = threading.Lock()
        self._in_flight: dict[int, int] = {}  # packet id → outbox id, until the broker's PUBACK
        self._confirmed_early: set[int] = set()  # PUBACKs that beat `_send` to its bookkeeping

    def start(self) -> None:
        self._ticker.start()
        connect(self._central, self.gateway.broker)
        # What a previous run could not deliver (it stopped while the uplink was down), oldest
        # first and before anything new: paho sends it once the broker answers.
        for entry in self.engine.store.outbox():
            self._send(entry.id, entry.topic, entry.payload)
        if self.gateway.local_broker is not None:
            connect(self._local, self.gateway.local_broker)

    def stop(self) -> None:
        self._stop.set()
        for client in (self._local, self._central):
            client.disconnect()
            client.loop_stop()
        if self._ticker.is_alive():
            self._ticker.join(timeout=30)

    # -- local broker ---------------------------------------------------------------------------

    def _local_connected(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any,
                         _p: Any) -> None:
        if reason.is_failure:
            log.error("local broker refused edge alerting: %s", reason)
            return
        site, name = self.gateway.site, self.gateway.gateway
        client.subscribe([(telemetry_topic(site, name, "+"), 0), (uplink_topic(site, name), 1)])

    def _received(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            if message.topic == uplink_topic(self.gateway.site, self.gateway.gateway):
                self._set_uplink(decode_uplink(bytes(message.payload)).state)
                return
            telemetry = decode_telemetry(bytes(message.payload))
            if telemetry.gateway == self.gateway.gateway:
                self.engine.on_telemetry(telemetry)
        except PayloadError as exc:
            log.warning("malformed message on %s: %s", message.topic, exc.reason)
        except Exception:  # one bad message or a store hiccup must not stop edge alerting
            log.exception("edge evaluation failed on %s", message.topic)

    def _set_uplink(self, state: str) -> None:
        previous, self.uplink = self.uplink, state
        if state == previous:
            return
        log.warning("uplink %s: edge alerting %s", state,
                    "pages through the local modem" if state == "down" else "stands by")
        if state == "up":
            self._hand_over()

    def _hand_over(self) -> None:
        """Publish again every open alert this gateway announced, for the central engine."""
        # Called on paho's local thread, which also feeds the engine: no alert moves meanwhile.
        for alert in self.engine.store.open_alerts():
            if alert.state is not State.FIRING or alert.notified_ms is None \
                    or "central" in alert.extra or "replayed" in alert.extra:
                continue
            self._publish_event(AlertEvent(alert=alert, kind="fired", at_ms=alert.notified_ms))
            if alert.acked_ms is not None:
                self._publish_event(AlertEvent(alert=alert, kind="acknowledged",
                                               at_ms=alert.acked_ms,
                                               detail=alert.acked_by or ""))
            log.info("alert %s handed over to the central engine", alert.id)

    # -- central broker -------------------------------------------------------------------------

    def _publish_event(self, event: AlertEvent) -> None:
        alert = event.alert
        if event.kind not in _PUBLISHED or "central" in alert.extra \
                or "replayed" in alert.extra:
            return
        if event.kind == "resolved" and self.uplink != "down":
            # Nobody was told by us: the central engine, which has the alert since the
            # handover, sees the same readings and sends the one resolution SMS.
            return
        topic = events_topic(alert.site, self.gateway.gateway, alert.equipment)
        payload = encode_event(event, gateway=self.gateway.gateway)
        self._send(self.engine.store.outbox_add(topic=topic, payload=payload, at_ms=event.at_ms),
                   topic, payload)

    def _send(self, entry_id: int, topic: str, payload: bytes) -> None:
        # QoS 1: paho keeps it while the uplink is down and sends it once reconnected.
        mid = self._central.publish(topic, payload, qos=1).mid
        with self._sent_lock:
            early = mid in self._confirmed_early
            if early:
                self._confirmed_early.discard(mid)
            else:
                self._in_flight[mid] = entry_id
        if early:
            self.engine.store.outbox_remove(entry_id)

    def _confirmed(self, _c: mqtt.Client, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        """The central broker has an event (paho's thread): out of the outbox."""
        if reason.is_failure:
            log.error("the central broker refused an edge event: %s", reason)
        with self._sent_lock:
            entry_id = self._in_flight.pop(mid, None)
            if entry_id is None:
                self._confirmed_early.add(mid)
                return
        self.engine.store.outbox_remove(entry_id)

    # -- time and the modem ---------------------------------------------------------------------

    def _tick_loop(self) -> None:
        while not self._stop.wait(self._tick_s):
            try:
                if self.inbox is not None:
                    for sms in self.inbox.take():
                        self.engine.on_sms(phone=sms.number, text=sms.text)
                # Repeats, escalation and no-data only while we page: otherwise the central
                # engine does them, and a follow-up we could not send must not be recorded.
                if self.uplink == "down":
                    self.engine.tick()
                self._record_outcomes()
            except Exception:
                log.exception("edge tick failed")

    def _record_outcomes(self) -> None:
        store = self.engine.store
        for notifier in self.engine.notifier.notifiers:
            if isinstance(notifier, GammuNotifier):
                for record in store.awaiting_outcome(notifier=notifier.name):
                    outcome = notifier.outcome(record.reference)
                    if outcome is not None:
                        store.set_outcome(notification_id=record.id, outcome=outcome)
