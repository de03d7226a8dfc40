"""Records you can trust, through the api on a real SQLite file and a real PostgreSQL: the audit
trail of every change, void instead of delete (and out of the figures), the version that
refuses a raced edit, the idempotency key, the history, the site scope, and the migration of a
database that already holds records."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.access.tokens import TokenRole
from api.database import MIGRATIONS, make_engine, migrate, sessions
from api.records import service
from api.records.kinds import KINDS, kinds_for
from api.records.tables import Batch
from api.schemas import BatchOut
from api.sites import SiteRegistry
from telemetry.site import EquipmentKind

REPO = Path(__file__).resolve().parents[2]
DRYER = "/sites/ariege/equipment/dryer"
FREEZER = "/sites/ariege/equipment/freezer"
BATCH = {"product": "luzerne 2e coupe", "started_at": "2026-06-10T08:00:00+02:00",
         "ended_at": "2026-06-12T18:00:00+02:00", "mass_in_kg": 12000, "mass_out_kg": 7000,
         "moisture_in_pct": 50, "moisture_out_pct": 14}
JUNE = {"start": "2026-06-01T00:00:00+02:00", "end": "2026-07-01T00:00:00+02:00"}


def test_every_change_is_audited_and_purge_keeps_the_trail(
        make_client: Callable[..., TestClient]) -> None:
    client = make_client()  # an admin token named "test admin"
    created = client.post(f"{DRYER}/batches", json=BATCH)
    assert created.status_code == 201, created.text
    batch = created.json()
    assert (batch["version"], batch["created_by"], batch["voided_at"]) == (
        1, "token:test admin", None)
    edited = client.put(f"{DRYER}/batches/{batch['id']}",
                        json={**BATCH, "mass_in_kg": 11000, "version": 1})
    assert edited.status_code == 200, edited.text
    assert (edited.json()["version"], edited.json()["updated_by"]) == (2, "token:test admin")
    voided = client.delete(f"{DRYER}/batches/{batch['id']}",
                           params={"reason": "saisi deux fois"})
    assert voided.status_code == 204, voided.text
    history = client.get(f"{DRYER}/batches/{batch['id']}/history").json()
    assert [(h["action"], h["actor"], h["via"]) for h in history] == [
        ("create", "token:test admin", "api"), ("edit", "token:test admin", "api"),
        ("void", "token:test admin", "api")]
    create, edit, void = history
    assert create["before"] is None and create["after"]["mass_in_kg"] == 12000
    assert (edit["before"]["mass_in_kg"], edit["after"]["mass_in_kg"]) == (12000, 11000)
    assert (edit["before"]["version"], edit["after"]["version"]) == (1, 2)
    assert edit["after"]["moisture_in_pct"] == 50  # the whole content, not only the change
    assert void["reason"] == "saisi deux fois"
    assert void["before"]["voided_at"] is None and void["after"]["voided_at"] is not None
    assert void["after"]["void_reason"] == "saisi deux fois"
    # Purge: admin only, audited; the record is gone, its trail stays.
    operator = make_client(role=TokenRole.OPERATOR)
    refused = operator.delete(f"{DRYER}/batches/{batch['id']}", params={"purge": True})
    assert refused.status_code == 403, refused.text
    assert client.delete(f"{DRYER}/batches/{batch['id']}",
                         params={"purge": True, "reason": "données de test"}).status_code == 204
    assert client.get(f"{DRYER}/batches/{batch['id']}").status_code == 404
    after = client.get(f"{DRYER}/batches/{batch['id']}/history").json()
    assert [h["action"] for h in after] == ["create", "edit", "void", "purge"]
    assert after[-1]["after"] is None and after[-1]["before"]["mass_in_kg"] == 11000
    assert after[-1]["reason"] == "données de test"
    # An operator's change names the operator's token.
    top_up = operator.post(f"{FREEZER}/refrigerant-top-ups", json={
        "refrigerant": "R290", "mass_kg": 0.4, "at": "2026-03-29T02:30:00+01:00",
        "intervention_ref": "FI-2026-031", "technician": "J. Martin"})
    assert top_up.status_code == 201, top_up.text
    [entry] = operator.get(f"{FREEZER}/refrigerant-top-ups/{top_up.json()['id']}/history").json()
    assert (entry["actor"], entry["after"]["technician"]) == ("token:test operator", "J. Martin")


def test_a_voided_record_stays_but_leaves_the_figures(client: TestClient) -> None:
    batch = client.post(f"{DRYER}/batches", json=BATCH).json()
    top_up = client.post(f"{FREEZER}/refrigerant-top-ups", json={
        "refrigerant": "R290", "mass_kg": 0.5, "at": "2026-06-15T10:00:00+02:00"}).json()
    dryer = client.get(f"{DRYER}/indicators", params=JUNE)
    assert dryer.status_code == 200, dryer.text
    # By hand: 12000 × (1 − (1 − 0.50) / (1 − 0.14)) = 12000 × (1 − 0.581395…) = 5023.26 kg.
    assert dryer.json()["dryer"]["batches"] == [batch["id"]]
    assert dryer.json()["dryer"]["water_evaporated_kg"] == pytest.approx(5023.26, abs=0.01)
    freezer = client.get(f"{FREEZER}/indicators", params=JUNE).json()
    leaks = [line for line in freezer["ghg"]["lines"] if line["activity"].startswith("refrig")]
    assert [line["quantity"] for line in leaks] == [0.5]
    assert client.delete(f"{DRYER}/batches/{batch['id']}").status_code == 204
    assert client.delete(f"{FREEZER}/refrigerant-top-ups/{top_up['id']}").status_code == 204
    dryer = client.get(f"{DRYER}/indicators", params=JUNE).json()
    assert dryer["dryer"]["batches"] == [] and dryer["dryer"]["water_evaporated_kg"] is None
    freezer = client.get(f"{FREEZER}/indicators", params=JUNE).json()
    assert not [line for line in freezer["ghg"]["lines"] if line["activity"].startswith("refrig")]
    # Its own figures are gone too; the record itself is still there, voided.
    assert client.get(f"{DRYER}/batches/{batch['id']}/indicators").status_code == 404
    kept = client.get(f"{DRYER}/batches/{batch['id']}").json()
    assert kept["void_reason"] == "voided through the api"
    assert client.get(f"{FREEZER}/refrigerant-top-ups").json() == []
    listed = client.get(f"{FREEZER}/refrigerant-top-ups", params={"include_voided": True})
    assert [t["id"] for t in listed.json()] == [top_up["id"]]
    # A voided record is not edited any more.
    refused = client.put(f"{DRYER}/batches/{batch['id']}",
                         json={**BATCH, "version": kept["version"]})
    assert refused.status_code == 422 and "voided" in refused.text


def test_a_raced_edit_is_refused_and_overwrites_nothing(client: TestClient) -> None:
    batch = client.post(f"{DRYER}/batches", json=BATCH).json()
    url = f"{DRYER}/batches/{batch['id']}"
    # Two people opened version 1; the first saves, the second is refused.
    first = client.put(url, json={**BATCH, "mass_out_kg": 6900, "version": 1})
    assert first.status_code == 200, first.text
    second = client.put(url, json={**BATCH, "mass_out_kg": 7100, "version": 1})
    assert second.status_code == 409, second.text
    assert second.json()["detail"]["current_version"] == 2
    assert "modified in the meantime" in second.json()["detail"]["message"]
    assert client.get(url).json()["mass_out_kg"] == 6900
    # The version may come in an If-Match header; without any, the edit is refused.
    by_header = client.put(url, json={**BATCH, "mass_out_kg": 7100}, headers={"If-Match": '"2"'})
    assert by_header.status_code == 200 and by_header.json()["version"] == 3
    assert client.put(url, json={**BATCH, "mass_out_kg": 7200}).status_code == 428
    # An edit is checked like a creation, and a refused one changes nothing.
    wrong = client.put(url, json={**BATCH, "moisture_out_pct": 60, "version": 3})
    assert wrong.status_code == 422 and "cannot exceed" in wrong.text
    assert [h["action"] for h in client.get(f"{url}/history").json()] == [
        "create", "edit", "edit"]


def test_an_idempotency_key_creates_one_record(client: TestClient) -> None:
    key = {"Idempotency-Key": "form-7f3a9c"}
    first = client.post(f"{DRYER}/batches", json=BATCH, headers=key)
    again = client.post(f"{DRYER}/batches", json=BATCH, headers=key)
    assert first.status_code == 201 and again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]
    other = client.post(f"{DRYER}/batches", json=BATCH, headers={"Idempotency-Key": "form-2"})
    assert other.json()["id"] != first.json()["id"]
    assert len(client.get(f"{DRYER}/batches").json()) == 2
    assert [h["action"] for h in client.get(
        f"{DRYER}/batches/{first.json()['id']}/history").json()] == ["create"]
    # The key belongs to the site and the kind: a campaign may use it too.
    campaign = client.post(f"{DRYER}/campaigns", headers=key,
                           json={"name": "2026", "started_at": "2026-05-01T00:00:00+02:00"})
    assert campaign.status_code == 201, campaign.text


@pytest.fixture
def two_sites(tmp_path: Path) -> Path:
    """The demonstrator's site configurations, and a copy of them as a second site."""
    root = tmp_path / "sites"
    for site in ("ariege", "bearn"):
        (root / site).mkdir(parents=True)
        for file in (REPO / "firmware-config" / "sites" / "ariege").glob("*.yaml"):
            content = file.read_text().replace(
                "template_dirs: [../../templates]",
                f"template_dirs: [{REPO / 'firmware-config' / 'templates'}]")
            (root / site / file.name).write_text(content.replace("site: ariege",
                                                                 f"site: {site}"))
    return root


