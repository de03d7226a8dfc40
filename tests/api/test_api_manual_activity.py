"""Manual activity data — fuel deliveries and the indexes of meters that are not connected — as
records through the api (real SQLite file and real PostgreSQL) and as emission lines of the
indicators, computed here by hand from the factors read in the shipped YAML file."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.accounting.factors import FactorTable
from api.accounting.manual import manual_emission_lines
from api.database import make_engine, migrate, sessions
from api.periods import explicit_period
from api.records import service
from api.records.validation import field_errors
from api.schemas import ManualActivityIn
from api.sites import SiteRegistry

REPO = Path(__file__).resolve().parents[2]
DRYER = "/sites/ariege/equipment/dryer"
MANUAL = f"{DRYER}/manual-activities"
# Ten days of March 2026 in Paris (UTC+1 throughout: the clocks change on 29 March).
PERIOD = {"start": "2026-03-01T00:00:00+01:00", "end": "2026-03-11T00:00:00+01:00"}
DELIVERY = {"kind": "fuel_delivery", "carrier": "fuel_oil", "quantity": 500,
            "delivered_at": "2026-03-04T09:30:00+01:00", "delivery_note": "BL-2026-0142"}


def _factor(carrier: str, part: str, unit: str, on: date) -> tuple[str, float]:
    """(id, value) of the carrier's default factor for `part` per `unit` valid on `on`, read
    straight from api/data/emission_factors.yaml."""
    data = yaml.safe_load((REPO / "api" / "data" / "emission_factors.yaml").read_text())
    for fid in data["defaults"][carrier][part]:
        for f in data["factors"]:
            if (f["id"] == fid and f["unit"] == f"kgCO2e/{unit}" and f["valid_from"] <= on
                    and (f.get("valid_to") is None or on < f["valid_to"])):
                return fid, float(f["value"])
    raise AssertionError(f"no {part} factor per {unit} for {carrier} on {on}")


def _lines(client: TestClient, word: str) -> list[dict[str, Any]]:
    response = client.get(f"{DRYER}/indicators", params=PERIOD)
    assert response.status_code == 200, response.text
    return [line for line in response.json()["ghg"]["lines"] if word in line["activity"]]


def test_deliveries_and_readings_become_emission_lines(client: TestClient) -> None:
    delivery = client.post(MANUAL, json=DELIVERY)
    assert delivery.status_code == 201, delivery.text
    assert delivery.json()["unit"] == "L"  # filled in from the carrier
    later = client.post(MANUAL, json={**DELIVERY, "delivered_at": "2026-03-15T10:00:00+01:00",
                                      "quantity": 300, "delivery_note": "BL-2026-0150"})
    assert later.status_code == 201, later.text
    readings = [
        # The tank's flow meter, read by hand: 1000 L on 24 Feb, 1200 L on 6 Mar.
        {"kind": "meter_reading", "carrier": "fuel_oil", "meter": "cuve-sechoir",
         "read_at": "2026-02-24T00:00:00+01:00", "index_value": 1000},
        {"kind": "meter_reading", "carrier": "fuel_oil", "meter": "cuve-sechoir",
         "read_at": "2026-03-06T00:00:00+01:00", "index_value": 1200},
        # A workshop's electricity meter, not connected: 5000 kWh on 1 Mar, 5400 on 11 Mar.
        {"kind": "meter_reading", "carrier": "electricity", "meter": "compteur-atelier",
         "read_at": "2026-03-01T00:00:00+01:00", "index_value": 5000},
        {"kind": "meter_reading", "carrier": "electricity", "meter": "compteur-atelier",
         "read_at": "2026-03-11T00:00:00+01:00", "index_value": 5400},
    ]
    ids = []
    for reading in readings:
        response = client.post(MANUAL, json=reading)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    fuel_id, fuel = _factor("fuel_oil", "combustion", "L", date(2026, 3, 1))
    power_id, power = _factor("electricity", "generation", "kWh", date(2026, 3, 1))
    response = client.get(f"{DRYER}/indicators", params=PERIOD)
    assert response.status_code == 200, response.text
    out = response.json()
    lines = [line for line in out["ghg"]["lines"] if "manual record" in line["activity"]]
    by_activity = {(line["activity"], line["factor_id"]): line for line in lines}
    # The delivery of 4 March counts whole (delivered = burnt); the one of 15 March is
    # outside the period: 500 L × the combustion factor per litre.
    delivered = by_activity[(f"fuel_oil delivery (manual record {delivery.json()['id']})",
                             fuel_id)]
    assert (delivered["quantity"], delivered["quantity_unit"], delivered["scope"]) == (
        500, "L", 1)
    assert delivered["co2e_kg"] == pytest.approx(500 * fuel, rel=1e-9)
    assert delivered["method"] == "manual_record"
    # The tank meter: 200 L between 24 Feb and 6 Mar (10 days), 5 of them in the period:
    # 200 × 5 / 10 = 100 L.
    metered = by_activity[(f"fuel_oil manual meter reading (manual record {ids[0]}, {ids[1]})",
                           fuel_id)]
    assert metered["quantity"] == pytest.approx(100, rel=1e-9)
    assert metered["co2e_kg"] == pytest.approx(100 * fuel, rel=1e-9)
    assert metered["method"] == "manual_record" and metered["scope"] == 1
    # Electricity by a manual index: 5400 − 5000 = 400 kWh, all in the period: scope 2.
    electric = by_activity[(f"electricity manual meter reading (manual record {ids[2]}, "
                            f"{ids[3]})", power_id)]
    assert electric["quantity"] == pytest.approx(400, rel=1e-9)
    assert electric["co2e_kg"] == pytest.approx(400 * power, rel=1e-9)
    assert electric["scope"] == 2 and electric["method"] == "manual_record"
    # Nothing else burns fuel in the period (no readings in InfluxDB): scope 1 is the two
    # manual fuel-oil lines, 600 L × the factor.
    assert out["ghg"]["scope1_co2e_kg"] == pytest.approx(600 * fuel, rel=1e-9)
    notes = "\n".join(out["notes"])
    assert (f"manual_record: fuel deliveries {delivery.json()['id']} (delivery notes "
            "BL-2026-0142) counted whole: delivered = burnt") in notes
    assert "meter cuve-sechoir: readings frame 50% of the period" in notes
    # A voided delivery leaves the figures.
    assert client.delete(f"{MANUAL}/{delivery.json()['id']}",
                         params={"reason": "bon saisi sur le mauvais séchoir"}).status_code == 204
    assert not _lines(client, "fuel_oil delivery")
    assert _lines(client, "fuel_oil manual meter reading")


def test_a_carrier_without_a_factor_is_reported_missing(database_url: str) -> None:
    # Every carrier of the shipped data has a default factor: a table without any stands for
    # a deployment whose factor file lacks one.
    engine = make_engine(database_url)
    migrate(engine)
    dryer = SiteRegistry.load(REPO / "firmware-config" / "sites").get("ariege", "dryer")
    assert dryer is not None
    period = explicit_period(start=datetime.fromisoformat(PERIOD["start"]),
                             end=datetime.fromisoformat(PERIOD["end"]))
    with sessions(engine)() as db:
        row = service.create(db, "manual_activities", {**DELIVERY, "carrier": "wood_chips",
                                                       "quantity": 2000},
                             equipment=dryer, actor="user:anne", via="console")
        assert row.unit == "kg"
        notes: list[str] = []
        lines = manual_emission_lines(db, FactorTable(factors=[], defaults={}),
                                      equipment=dryer, period=period,
                                      timezone="Europe/Paris", notes=notes)
        shipped = manual_emission_lines(db, FactorTable.load(), equipment=dryer,
                                        period=period, timezone="Europe/Paris", notes=[])
    engine.dispose()
    assert lines == []
    assert notes == [f"wood_chips delivery (manual record {row.id}): no default emission factor "
                     "for 'wood_chips'; not counted"]
    # With the shipped factors the same record is counted.
    assert [line.quantity for line in shipped if line.method == "manual_record"]


def test_a_meter_going_backwards_is_not_counted(client: TestClient) -> None:
    for at, index in (("2026-03-02T00:00:00+01:00", 800), ("2026-03-05T00:00:00+01:00", 700)):
        assert client.post(MANUAL, json={"kind": "meter_reading", "carrier": "fuel_oil",
                                         "meter": "cuve", "read_at": at,
                                         "index_value": index}).status_code == 201
    out = client.get(f"{DRYER}/indicators", params=PERIOD).json()
    assert not [line for line in out["ghg"]["lines"] if "manual" in line["activity"]]
    assert any("index went down" in note for note in out["notes"])


@pytest.mark.parametrize(("body", "expected"), [
    ({**DELIVERY, "quantity": -5}, {"quantity": "La quantité doit être positive ou nulle"}),
    ({**DELIVERY, "carrier": "electricity"},
     {"carrier": "Énergie impossible pour ce type de saisie : choisir parmi fuel_oil, propane, "
                 "wood_pellets, wood_chips"}),
    ({**DELIVERY, "unit": "kg"}, {"unit": "Unité impossible pour cette énergie : L"}),
    ({**DELIVERY, "delivery_note": None},
     {"delivery_note": "Champ obligatoire pour ce type de saisie"}),
    ({**DELIVERY, "delivered_at": "2026-03-04T09:30:00"},
     {"delivered_at": "La date doit préciser son fuseau horaire"}),
    ({**DELIVERY, "meter": "cuve"}, {"meter": "Ce champ ne concerne pas ce type de saisie"}),
    ({"kind": "meter_reading", "carrier": "fuel_oil", "meter": "cuve",
      "read_at": "2026-03-04T09:30:00+01:00"},
     {"index_value": "Champ obligatoire pour ce type de saisie"}),
])
def test_wrong_entries_get_a_french_message_on_their_field(
        body: dict[str, Any], expected: dict[str, str]) -> None:
    with pytest.raises(ValidationError) as caught:
        ManualActivityIn.model_validate(body)
    assert field_errors(caught.value, "fr") == expected


def test_the_api_refuses_them_with_the_field(client: TestClient) -> None:
    refused = client.post(MANUAL, json={**DELIVERY, "unit": "kg"})
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["detail"]
    assert error["loc"] == ["body", "unit"]
    assert error["msg"] == "fuel_oil is counted in L, not 'kg'"
    assert client.get(MANUAL).json() == []
