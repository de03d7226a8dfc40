"""Production records through the api, stored in a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.database import make_engine, migrate
from api.records.validation import field_errors
from api.schemas import BatchIn

DRYER = "/sites/ariege/equipment/dryer"
BATCH = {"product": "luzerne 2e coupe", "started_at": "2026-06-10T08:00:00+02:00",
         "ended_at": "2026-06-12T18:00:00+02:00", "mass_in_kg": 12000, "mass_out_kg": 7000,
         "moisture_in_pct": 50, "moisture_out_pct": 14}


def test_batches_round_trip_and_survive_a_restart(
        make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    campaign = client.post(f"{DRYER}/campaigns", json={
        "name": "2026", "started_at": "2026-05-01T00:00:00+02:00"})
    assert campaign.status_code == 201, campaign.text
    created = client.post(f"{DRYER}/batches", json={**BATCH, "campaign_id": campaign.json()["id"]})
    assert created.status_code == 201, created.text
    batch_id = created.json()["id"]
    # Stored in UTC, given back with its zone: the same instant.
    assert created.json()["started_at"] in ("2026-06-10T06:00:00Z", "2026-06-10T06:00:00+00:00")
    restarted = make_client()
    listed = restarted.get(f"{DRYER}/batches", params={"start": "2026-06-01T00:00:00Z",
                                                        "end": "2026-07-01T00:00:00Z"}).json()
    assert [b["id"] for b in listed] == [batch_id]
    assert listed[0]["moisture_in_pct"] == 50
    assert restarted.get(f"{DRYER}/batches", params={"start": "2026-07-01T00:00:00Z"}).json() == []
    # An edit names the version it started from.
    replaced = restarted.put(f"{DRYER}/batches/{batch_id}",
                             json={**BATCH, "mass_in_kg": 11000, "version": 1})
    assert replaced.status_code == 200 and replaced.json()["mass_in_kg"] == 11000
    assert replaced.json()["version"] == 2
    # A record belongs to its equipment: the freezer cannot see the dryer's batch.
    assert restarted.get(f"/sites/ariege/equipment/freezer/batches/{batch_id}").status_code == 404
    # DELETE voids: the record stays, with its reason, out of the lists (and of the figures:
    # test_api_records_audit.py).
    assert restarted.delete(f"{DRYER}/batches/{batch_id}").status_code == 204
    voided = restarted.get(f"{DRYER}/batches/{batch_id}")
    assert voided.status_code == 200, voided.text
    assert voided.json()["voided_at"] is not None
    assert voided.json()["void_reason"] == "voided through the api"
    assert restarted.get(f"{DRYER}/batches").json() == []
    assert [b["id"] for b in restarted.get(f"{DRYER}/batches",
                                           params={"include_voided": True}).json()] == [batch_id]


def test_invalid_records_are_refused_with_the_field(client: TestClient) -> None:
    cases = [
        ({**BATCH, "ended_at": "2026-06-09T00:00:00+02:00"}, "ended_at must be after"),
        ({**BATCH, "moisture_in_pct": 120}, "moisture_in_pct"),
        ({**BATCH, "moisture_out_pct": 60}, "cannot exceed"),
        ({**BATCH, "mass_in_kg": -1}, "mass_in_kg"),
        ({**BATCH, "mass_out_kg": 13000}, "mass_out_kg cannot exceed mass_in_kg"),
        ({**BATCH, "units": -1}, "units"),
        ({**BATCH, "started_at": "2026-06-10T08:00:00"}, "time zone"),
        ({**BATCH, "unknown": 1}, "unknown"),
        ({**BATCH, "campaign_id": 999}, "no campaigns record 999"),
    ]
    for body, expected in cases:
        response = client.post(f"{DRYER}/batches", json=body)
        assert response.status_code in (404, 422), (body, response.text)
        assert expected in response.text, (expected, response.text)
    assert client.get(f"{DRYER}/batches").json() == []
    assert client.post("/sites/ariege/equipment/nope/batches", json=BATCH).status_code == 404


def test_top_ups_lots_and_baselines(client: TestClient) -> None:
    freezer = "/sites/ariege/equipment/freezer"
    top_up = client.post(f"{freezer}/refrigerant-top-ups",
                         json={"refrigerant": "R290", "mass_kg": 0.4,
                               "at": "2026-03-29T02:30:00+01:00"})
    assert top_up.status_code == 201, top_up.text
    assert client.post(f"{freezer}/refrigerant-top-ups",
                       json={"refrigerant": "R290'; DROP", "mass_kg": 1,
                             "at": "2026-03-29T02:30:00+01:00"}).status_code == 422
    # A refrigerant must have a GWP (the table the scope-1 leak line multiplies by).
    unknown = client.post(f"{freezer}/refrigerant-top-ups",
                          json={"refrigerant": "R999", "mass_kg": 1,
                                "at": "2026-03-29T02:30:00+01:00"})
    assert unknown.status_code == 422 and "no GWP known for refrigerant 'R999'" in unknown.text
    assert client.post(f"{freezer}/refrigerant-top-ups",
                       json={"refrigerant": "R290", "mass_kg": 0,
                             "at": "2026-03-29T02:30:00+01:00"}).status_code == 422
    assert [t["mass_kg"] for t in client.get(f"{freezer}/refrigerant-top-ups").json()] == [0.4]
    baseline = {"name": "fuel-oil-dehydrator", "equipment_kind": "dryer",
                "output": "t_dry_matter", "activity_per_output": 400, "activity_unit": "L",
                "factor_id": "fuel-oil-combustion-l",
                "description": "industrial dehydration, 0.4 L fuel oil per kg dehydrated",
                "source": "docs/sources.md#baseline-lucerne-historical"}
    assert client.post("/baselines", json=baseline).status_code == 201
    assert client.post("/baselines", json=baseline).status_code == 409
    assert client.post("/baselines", json={**baseline, "name": "x",
                                           "factor_id": "nope"}).status_code == 422
    assert client.post("/baselines", json={**baseline, "name": "y",
                                           "activity_unit": "bananas"}).status_code == 422
    assert client.get("/baselines/fuel-oil-dehydrator").json()["activity_per_output"] == 400
    lot = {"material": "cardboard", "mass_kg": 500, "factor_id": "electricity-fr-mix-generation",
           "received_at": "2026-01-05T10:00:00+01:00"}
    refused = client.post("/sites/ariege/equipment/packaging/material-lots", json=lot)
    assert refused.status_code == 422 and "per kWh" in refused.text


def test_migrations_are_idempotent(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    migrate(engine)
    with engine.connect() as conn:
        tables = set(engine.dialect.get_table_names(conn))
    engine.dispose()
    assert {"batches", "campaigns", "material_lots", "refrigerant_top_ups", "baselines",
            "api_tokens", "alembic_version", "manual_activities", "record_audit"} <= tables


@pytest.mark.parametrize(("change", "expected"), [
    ({"moisture_in_pct": 120}, {"moisture_in_pct": "L'humidité doit être comprise entre 0 et "
                                                   "100 %"}),
    ({"moisture_out_pct": 60}, {"moisture_out_pct": "L'humidité de sortie doit être "
                                                     "inférieure ou égale à l'humidité d'entrée"}),
    ({"ended_at": "2026-06-09T00:00:00+02:00"}, {"ended_at": "La fin doit être postérieure au "
                                                             "début"}),
    ({"mass_in_kg": -1, "mass_out_kg": -2}, {"mass_in_kg": "La masse doit être positive ou nulle",
                                             "mass_out_kg": "La masse doit être positive ou "
                                                            "nulle"}),
    ({"mass_out_kg": 13000}, {"mass_out_kg": "La masse de sortie doit être inférieure ou égale "
                                             "à la masse d'entrée"}),
    ({"started_at": "2026-06-10T08:00:00"}, {"started_at": "La date doit préciser son fuseau "
                                                           "horaire"}),
    ({"units": -3, "product": ""}, {"product": "Champ obligatoire",
                                    "units": "Le nombre d'unités doit être positif ou nul"}),
])
def test_each_wrong_field_gets_its_french_message(change: dict[str, Any],
                                                  expected: dict[str, str]) -> None:
    with pytest.raises(ValidationError) as caught:
        BatchIn.model_validate({**BATCH, **change})
    assert field_errors(caught.value, "fr") == expected
    assert set(field_errors(caught.value, "en")) == set(expected)
