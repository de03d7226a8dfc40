"""The central alerting warns 30 days before a gateway's client certificate expires (the
`cert_expires_ts` of its status), once, and closes the alert when a renewed certificate shows.

The engine in simulated time against a real SQLite store; the phone records the SMS it is
given (it stands in for the SMS network, not for the engine).
"""

from __future__ import annotations

from pathlib import Path

from alerting.engine import Engine
from alerting.notifier import FallbackNotifier
from alerting.rules import load_alert_config
from alerting.store import AlertStore
from telemetry.payload import Status

T0 = 1_790_000_000  # 2026-09-21 14:13:20 UTC, the engine's clock (s)
DAY_MS = 86_400_000
RULES = """site: ariege
contacts:
  - {id: astreinte, name: Astreinte, phone: "+33600000001"}
defaults: {contacts: [astreinte], repeat_every_min: 30, escalate_after_min: 0}
rules: []
"""


class Phone:
    name = "phone"

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, *, to: str, text: str) -> str:
        self.sent.append(text)
        return f"ref-{len(self.sent)}"


def test_certificate_expiry_is_announced_30_days_ahead_once(tmp_path: Path) -> None:
    (tmp_path / "alerts.yaml").write_text(RULES, encoding="utf-8")
    now = [float(T0)]
    phone = Phone()
    engine = Engine(config=load_alert_config(tmp_path / "alerts.yaml"),
                    store=AlertStore(tmp_path / "alerts.sqlite"),
                    notifier=FallbackNotifier(notifiers=[phone]), clock=lambda: now[0])
    # Expires 31 days after T0: 2026-10-22 14:13:20 UTC, 16:13 in Paris (CEST) -> 22/10/2026.
    expires_ms = T0 * 1000 + 31 * DAY_MS

    def birth(expiry_ms: int) -> None:
        engine.on_status(Status(site="ariege", gateway="dryer-gw", state="online",
                                ts=int(now[0] * 1000), cert_expires_ts=expiry_ms))

    birth(expires_ms)
    assert phone.sent == []  # 31 days ahead: not yet
    now[0] += DAY_MS / 1000 + 60  # 29 days 23:59 ahead
    birth(expires_ms)
    [text] = phone.sent
    assert text == ("[DYNAMO] Alerte n°1 – certificat de la passerelle dryer-gw expire le "
                    "22/10/2026 : à renouveler (dynamo pki issue dryer-gw, docs/pki.md). "
                    "Répondez OK 1 pour acquitter.")
    for _ in range(3):  # later statuses, hours later: no repeat of a chore
        now[0] += 3 * 3600
        birth(expires_ms)
        engine.tick()
    assert len(phone.sent) == 1
    # The gateway got its renewed certificate (397 days): the alert is closed.
    birth(int(now[0] * 1000) + 397 * DAY_MS)
    assert len(phone.sent) == 2 and phone.sent[1].startswith("[DYNAMO] Fin d'alerte n°1")
    assert engine.store.open_alerts() == []
