"""Alert sequences as data (tests/alerting/cases/*): replayed in simulated time, every
notification the engine records compared with the case's expectation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from alerting.engine import Engine
from alerting.notifier import FallbackNotifier
from alerting.rules import load_alert_config
from alerting.store import AlertStore
from telemetry.payload import Reading, Status, Telemetry

CASES = Path(__file__).parent / "cases"
T0 = 1_790_000_000.0


class Phone:
    """Stands in for the SMS network; the engine under test is real."""

    name = "phone"

    def send(self, *, to: str, text: str) -> str:
        return "ok"


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_case(case: str, tmp_path: Path) -> None:
    folder = CASES / case
    now = [T0]
    store = AlertStore(tmp_path / "alerts.sqlite")
    engine = Engine(config=load_alert_config(folder / "rules.yaml"), store=store,
                    notifier=FallbackNotifier(notifiers=[Phone()]), clock=lambda: now[0])
    steps: list[dict[str, Any]] = yaml.safe_load((folder / "steps.yaml").read_text())
    for seq, step in enumerate(steps):
        now[0] = T0 + step["at_min"] * 60
        if "read" in step:
            engine.on_telemetry(Telemetry(
                site="ariege", gateway="freezer-gw", equipment="freezer", device="d", seq=seq,
                ts=int(now[0] * 1000),
                readings=tuple(Reading(sensor=s, value=v) for s, v in step["read"].items())))
        elif "sms" in step:
            engine.on_sms(phone=step["sms"]["from"], text=step["sms"]["text"])
        elif "status" in step:
            engine.on_status(Status(site="ariege", gateway="freezer-gw", state=step["status"]))
        engine.tick()
    got = [{"at_min": round((n.at_ms / 1000 - T0) / 60, 3), "contact": n.contact,
            "kind": n.kind, "result": n.result} for n in store.notifications()]
    expected = yaml.safe_load((folder / "expected.yaml").read_text()) or []
    assert got == expected