def test_a_token_of_one_site_never_reaches_another(
        make_client: Callable[..., TestClient], two_sites: Path) -> None:
    admin = make_client(site_configs=two_sites)
    theirs = admin.post("/sites/bearn/equipment/dryer/batches", json=BATCH)
    assert theirs.status_code == 201, theirs.text
    url = f"/sites/bearn/equipment/dryer/batches/{theirs.json()['id']}"
    ours = make_client(role=TokenRole.OPERATOR, site="ariege", site_configs=two_sites)
    assert ours.post(f"{DRYER}/batches", json=BATCH).status_code == 201
    for response in (ours.get(url), ours.get(f"{url}/history"), ours.delete(url),
                     ours.put(url, json={**BATCH, "version": 1}),
                     ours.get("/sites/bearn/equipment/dryer/batches"),
                     ours.post("/sites/bearn/equipment/dryer/batches", json=BATCH)):
        assert response.status_code == 404, (response.request.url, response.text)
    assert admin.get(url).json()["voided_at"] is None  # the DELETE above did nothing
    # Even the same record id under our own site is not theirs.
    assert ours.get(f"{DRYER}/batches/{theirs.json()['id']}").status_code == 404
    # An operator writes production records, not baselines.
    assert ours.post("/baselines", json={}).status_code == 403


