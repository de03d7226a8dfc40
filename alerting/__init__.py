"""SMS alerting: rules, the engine (pending → firing → resolved), notifiers, acknowledgement.

The engine is pure of transport: feed it `Telemetry`/`Status`, give it a `FallbackNotifier`
and an `AlertStore`, call `tick()` every second. HTTP providers live in `alerting.providers`
(extra `alerting`), the MQTT service in `alerting.service`, edge alerting on a gateway's Pi
(its local broker, its modem) in `alerting.edge`, Grafana's webhook in `alerting.grafana`.
"""

from alerting.alert import Alert, State
from alerting.engine import AlertEvent, Engine
from alerting.events import EventPayload, decode_event, encode_event
from alerting.gammu import GammuInbox, GammuNotifier, InboundSms, write_smsd_config
from alerting.notifier import Delivery, FallbackNotifier, Notifier, NotifierError
from alerting.rules import AlertConfig, load_alert_config
from alerting.store import AckRecord, AlertHistory, AlertStore, NotificationRecord, Silence

__all__ = [
    "AckRecord",
    "Alert",
    "AlertConfig",
    "AlertEvent",
    "AlertHistory",
    "AlertStore",
    "Delivery",
    "Engine",
    "EventPayload",
    "FallbackNotifier",
    "GammuInbox",
    "GammuNotifier",
    "InboundSms",
    "NotificationRecord",
    "Notifier",
    "NotifierError",
    "Silence",
    "State",
    "decode_event",
    "encode_event",
    "load_alert_config",
    "write_smsd_config",
]
