"""Alert rule files: the Ariège file loads, and mistakes are refused with file, line and path."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerting.rules import NoDataRule, ThresholdRule, load_alert_config
from telemetry.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
ARIEGE = REPO / "firmware-config" / "alerts" / "ariege.yaml"
SITES = REPO / "firmware-config" / "sites" / "ariege"

HEAD = f"""site: ariege
site_configs: [{SITES / 'freezer.yaml'}]
contacts:
  - {{id: astreinte, name: Astreinte, phone: "+33600000001"}}
defaults: {{contacts: [astreinte]}}
rules:
"""


def write(tmp_path: Path, rules: str, head: str = HEAD) -> Path:
    file = tmp_path / "alerts.yaml"
    file.write_text(head + rules, encoding="utf-8")
    return file


def test_ariege_rules_load_and_resolve_roles() -> None:
    config = load_alert_config(ARIEGE)
    by_id = {rule.id: rule for rule in config.rules}
    warm = by_id["freezer-cabinet-warm"]
    assert isinstance(warm, ThresholdRule) and warm.role == "cabinet_air_temp"
    assert config.subjects(warm) == ("freezer.cabinet_air_temp",)
    offline = by_id["freezer-gateway-offline"]
    assert isinstance(offline, NoDataRule) and config.subjects(offline) == ("freezer-gw",)
    assert config.equipment_names["freezer"] == "Cellule de surgélation"
    assert config.sensors["freezer.refrigerant_leak"].unit == "ppm"


@pytest.mark.parametrize(("rule", "path", "reason"), [
    ("  - {id: a, name: A, kind: threshold, equipment: freezer, sensor: freezer.nope,"
     " above: 1, clear: 0}\n", "rules[0].sensor", "unknown sensor"),
    ("  - {id: a, name: A, kind: threshold, equipment: freezer, sensor: freezer.door_open,"
     " above: 1, clear: 2}\n", "rules[0].threshold", "must be below"),
    ("  - {id: a, name: A, kind: threshold, equipment: freezer, role: door_opne,"
     " above: 1, clear: 0}\n", "rules[0].role", "unknown role"),
    ("  - {id: a, name: A, kind: state, equipment: freezer, sensor: freezer.door_open,"
     " for_min: 5, notify: {contacts: [nobody]}}\n", "rules[0].notify.contacts[0]",
     "unknown contact"),
    ("  - {id: a, name: A, kind: no_data, equipment: freezer, gateway: dryer-gw,"
     " after_min: 5}\n", "rules[0].gateway", "unknown gateway"),
    ("  - {id: a, name: A, kind: state, equipment: freezer, sensor: freezer.door_open,"
     " message: 'Porte {porte}'}\n", "rules[0].state.message", "unknown placeholder"),
    ("  - {id: a, name: A, kind: bogus, equipment: freezer}\n", "rules[0]", "kind"),
])
def test_bad_rule_is_refused_with_its_place(tmp_path: Path, rule: str, path: str,
                                            reason: str) -> None:
    file = write(tmp_path, rule)
    with pytest.raises(ConfigError) as caught:
        load_alert_config(file)
    issue = caught.value.issues[0]
    assert issue.file == str(file)
    assert issue.path == path
    assert reason in issue.message
    assert issue.line == 7  # the rule's own line in the file


def test_every_error_is_listed_at_once(tmp_path: Path) -> None:
    file = write(tmp_path, "  - {id: a, name: A, kind: state, equipment: fridge,"
                           " sensor: freezer.door_open}\n"
                           "  - {id: a, name: B, kind: no_data, equipment: freezer,"
                           " sensor: freezer.door_open, after_min: 3}\n")
    with pytest.raises(ConfigError) as caught:
        load_alert_config(file)
    messages = [f"{i.path}: {i.message}" for i in caught.value.issues]
    assert any(m.startswith("rules[0].equipment: unknown equipment 'fridge'") for m in messages)
    assert any(m.startswith("rules[1].id: rule a defined twice") for m in messages)


def test_bad_phone_number_and_timezone(tmp_path: Path) -> None:
    head = HEAD.replace('"+33600000001"', '"0600000001"').replace(
        "site: ariege", "site: ariege\ntimezone: Europe/Pariss")
    with pytest.raises(ConfigError) as caught:
        load_alert_config(write(tmp_path, "  []\n", head=head))
    paths = {i.path for i in caught.value.issues}
    assert {"contacts[0].phone", "timezone"} <= paths


def test_cli_check_lists_errors_with_their_place(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from dynamo.cli import main

    ok = CliRunner().invoke(main, ["alerts", "check", str(ARIEGE)])
    assert ok.exit_code == 0 and "OK (14 rules, 3 contacts)" in ok.output
    bad = write(tmp_path, "  - {id: a, name: A, kind: state, equipment: freezer,"
                          " sensor: freezer.door_opn}\n")
    refused = CliRunner().invoke(main, ["alerts", "check", str(bad)])
    assert refused.exit_code == 1
    assert f"{bad}:7: rules[0].sensor: unknown sensor 'freezer.door_opn'" in refused.output


def test_notifiers_are_validated(tmp_path: Path) -> None:
    head = HEAD.replace("rules:\n", "notifiers:\n"
                        "  - {type: gammu, smsd_config: missing/smsdrc}\n"
                        "  - {type: ovh, service_name: sms-1, application_key: a,"
                        " application_secret: b}\n"
                        "  - {type: free_mobile, user: u, password: p, phone: '0612'}\n"
                        "rules:\n")
    with pytest.raises(ConfigError) as caught:
        load_alert_config(write(tmp_path, "", head=head))
    found = {(i.path, i.line) for i in caught.value.issues}
    assert ("notifiers[1].ovh.consumer_key", 8) in found
    assert ("notifiers[2].free_mobile.phone", 9) in found
    ok_head = head.replace("  - {type: ovh, service_name: sms-1, application_key: a,"
                           " application_secret: b}\n", "").replace(
        "  - {type: free_mobile, user: u, password: p, phone: '0612'}\n", "")
    with pytest.raises(ConfigError) as caught:
        load_alert_config(write(tmp_path, "  []\n", head=ok_head))
    [issue] = caught.value.issues
    assert issue.path == "notifiers[0].smsd_config" and "no such file" in issue.message