def test_the_migration_keeps_records_stored_before_it(database_url: str) -> None:
    engine = make_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO campaigns (id, site, equipment, name, started_at, notes) "
            "VALUES (1, 'ariege', 'dryer', '2025', '2025-05-01 00:00:00', '')"))
        connection.execute(text(
            "INSERT INTO batches (id, site, equipment, campaign_id, product, started_at, "
            "ended_at, notes) VALUES (1, 'ariege', 'dryer', 1, 'luzerne', "
            "'2025-06-01 06:00:00', '2025-06-02 06:00:00', '')"))
    migrate(engine)
    with engine.connect() as connection:
        row = connection.execute(text(
            "SELECT campaign_id, version, created_by, voided_at FROM batches")).one()
        top_ups = connection.execute(text(
            "SELECT count(*) FROM refrigerant_top_ups WHERE technician = ''")).scalar()
    with sessions(engine)() as db:
        # Read back through the api's own model: the stamp the migration gave is a time.
        stored = BatchOut.model_validate(db.get(Batch, 1), from_attributes=True)
    engine.dispose()
    assert stored.created_at.tzinfo is not None and stored.created_by == "before-audit"
    # The batch keeps its campaign (no table was rebuilt), at version 1, live.
    assert tuple(row) == (1, 1, "before-audit", None)
    assert top_ups == 0


