"""Stored hay: the shipped default rules (firmware-config/alerts/ariege.yaml) on a bale probe
that heats up, in simulated time through the real engine and store: each level of the scale
(40 / 60 / 80 °C) and the rise rate page the right people, after the rule's delay, with the
probe's location and what to do, in French, and in English for an English-speaking contact."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerting.engine import Engine
from alerting.notifier import FallbackNotifier
from alerting.rules import AlertConfig, RateRule, load_alert_config
from alerting.store import AlertStore
from telemetry.errors import ConfigError
from telemetry.payload import Reading, Telemetry

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "firmware-config" / "alerts" / "ariege.yaml"
# Wednesday 1 July 2026, 08:00 in Paris (UTC+2).
T0 = datetime(2026, 7, 1, 6, 0, tzinfo=UTC).timestamp()
STEP_MIN = 5
HOT = "dryer.forage_t3"  # travée 2, rang bas


class Phone:
    """Stands in for the SMS network; the engine under test is real."""

    name = "phone"

    def send(self, *, to: str, text: str) -> str:
        return "ok"


def _bale_c(minute: int) -> float:
    """The heating bale: 30 °C at the start, +1 °C every 30 min (48 °C a day). It passes
    40 °C at minute 300, 60 °C at 900, 80 °C at 1500."""
    return 30 + minute / 30


def _run(config: AlertConfig, tmp_path: Path, *, minutes: int) -> AlertStore:
    now = [T0]
    store = AlertStore(tmp_path / "alerts.sqlite")
    engine = Engine(config=config, store=store, notifier=FallbackNotifier(notifiers=[Phone()]),
                    clock=lambda: now[0])
    for seq, minute in enumerate(range(0, minutes + 1, STEP_MIN)):
        now[0] = T0 + minute * 60
        readings = [Reading(sensor=HOT, value=_bale_c(minute), unit="degC")]
        readings += [Reading(sensor=s, value=25.0, unit="degC")
                     for s in ("dryer.forage_t1", "dryer.forage_t2", "dryer.forage_t4")]
        engine.on_telemetry(Telemetry(site="ariege", gateway="dryer-gw", equipment="dryer",
                                      device="dryer-controller", seq=seq,
                                      ts=int(now[0] * 1000), readings=tuple(readings)))
        engine.tick()
    return store


def _firings(store: AlertStore) -> list[tuple[str, str, float, str]]:
    """(rule, contact, minute, text) of every first page of a stored-hay rule (the other
    probes of the site, silent here, have their own no-data rules)."""
    rules = {a.alert.id: a.alert.rule_id for a in store.history()}
    return [(rules[n.alert_id], n.contact, (n.at_ms / 1000 - T0) / 60, n.text)
            for n in store.notifications() if n.kind == "firing" and n.alert_id is not None
            and rules[n.alert_id].startswith("forage-")]


@pytest.fixture(scope="module")
def config() -> AlertConfig:
    return load_alert_config(RULES)


def test_each_level_pages_after_its_delay_with_what_to_do(config: AlertConfig,
                                                          tmp_path: Path) -> None:
    store = _run(config, tmp_path, minutes=1560)
    firings = _firings(store)
    # Only the heating probe alarms; its readings every 5 min.
    assert {a.alert.subject for a in store.history()
            if a.alert.rule_id.startswith("forage-")} == {HOT}
    when = {(rule, contact): minute for rule, contact, minute, _ in firings}
    # watch: first reading above 40 °C at minute 305 (40.17 °C), for_min 10 → 315
    # rate: 48 °C/day ≥ 5 °C/day once half the 1440-min window holds data → minute 720
    # danger: above 60 °C at 905, for_min 5 → 910, astreinte (escalation order)
    # fire: above 80 °C at 1505, for_min 1 → the next reading, 1510, everyone at once
    assert when == {
        ("forage-watch", "astreinte"): 315.0,
        ("forage-heating-fast", "astreinte"): 720.0,
        ("forage-danger", "astreinte"): 910.0,
        ("forage-fire", "astreinte"): 1510.0,
        ("forage-fire", "responsable"): 1510.0,
        ("forage-fire", "petr"): 1510.0,
    }
    texts = {rule: text for rule, contact, _, text in firings if contact == "astreinte"}
    [watch] = [a.alert.id for a in store.history() if a.alert.rule_id == "forage-watch"]
    # 315 min after 08:00 is 13:15; the bale then reads 30 + 315/30 = 40.5 °C.
    assert texts["forage-watch"] == (
        f"[DYNAMO] Alerte n°{watch} – Séchoir solaire de luzerne en grange : Foin stocké : "
        "échauffement (surveiller) (travée 2, rang bas). Valeur 40,5 °C le 01/07/2026 à 13:15. "
        "Mesurez la température 2 fois par jour. Aérez : n'entassez pas d'autres bottes "
        f"contre. Répondez OK {watch} pour acquitter.")
    danger = texts["forage-danger"]
    assert "ALERTE CRITIQUE" in danger and "(travée 2, rang bas)" in danger
    assert "dépilez avec prudence" in danger and "sans l'avis des pompiers (18)" in danger
    fire = texts["forage-fire"]
    assert "APPELEZ LE 18" in fire and "Valeur 80,3 °C" in fire  # 30 + 1510/30
    assert "Ne déplacez pas les bottes" in fire
    assert "chauffe vite" in texts["forage-heating-fast"]


def test_an_english_speaking_contact_reads_the_advice_in_english(config: AlertConfig,
                                                                 tmp_path: Path) -> None:
    contacts = tuple(c.model_copy(update={"language": "en"}) if c.id == "petr" else c
                     for c in config.contacts)
    store = _run(config.model_copy(update={"contacts": contacts}), tmp_path, minutes=1515)
    [text] = [t for rule, contact, _, t in _firings(store)
              if rule == "forage-fire" and contact == "petr"]
    assert text.startswith("[DYNAMO] CRITICAL ALERT #")
    assert "Call the fire brigade (18) now. Do not move the bales" in text


def test_a_sound_bale_warming_slowly_pages_no_one(config: AlertConfig, tmp_path: Path) -> None:
    now = [T0]
    store = AlertStore(tmp_path / "alerts.sqlite")
    engine = Engine(config=config, store=store, notifier=FallbackNotifier(notifiers=[Phone()]),
                    clock=lambda: now[0])
    # A first heat: 25 → 38 °C over four days (3.25 °C a day), every 30 min.
    for seq, minute in enumerate(range(0, 4 * 1440 + 1, 30)):
        now[0] = T0 + minute * 60
        engine.on_telemetry(Telemetry(
            site="ariege", gateway="dryer-gw", equipment="dryer", device="dryer-controller",
            seq=seq, ts=int(now[0] * 1000),
            readings=(Reading(sensor=HOT, value=25 + 13 * minute / (4 * 1440), unit="degC"),)))
        engine.tick()
    assert _firings(store) == []


def _one_rule(tmp_path: Path, rule: str) -> Path:
    file = tmp_path / "rules.yaml"
    file.write_text(f"""site: ariege
