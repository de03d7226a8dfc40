"""The alert engine: readings and gateway states in, SMS out, every step recorded.

Pure of transport: it is fed decoded `Telemetry`/`Status` (the service reads MQTT; a gateway may
feed its own polls when its uplink is down) and sends through a `FallbackNotifier`. Time comes
from an injectable clock, so durations, repeats and escalation are tested in simulated time.
Every state change is written to the store before anything is sent, so a restart resumes firing
alerts without re-announcing them.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from alerting.alert import Alert, State
from alerting.messages import MessageFields, render
from alerting.notifier import FallbackNotifier
from alerting.rules import (
    AlertConfig,
    Language,
    NoDataRule,
    Notify,
    RateRule,
    StateRule,
    ThresholdRule,
)
from alerting.store import AlertStore
from telemetry.payload import Quality, Status, Telemetry

log = logging.getLogger(__name__)
_ACK = re.compile(r"^\s*(?:ok|ack|vu)\s*#?\s*(\d+)?\b", re.IGNORECASE)
_SensorRules = ThresholdRule | RateRule | StateRule
# A gateway's client certificate is announced this long before it expires (docs/pki.md).
CERTIFICATE_WARNING_DAYS = 30
CERTIFICATE_RULE = "certificate"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A change worth showing on a dashboard: fired, resolved, acknowledged, notified."""

    alert: Alert
    kind: str
    at_ms: int
    detail: str = ""