def test_the_kinds_describe_every_field_of_their_records() -> None:
    for kind in KINDS.values():
        assert [f.name for f in kind.fields] == list(kind.input.model_fields), kind.name
        assert set(kind.input.model_fields) <= set(kind.output.model_fields)
        assert all(f.fr and f.en for f in kind.fields), kind.name
        assert all(f.choices or f.ref for f in kind.fields if f.input == "select"), kind.name
    assert [k.slug for k in kinds_for("freezer")] == [
        "campaigns", "batches", "refrigerant-top-ups", "manual-activities"]
    assert "baselines" not in [k.name for k in kinds_for("dryer")]
    # A dryer batch shows masses and moistures; a packaging run units and its material lot.
    batches = KINDS["batches"]
    dryer = {f.name for f in batches.fields_for(EquipmentKind.DRYER)}
    assert {"mass_in_kg", "moisture_out_pct"} <= dryer and "units" not in dryer
    packaging = {f.name for f in batches.fields_for(EquipmentKind.PACKAGING)}
    assert {"units", "material_lot_id"} <= packaging and "moisture_in_pct" not in packaging


def test_two_sessions_editing_one_version_cannot_both_win(database_url: str) -> None:
    """The guard below the version check: both sessions read version 1 before either writes
    (two console pages saved at the same instant); the UPDATE of the second matches no row."""
    engine = make_engine(database_url)
    migrate(engine)
    makers = sessions(engine)
    registry = SiteRegistry.load(REPO / "firmware-config" / "sites")
    dryer = registry.get("ariege", "dryer")
    assert dryer is not None
    with makers() as db:
        row = service.create(db, "batches", BATCH, equipment=dryer, actor="user:anne",
                             via="console", idempotency_key=None)
        record_id = row.id
    with makers() as first, makers() as second:
        # Both load the record at version 1 before either writes.
        assert service.get(first, "batches", record_id, equipment=dryer).version == 1
        assert service.get(second, "batches", record_id, equipment=dryer).version == 1
        service.edit(first, "batches", record_id, {**BATCH, "mass_out_kg": 6900},
                     equipment=dryer, expected_version=1, actor="user:anne", via="console")
        with pytest.raises(service.VersionConflict) as caught:
            service.edit(second, "batches", record_id, {**BATCH, "mass_out_kg": 7100},
                         equipment=dryer, expected_version=1, actor="user:bruno",
                         via="console")
        assert caught.value.current_version == 2 and caught.value.by == "user:anne"
    with makers() as db:
        assert service.get(db, "batches", record_id, equipment=dryer).mass_out_kg == 6900
        assert [(e.action, e.actor) for e in service.history(db, "batches", record_id)] == [
            ("create", "user:anne"), ("edit", "user:anne")]
        assert service.history(db, "batches", record_id)[1].changes() == [
            ("mass_out_kg", 7000, 6900), ("version", 1, 2)]
        # Saving the same content again (a form sent twice) makes no new version.
        same = service.edit(db, "batches", record_id, {**BATCH, "mass_out_kg": 6900},
                            equipment=dryer, expected_version=2, actor="user:anne",
                            via="console")
        assert same.version == 2 and len(service.history(db, "batches", record_id)) == 2
    engine.dispose()