site_configs: [{REPO / "firmware-config" / "sites" / "ariege" / "dryer.yaml"}]
contacts: [{{id: astreinte, name: Astreinte, phone: "+33611223344"}}]
defaults: {{contacts: [astreinte]}}
rules:
  - {rule}
""", encoding="utf-8")
    return file


def test_a_rate_per_day_is_a_rate_per_minute(tmp_path: Path) -> None:
    config = load_alert_config(_one_rule(tmp_path, (
        "{id: hot, name: Chauffe, kind: rate, equipment: dryer, role: forage_temperature, "
        "rise_per_day: 7.2, window_min: 1440}")))
    [rule] = config.rules
    assert isinstance(rule, RateRule)
    assert rule.rise_per_min == pytest.approx(7.2 / 1440)  # 0.005 °C/min


@pytest.mark.parametrize(("rule", "error"), [
    ("{id: hot, name: Chauffe, kind: rate, equipment: dryer, role: forage_temperature, "
     "rise_per_day: 5, rise_per_min: 0.1}", "give `rise_per_min` or `rise_per_day`, not both"),
    ("{id: hot, name: Chauffe, kind: threshold, equipment: dryer, role: forage_temperature, "
     f"above: 40, clear: 38, advice: {{fr: '{'x' * 201}'}}}}", "advice fr: 1 to 200 characters"),
])
def test_bad_rate_or_advice_is_refused_at_its_line(tmp_path: Path, rule: str,
                                                   error: str) -> None:
    with pytest.raises(ConfigError, match=r"rules\.yaml:6:") as caught:
        load_alert_config(_one_rule(tmp_path, rule))
    assert error in str(caught.value)