class Engine:
    """Evaluates one site's rules. Thread-safe: every public method holds one lock."""

    def __init__(self, *, config: AlertConfig, store: AlertStore, notifier: FallbackNotifier,
                 clock: Callable[[], float] = time.time,
                 on_event: Callable[[AlertEvent], None] | None = None,
                 pages: Callable[[], bool] | None = None) -> None:
        """`pages()` says whether this engine may send SMS now (None: always). The edge engine
        pages only while its gateway's uplink is down: what it decides meanwhile is recorded,
        and alerts that fire then are marked as the central engine's (`extra["central"]`)."""
        self.config = config
        self.store = store
        self.notifier = notifier
        self._clock = clock
        self._on_event = on_event
        self._pages = pages
        # Edge gateways just back from an outage: gateway -> end of the handover
        # window, during which their alerts fire unannounced (the edge may have told them).
        self._held_until: dict[str, int] = {}
        self._lost_seen: dict[str, int] = {}
        self._lock = threading.RLock()
        self._open: dict[tuple[str, str], Alert] = {a.key: a for a in store.open_alerts()}
        self._rules = {rule.id: rule for rule in config.rules}
        self._last_seen: dict[str, int] = {}
        self._evaluated: dict[str, tuple[int, int]] = {}  # sensor → (ts, seq) last evaluated
        # Silence is measured from our own start: after a restart nothing is "silent" at once.
        self._started_ms = self._now()
        self._offline_since: dict[str, int] = {}
        self._history: dict[tuple[str, str], deque[tuple[int, float]]] = {}
        self._by_sensor: dict[str, list[_SensorRules]] = {}
        for rule in config.rules:
            if isinstance(rule, ThresholdRule | RateRule | StateRule):
                for sensor in config.subjects(rule):
                    self._by_sensor.setdefault(sensor, []).append(rule)

    def _now(self) -> int:
        return int(self._clock() * 1000)

    # -- inputs ---------------------------------------------------------------------------------

    def on_telemetry(self, telemetry: Telemetry) -> None:
        """Evaluate the rules touched by one device poll."""
        if telemetry.site != self.config.site:
            return
        with self._lock:
            now = self._now()
            # Replayed backlog (a gateway catching up after an outage) updates the data but
            # does not page anyone about the past: the gateway alerted locally meanwhile.
            fresh = now - telemetry.ts <= self.config.max_reading_age_min * 60_000
            hold = telemetry.gateway if self._held_until.get(telemetry.gateway, 0) > now else ""
            for reading in telemetry.readings:
                if reading.quality is Quality.BAD or reading.value is None:
                    continue
                seen = self._last_seen.get(reading.sensor, 0)
                self._last_seen[reading.sensor] = max(seen, telemetry.ts)
                order = (telemetry.ts, telemetry.seq)
                if order <= self._evaluated.get(reading.sensor, (-1, -1)):
                    # A reading already evaluated (a message the gateway sends again until
                    # the collector acknowledges it) or older than one that was (a backlog
                    # arriving behind live data): rules follow each sensor in time order, and
                    # the past is not replayed over the present.
                    continue
                self._evaluated[reading.sensor] = order
                for rule in self._by_sensor.get(reading.sensor, ()):
                    self._evaluate(rule, reading.sensor, reading.value, reading.unit,
                                   telemetry.ts, now, notify=fresh, hold=hold)
            self._resolve_no_data(now)

    def on_status(self, status: Status) -> None:
        """Track a gateway's online/offline state (retained birth and last will)."""
        if status.site != self.config.site:
            return
        with self._lock:
            now = self._now()
            lost = status.uplink_lost_ts
            if status.state == "online" and lost is not None \
                    and lost != self._lost_seen.get(status.gateway) \
                    and status.gateway in self.config.edge_gateways:
                # An edge gateway back from an outage: give its edge alerting the time to
                # report what it sent meanwhile before anything of it pages from here.
                self._lost_seen[status.gateway] = lost
                self._held_until[status.gateway] = now + int(self.config.edge_handover_s * 1000)
                log.info("gateway %s is back from an outage: handover for %g s",
                         status.gateway, self.config.edge_handover_s)
            if status.state == "offline":
                self._offline_since.setdefault(status.gateway, now)
            else:
                self._offline_since.pop(status.gateway, None)
                for rule in self.config.rules:
                    if isinstance(rule, NoDataRule) and rule.gateway == status.gateway:
                        self._clear((rule.id, status.gateway), now, None)
                self._check_certificate(status, now)
            self.tick()

    def _check_certificate(self, status: Status, now: int) -> None:
        """A gateway's TLS client certificate ending within `CERTIFICATE_WARNING_DAYS`: one
        alert, told once (no repeats: it is a chore, not an emergency), resolved when a birth
        reports a renewed certificate (docs/pki.md)."""
        if status.cert_expires_ts is None:
            return
        key = (CERTIFICATE_RULE, status.gateway)
        if status.cert_expires_ts - now > CERTIFICATE_WARNING_DAYS * 86_400_000:
            self._clear(key, now, None)
            return
        if key in self._open:
            return
        day = datetime.fromtimestamp(status.cert_expires_ts / 1000,
                                     tz=ZoneInfo(self.config.timezone))
        defaults = self.config.defaults
        alert = self._new(
            rule_id=CERTIFICATE_RULE, subject=status.gateway, equipment=status.gateway,
            name=f"certificat de la passerelle {status.gateway} expire le {day:%d/%m/%Y}",
            severity="warning", since_ms=now, value=None, unit="", source=CERTIFICATE_RULE,
            notify=Notify(contacts=defaults.contacts, repeat_every_min=0,
                          escalate_after_min=defaults.escalate_after_min),
            message="[DYNAMO] {severity} n°{id} – {name} : à renouveler (dynamo pki issue "
                    f"{status.gateway}, docs/pki.md). Répondez OK {{id}} pour acquitter.")
        self._fire(alert, now, notify=True)

    def tick(self) -> None:
        """Time-driven work: silences, repeats, escalation, late notifications, summaries."""
        with self._lock:
            now = self._now()
            self._check_no_data(now)
            for alert in list(self._open.values()):
                if alert.state is State.FIRING and not self._silenced(alert, now) \
                        and not self._held(alert, now):
                    self._follow_up(alert, now)
            self._send_summaries(now)

    def on_sms(self, *, phone: str, text: str) -> Alert | None:
        """An inbound SMS: "OK 42" acknowledges alert 42, a bare "OK" the sender's latest."""
        with self._lock:
            now = self._now()
            contact = self.config.contact_by_phone(phone)
            match = _ACK.match(text)
            if contact is None or match is None:
                reason = "unknown number" if contact is None else "not an acknowledgement"
                self.store.record_ack(alert_id=None, at_ms=now, phone=phone,
                                      contact=contact.id if contact else None, text=text,
                                      accepted=False, reason=reason)
                log.info("SMS from %s ignored: %s", phone, reason)
                return None
            alert = self._ack_target(contact.id, int(match.group(1)) if match.group(1) else None)
            if alert is None:
                self.store.record_ack(alert_id=int(match.group(1) or 0) or None, at_ms=now,
                                      phone=phone, contact=contact.id, text=text,
                                      accepted=False, reason="no such open alert")
                return None
            return self.acknowledge(alert_id=alert.id, by=contact.id, phone=phone, text=text)

    def acknowledge(self, *, alert_id: int, by: str, phone: str = "", text: str = "",
                    via: str = "sms", name: str | None = None) -> Alert | None:
        """Stop repeats and escalation of a firing alert; tells everyone already told.

        `via`: how it came (`sms`, or `console`/`api` for a command from the broker); `name`:
        who, in the SMS to the others (default: the contact's name, else `by`).
        """
        with self._lock:
            now = self._now()
            alert = next((a for a in self._open.values() if a.id == alert_id), None)
            if alert is None or alert.state is not State.FIRING:
                self.store.record_ack(alert_id=alert_id, at_ms=now, phone=phone, contact=by,
                                      text=text, accepted=False, reason="not firing", via=via)
                return None
            if alert.acked_ms is not None:
                self.store.record_ack(alert_id=alert_id, at_ms=now, phone=phone, contact=by,
                                      text=text, accepted=False, reason="already acknowledged",
                                      via=via)
                return alert
            alert.acked_ms, alert.acked_by, alert.acked_via = now, by, via
            self.store.save(alert)
            self.store.record_ack(alert_id=alert_id, at_ms=now, phone=phone, contact=by,
                                  text=text, accepted=True, reason="", via=via)
            self._emit(alert, "acknowledged", now, by)
            known = {c.id: c.name for c in self.config.contacts}
            name = name or known.get(by, by)  # an operator's name, or whoever the api says
            for contact_id in alert.told():
                self._send(alert, contact_id, "ack", now, by=name)
            return alert

    def silence(self, *, equipment: str, until_ms: int, reason: str, by: str,
                via: str = "cli") -> int:
        """Maintenance: no SMS for this equipment until `until_ms` (alerts are still recorded)."""
        with self._lock:
            return self.store.add_silence(site=self.config.site, equipment=equipment,
                                          start_ms=self._now(), until_ms=until_ms,
                                          reason=reason, created_by=by, via=via)

    def external(self, *, key: str, firing: bool, name: str, equipment: str, severity: str,
                 notify: Notify, value: float | None = None,
                 source: str = "grafana") -> Alert | None:
        """An alert decided elsewhere (Grafana): same notifications, repeats and acks."""
        with self._lock:
            now = self._now()
            if firing:
                alert = self._open.get((source, key))
                if alert is None:
                    alert = self._new(rule_id=source, subject=key, equipment=equipment, name=name,
                                      severity=severity, notify=notify, since_ms=now, value=value,
                                      unit="", source=source)
                    self._fire(alert, now, notify=True)
                return alert
            return self._clear((source, key), now, value)

    def on_edge_event(self, *, gateway: str, rule_id: str, subject: str, event: str,
                      at_ms: int, by: str = "") -> Alert | None:
        """A gateway reports an alert it handled locally while its uplink was down: adopt it.

        `fired`: the alert is taken as already announced (no SMS from here, its repeat and
        escalation schedules continue); `acknowledged`: acked; `resolved`: closed without SMS.
        """
        with self._lock:
            now = self._now()
            rule = self._rules.get(rule_id)
            key = (rule_id, subject)
            alert = self._open.get(key)
            if event == "fired" and rule is not None:
                if alert is None:
                    alert = self._new(rule_id=rule.id, subject=subject, equipment=rule.equipment,
                                      name=rule.name, severity=rule.severity,
                                      notify=self.config.notify_of(rule), since_ms=at_ms,
                                      value=None, unit="", message=rule.message)
                if alert.state is State.PENDING:
                    alert.state, alert.fired_ms = State.FIRING, at_ms
                    self._emit(alert, "fired", now, f"edge:{gateway}")
                if alert.notified_ms is None or at_ms < alert.notified_ms:
                    alert.notified_ms = at_ms
                    alert.last_sent_ms = max(alert.last_sent_ms or 0, at_ms)
                alert.level = max(alert.level, 0)
                alert.extra["edge"] = gateway
                self.store.save(alert)
            elif alert is not None and alert.state is State.FIRING and event == "acknowledged" \
                    and alert.acked_ms is None:
                # The edge is acknowledged only by replies to the Pi's modem.
                alert.acked_ms, alert.acked_by, alert.acked_via = \
                    at_ms, by or f"edge:{gateway}", "sms"
                self.store.save(alert)
                self._emit(alert, "acknowledged", now, alert.acked_by)
            elif alert is not None and event == "resolved":
                self._open.pop(key, None)
                if alert.state is State.PENDING:
                    self.store.delete_pending(alert)
                    return None
                alert.state, alert.resolved_ms = State.RESOLVED, at_ms
                self.store.save(alert)
                self._emit(alert, "resolved", now, f"edge:{gateway}")
            return alert

    # -- evaluation -----------------------------------------------------------------------------

    def _evaluate(self, rule: _SensorRules, sensor: str, value: float, unit: str, ts: int,
                  now: int, *, notify: bool, hold: str = "") -> None:
        key = (rule.id, sensor)
        alert = self._open.get(key)
        if isinstance(rule, RateRule):
            active = self._rate_exceeded(rule, key, value, ts)
            clear = not active
            for_ms = 0
        elif isinstance(rule, StateRule):
            active = value == rule.value
            clear = not active
            for_ms = int(rule.for_min * 60_000)
        else:
            if rule.above is not None:
                active, clear = value > rule.above, value <= rule.clear
            else:
                below = rule.below if rule.below is not None else 0.0
                active, clear = value < below, value >= rule.clear
            for_ms = int(rule.for_min * 60_000)
        if alert is None:
            if not active:
                return
            info = self.config.sensors.get(sensor)
            where = info.location if info is not None else ""
            alert = self._new(rule_id=rule.id, subject=sensor, equipment=rule.equipment,
                              name=f"{rule.name} ({where})" if where else rule.name,
                              severity=rule.severity,
                              notify=self.config.notify_of(rule), since_ms=ts, value=value,
                              unit=unit, message=rule.message, advice=rule.advice)
        alert.value, alert.unit = value, unit
        if alert.state is State.PENDING:
            if not active:  # the condition went away before its minimum duration
                self._open.pop(key, None)
                self.store.delete_pending(alert)
            elif ts - alert.since_ms >= for_ms:
                self._fire(alert, now, notify=notify, hold=hold)
            else:
                self.store.save(alert)
        elif clear:
            self._clear(key, now, value)
        else:
            self.store.save(alert)  # the latest value, for the history and a restart's reminders

    def _rate_exceeded(self, rule: RateRule, key: tuple[str, str], value: float, ts: int) -> bool:
        window_ms = int(rule.window_min * 60_000)
        points = self._history.setdefault(key, deque(maxlen=10_000))
        points.append((ts, value))
        while points and points[0][0] < ts - window_ms:
            points.popleft()
        first_ts, first = points[0]
        # Needs half a window of data: two close noisy samples are not a trend.
        if ts - first_ts < window_ms / 2:
            return False
        per_min = (value - first) / ((ts - first_ts) / 60_000)
        return bool((rule.rise_per_min is not None and per_min >= rule.rise_per_min)
                    or (rule.fall_per_min is not None and -per_min >= rule.fall_per_min))

    def _check_no_data(self, now: int) -> None:
        for rule in self.config.rules:
            if not isinstance(rule, NoDataRule):
                continue
            after_ms = int(rule.after_min * 60_000)
            for subject in self.config.subjects(rule):
                if rule.gateway is not None:
                    since = self._offline_since.get(subject)
                else:
                    since = max(self._last_seen.get(subject, 0), self._started_ms)
                if since is None or now - since < after_ms or (rule.id, subject) in self._open:
                    continue
                alert = self._new(rule_id=rule.id, subject=subject, equipment=rule.equipment,
                                  name=rule.name, severity=rule.severity,
                                  notify=self.config.notify_of(rule), since_ms=since, value=None,
                                  unit="", message=rule.message)
                self._fire(alert, now, notify=True)

    def _resolve_no_data(self, now: int) -> None:
        for key, alert in list(self._open.items()):
            rule = self._rules.get(key[0])
            if (isinstance(rule, NoDataRule) and rule.gateway is None
                    and self._last_seen.get(key[1], 0) > alert.since_ms):
                self._clear(key, now, None)

    # -- transitions ----------------------------------------------------------------------------

    def _new(self, *, rule_id: str, subject: str, equipment: str, name: str, severity: str,
             notify: Notify, since_ms: int, value: float | None, unit: str,
             message: str | None = None, source: str = "rule",
             advice: Mapping[Language, str] | None = None) -> Alert:
        alert = Alert(rule_id=rule_id, subject=subject, site=self.config.site,
                      equipment=equipment, name=name, severity=severity,
                      contacts=notify.contacts, repeat_every_min=notify.repeat_every_min,
                      escalate_after_min=notify.escalate_after_min, since_ms=since_ms,
                      value=value, unit=unit, message=message, source=source)
        # Copied in like the notification policy, so that it outlives a rule edit.
        alert.extra.update({f"advice_{lang}": text for lang, text in (advice or {}).items()})
        self.store.save(alert)
        self._open[alert.key] = alert
        return alert

    def _fire(self, alert: Alert, now: int, *, notify: bool, hold: str = "") -> None:
        alert.state, alert.fired_ms = State.FIRING, now
        if not notify or not self._paging():
            # Known from replayed data only, or fired while the central engine is the one
            # paging (edge, uplink up): recorded as told so it is not announced late.
            alert.notified_ms = alert.last_sent_ms = now
            alert.level = len(alert.contacts) - 1
            alert.extra["replayed" if not notify else "central"] = "1"
            notify = False
        elif hold:
            alert.extra["held"] = hold  # announced when the handover ends, unless adopted
        self.store.save(alert)
        self._emit(alert, "fired", now)
        log.info("alert %s fired: %s on %s", alert.id, alert.rule_id, alert.subject)
        if notify and not hold and not self._silenced(alert, now):
            self._announce(alert, now)

    def _announce(self, alert: Alert, now: int) -> None:
        escalating = alert.escalate_after_min > 0
        alert.level = 0 if escalating else len(alert.contacts) - 1
        alert.notified_ms = alert.last_sent_ms = now
        self.store.save(alert)
        for contact_id in alert.told():
            self._send(alert, contact_id, "firing", now)

    def _follow_up(self, alert: Alert, now: int) -> None:
        if "central" in alert.extra:  # the central engine announced it and follows it up
            return
        if alert.notified_ms is None:  # fired during a silence that has ended since
            self._announce(alert, now)
            return
        if alert.acked_ms is not None:
            return
        escalate_ms = alert.escalate_after_min * 60_000
        if escalate_ms and alert.level < len(alert.contacts) - 1 and \
                now - alert.notified_ms >= escalate_ms * (alert.level + 1):
            alert.level += 1  # the repeat schedule is left alone: it is the first contact's
            self.store.save(alert)
            self._emit(alert, "escalated", now, alert.contacts[alert.level])
            self._send(alert, alert.contacts[alert.level], "escalation", now,
                       minutes=round((now - alert.notified_ms) / 60_000))
            return
        repeat_ms = alert.repeat_every_min * 60_000
        if repeat_ms and alert.last_sent_ms is not None and now - alert.last_sent_ms >= repeat_ms:
            alert.last_sent_ms = now
            self.store.save(alert)
            for contact_id in alert.told():
                self._send(alert, contact_id, "repeat", now)

    def _clear(self, key: tuple[str, str], now: int, value: float | None) -> Alert | None:
        alert = self._open.pop(key, None)
        if alert is None:
            return None
        if alert.state is State.PENDING:
            self.store.delete_pending(alert)
            return None
        alert.state, alert.resolved_ms = State.RESOLVED, now
        if value is not None:
            alert.value = value
        self.store.save(alert)
        self._emit(alert, "resolved", now)
        if alert.notified_ms is not None and "replayed" not in alert.extra \
                and "central" not in alert.extra and not self._silenced(alert, now):
            for contact_id in alert.told():
                self._send(alert, contact_id, "resolved", now)
        return alert

    def _paging(self) -> bool:
        return self._pages is None or self._pages()

    def _held(self, alert: Alert, now: int) -> bool:
        gateway = alert.extra.get("held")
        return gateway is not None and self._held_until.get(gateway, 0) > now

    def _silenced(self, alert: Alert, now: int) -> bool:
        return self.store.silence_at(site=alert.site, equipment=alert.equipment,
                                     at_ms=now) is not None

    def _ack_target(self, contact_id: str, alert_id: int | None) -> Alert | None:
        firing = [a for a in self._open.values() if a.state is State.FIRING]
        if alert_id is not None:
            return next((a for a in firing if a.id == alert_id), None)
        told = [a for a in firing if contact_id in a.told() and a.acked_ms is None]
        return max(told, key=lambda a: a.id, default=None)

    # -- sending --------------------------------------------------------------------------------

    def _send(self, alert: Alert, contact_id: str, kind: str, now: int, *, by: str = "",
              minutes: int = 0) -> None:
        if not self._paging():
            return  # an edge engine whose uplink is up: the central engine tells them
        contact = self.config.contact(contact_id)
        fields = MessageFields(id=alert.id, name=alert.name,
                               equipment=self.config.equipment_names.get(alert.equipment,
                                                                         alert.equipment),
                               value=alert.value, unit=alert.unit,
                               at_ms=now, severity=alert.severity, minutes=minutes, by=by,
                               advice=alert.extra.get(f"advice_{contact.language}", ""))
        text = render(kind=kind, language=contact.language, fields=fields,
                      timezone=self.config.timezone, template=alert.message)
        self._deliver(alert.id, contact_id, contact.phone, kind, text, now)

    def _deliver(self, alert_id: int | None, contact_id: str, phone: str, kind: str, text: str,
                 now: int) -> None:
        limit = self.config.rate_limit
        if kind != "summary" and self.store.count_attempts(
                phone=phone, since_ms=now - int(limit.per_min * 60_000)) >= limit.max_sms:
            self.store.record_notification(alert_id=alert_id, at_ms=now, contact=contact_id,
                                           phone=phone, kind=kind, text=text, notifier="",
                                           result="rate_limited", detail="")
            return
        delivery = self.notifier.deliver(to=phone, text=text)
        self.store.record_notification(alert_id=alert_id, at_ms=now, contact=contact_id,
                                       phone=phone, kind=kind, text=text,
                                       notifier=delivery.notifier,
                                       result="sent" if delivery.ok else "failed",
                                       detail=delivery.detail, reference=delivery.reference)

    def _send_summaries(self, now: int) -> None:
        if not self._paging():
            return
        limit = self.config.rate_limit
        for phone in self.store.phones_with_suppressed():
            suppressed = self.store.suppressed_since_summary(phone=phone)
            if not suppressed or self.store.count_attempts(
                    phone=phone, since_ms=now - int(limit.per_min * 60_000)) >= limit.max_sms:
                continue
            contact = self.config.contact_by_phone(phone)
            language = contact.language if contact else "fr"
            fields = MessageFields(id=0, name="", equipment="", value=None, unit="", at_ms=now,
                                   severity="info", count=suppressed, max=limit.max_sms,
                                   per=round(limit.per_min))
            text = render(kind="summary", language=language, fields=fields,
                          timezone=self.config.timezone)
            self._deliver(None, contact.id if contact else "", phone, "summary", text, now)

    def _emit(self, alert: Alert, kind: str, now: int, detail: str = "") -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(AlertEvent(alert=alert, kind=kind, at_ms=now, detail=detail))
        except Exception:  # an annotation sink down must never stop alerting
            log.exception("alert event sink failed")
