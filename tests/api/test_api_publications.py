"""Published reports against the real influxd, SQLite and headless Chromium.

One local day (Tuesday 9 June 2026, Paris) of known readings and records is published; then
three things change, each on one machine — late readings of the freezer's meter, an audited
edit of the dryer's batch, a new version of the packaging's cardboard factor in the user's
factor file — and the verification must name exactly those three causes, each with the
figures of its own machine that moved, by the amounts worked out by hand below. With no change
it finds none; publishing twice gives the same manifest; a correction supersedes; nothing
changes a publication; roles and sites are checked; a record a publication rests on cannot be
purged; the command line does the same (`dynamo report publish|verify|list`), a verification
in another process (another hash seed) finding the same figures to the last bit.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from api.access.tokens import TokenRole
from api.settings import ApiSettings
from api.sites import SiteRegistry
from dynamo.cli import main
from telemetry.influx.client import InfluxClient
from telemetry.influx.lineprotocol import line

REPO = Path(__file__).resolve().parents[2]
SITE = "ariege"
DAY = {"period": "day", "date": "2026-06-09"}
START = datetime(2026, 6, 8, 22, 0, tzinfo=UTC)  # local midnight, Paris summer time
NOON = START + timedelta(hours=12)
END = START + timedelta(days=1)
STEP = timedelta(minutes=10)
DRYER = f"/sites/{SITE}/equipment/dryer"
PACKAGING = f"/sites/{SITE}/equipment/packaging"
REPORTS = f"/sites/{SITE}/reports"

pytestmark = pytest.mark.skipif(shutil.which("chromium") is None,
                                reason="needs Debian's chromium (scripts/bootstrap installs it)")

# kWh (or kg, units) counted per hour, evenly: the counters' values are rate × hours since
# local midnight.
RATES = {
    ("dryer", "dryer.grid_import"): 2.0,
    ("dryer", "dryer.electric"): 3.0,
    ("freezer", "freezer.electric"): 2.0,
    ("packaging", "packaging.electric"): 1.0,
    ("packaging", "packaging.units_packed"): 100.0,
    ("packaging", "packaging.cardboard"): 5.0,
}
CARDBOARD_V1 = """\
factors:
  - {id: cardboard-case, version: "1", value: 0.9, unit: kgCO2e/kg, scope: 3,
     source: "test: a supplier's declaration", valid_from: 2026-01-01}
"""
CARDBOARD_V2 = """\
  - {id: cardboard-case, version: "2", value: 1.1, unit: kgCO2e/kg, scope: 3,
     source: "test: the supplier's corrected declaration", valid_from: 2026-06-01}
"""


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    # The relational layer is tested on both databases elsewhere; publishing needs one.
    return f"sqlite:///{tmp_path / 'publications.sqlite3'}"


def _write(influx: InfluxClient, sensors: dict[tuple[str, str], float], start: datetime,
           end: datetime) -> None:
    """Readings every 10 minutes of `[start, end]` (both included)."""
    registry = SiteRegistry.load(REPO / "firmware-config" / "sites")
    lines = []
    for (equipment, sensor_id), rate in sensors.items():
        eq = registry.get(SITE, equipment)
        assert eq is not None
        sensor = next(s for s in eq.sensors if s.id == sensor_id)
        tags = {"site": SITE, "gateway": eq.gateway, "equipment": equipment,
                "device": sensor.device, "sensor": sensor.id, "unit": sensor.unit,
                "quality": "good"}
        at = start
        while at <= end:
            hours = (at - START) / timedelta(hours=1)
            lines.append(line("readings", tags, {"value": rate * hours},
                              int(at.timestamp() * 1000)))
            at += STEP
    influx.write(lines)


@pytest.fixture
def factor_file(tmp_path: Path) -> Path:
    file = tmp_path / "factors.yaml"
    file.write_text(CARDBOARD_V1, encoding="utf-8")
    return file


@pytest.fixture
def admin(influx: InfluxClient, make_client: Callable[..., TestClient],
          factor_file: Path) -> TestClient:
    """An admin on an api whose influxd holds the day (the freezer's meter only up to noon:
    the rest arrives late) and whose database holds a dryer batch and a cardboard lot."""
    client = make_client(api_factor_files=(factor_file,))
    _write(influx, {k: v for k, v in RATES.items() if k[0] != "freezer"}, START, END)
    _write(influx, {("freezer", "freezer.electric"): RATES[("freezer", "freezer.electric")]},
           START, NOON)
    for route, body in (
            (f"{DRYER}/batches", {"product": "luzerne", "started_at": "2026-06-09T06:00:00+02:00",
                                  "ended_at": "2026-06-09T18:00:00+02:00", "mass_in_kg": 1000,
                                  "moisture_in_pct": 50, "moisture_out_pct": 15}),
            (f"{PACKAGING}/material-lots", {"material": "cardboard", "mass_kg": 1000,
                                            "factor_id": "cardboard-case",
                                            "received_at": "2026-06-01T09:00:00+02:00"})):
        response = client.post(route, json=body)
        assert response.status_code == 201, response.text
    return client


def _publish(client: TestClient, **extra: Any) -> dict[str, Any]:
    response = client.post(REPORTS, json={**DAY, **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _causes(verification: dict[str, Any]) -> dict[str, dict[str, Any]]:
    by_kind: dict[str, dict[str, Any]] = {}
    for cause in verification["causes"]:
        assert cause["kind"] not in by_kind, json.dumps(verification["causes"], indent=1)
        by_kind[cause["kind"]] = cause
    return by_kind


def _change_three_inputs(influx: InfluxClient, admin: TestClient, factor_file: Path) -> None:
    """Late readings (the freezer's afternoon), an audited batch edit (1000 → 1250 kg in),
    a new version of the cardboard factor (0.9 → 1.1 kgCO2e/kg, from 1 June)."""
    _write(influx, {("freezer", "freezer.electric"): RATES[("freezer", "freezer.electric")]},
           NOON + STEP, END)
    edited = admin.put(f"{DRYER}/batches/1", json={
        "product": "luzerne", "started_at": "2026-06-09T06:00:00+02:00",
        "ended_at": "2026-06-09T18:00:00+02:00", "mass_in_kg": 1250, "moisture_in_pct": 50,
        "moisture_out_pct": 15, "version": 1})
    assert edited.status_code == 200, edited.text
    factor_file.write_text(CARDBOARD_V1 + CARDBOARD_V2, encoding="utf-8")


def test_verify_names_the_three_causes_with_the_figures_each_moved(
        influx: InfluxClient, admin: TestClient, factor_file: Path) -> None:
    first = _publish(admin)
    assert first["id"].startswith("ariege-20260609-")
    # Nothing changed: no difference; publishing again gives the same manifest.
    unchanged = admin.get(f"{REPORTS}/{first['id']}/verification")
    assert unchanged.status_code == 200, unchanged.text
    assert unchanged.json()["differences"] == [] and unchanged.json()["causes"] == []
    again = _publish(admin)
    assert again["id"] != first["id"]
    assert again["manifest_sha256"] == first["manifest_sha256"]
    assert again["manifest"]["digests"] == first["manifest"]["digests"]
    # The manifest states what the report rests on.
    manifest = first["manifest"]
    assert [(r["kind"], r["id"], r["version"]) for r in manifest["records"]] == [
        ("batches", 1, 1), ("material_lots", 1, 1)]
    user = next(f for f in manifest["files"] if f["file"] == str(factor_file))
    assert user["sha256"] == hashlib.sha256(CARDBOARD_V1.encode()).hexdigest()
    assert list(user["entries"]) == ["factors.cardboard-case@1"]
    shipped = next(f for f in manifest["files"] if f["file"] == "api/data/emission_factors.yaml")
    assert shipped["sha256"] == hashlib.sha256(
        (REPO / "api" / "data" / "emission_factors.yaml").read_bytes()).hexdigest()
    assert manifest["code"]["package"] == "dynamo-monitoring"
    freezer_reads = [r for r in manifest["series"] if r["sensor"] == "freezer.electric"]
    assert freezer_reads and all(len(r["sha256"]) == 64 for r in freezer_reads)
    # 00:00 to 12:00 local every 10 minutes, both ends: 12 × 6 + 1 readings.
    assert max(r["points"] for r in freezer_reads) == 73
    figures = manifest["figures"]
    assert figures["freezer.energy.electricity"] == 24.0  # 12 h × 2 kWh/h

    _change_three_inputs(influx, admin, factor_file)
    got = admin.get(f"{REPORTS}/{first['id']}/verification")
    assert got.status_code == 200, got.text
    result = got.json()
    moved = {d["figure"]: d for d in result["differences"]}
    causes = _causes(result)
    assert sorted(causes) == ["data_file", "readings", "record"]
    assert result["unexplained"] == []
    # Each cause moved its own machine's figures, and nothing else moved.
    assert {f.split(".")[0] for f in causes["readings"]["figures"]} == {"freezer"}
    assert {f.split(".")[0] for f in causes["record"]["figures"]} == {"dryer"}
    assert {f.split(".")[0] for f in causes["data_file"]["figures"]} == {"packaging"}
    assert set(moved) == {f for c in causes.values() for f in c["figures"]}
    assert all(len(d["causes"]) == 1 for d in moved.values())

    # Late readings: the freezer's whole day, 24 h × 2 kWh/h = 48 kWh instead of 12 h's 24;
    # the period's read saw 73 points, now 1 + 24 × 6 (to the end, inclusive) = 145.
    readings = causes["readings"]
    assert readings["series"] == "readings freezer.electric"
    assert any(r["points_before"] == 73 and r["points_after"] == 145 for r in readings["reads"])
    assert moved["freezer.energy.electricity"]["old"] == 24.0
    assert moved["freezer.energy.electricity"]["new"] == 48.0
    scope2 = moved["freezer.ghg.scope2.electric_energy"]
    assert scope2["new"] == pytest.approx(2 * scope2["old"], rel=1e-12)

    # The batch edit: water evaporated 1000 × (0.50 − 0.15) / (1 − 0.15) = 411.765 kg before,
    # 1250 × 0.35 / 0.85 = 514.706 kg after; the day's 24 h × 3 kWh/h = 72 kWh and the
    # batch's 12 h × 3 = 36 kWh are spread over it.
    record = causes["record"]
    assert (record["record"], record["change"], record["version_before"],
            record["version_after"]) == ("batches 1", "edited", 1, 2)
    [entry] = record["audit"]
    assert entry["action"] == "edit" and entry["actor"] == "token:test admin"
    assert ["mass_in_kg", 1000.0, 1250.0] in entry["changes"]
    per_water = moved["dryer.dryer.kwh_per_t_water"]
    assert per_water["old"] == pytest.approx(72 / 0.4117647059, rel=1e-9)
    assert per_water["new"] == pytest.approx(72 / 0.5147058824, rel=1e-9)
    batch = moved["dryer.batches[1].kWh/t"]
    assert (batch["old"], batch["new"]) == (pytest.approx(36 / 0.4117647059, rel=1e-9),
                                            pytest.approx(36 / 0.5147058824, rel=1e-9))
    assert "dryer.energy.electricity" not in moved  # the batch moves no energy

    # The factor version: 24 h × 5 kg/h = 120 kg of cardboard, × 0.9 = 108 kgCO2e before,
    # × 1.1 = 132 after; no energy figure moves for a factor.
    changed = causes["data_file"]
    assert changed["file"] == str(factor_file) and changed["role"] == "factors"
    assert changed["sha256_before"] == hashlib.sha256(CARDBOARD_V1.encode()).hexdigest()
    assert changed["sha256_after"] == hashlib.sha256(
        (CARDBOARD_V1 + CARDBOARD_V2).encode()).hexdigest()
    assert changed["entries_added"] == ["factors.cardboard-case@2"]
    assert changed["entries_changed"] == [] and changed["factor_ids"] == ["cardboard-case"]
    material = moved["packaging.ghg.scope3.material cardboard"]
    assert (material["old"], material["new"]) == (pytest.approx(108.0), pytest.approx(132.0))
    assert not any(".energy" in f for f in changed["figures"])


def test_a_calendar_edit_is_a_proven_cause(admin: TestClient) -> None:
    """The packaging line's calendar is set (version 1: 06:00–22:00 on weekdays), the day is
    published, then the calendar is cut to mornings (version 2): verification names the
    calendar, its versions and its audit entry, and the planned time it moved."""
    calendar = f"{PACKAGING}/calendar"
    days = ["mon", "tue", "wed", "thu", "fri"]
    whole = {"shifts": [{"name": "jour", "days": days, "start": "06:00", "end": "22:00"}]}
    mornings = {"shifts": [{"name": "matin", "days": days, "start": "06:00", "end": "14:00"}]}
    set_once = admin.put(calendar, json={"calendar": whole, "version": 0, "reason": "jour"})
    assert set_once.status_code == 200, set_once.text
    published = _publish(admin)
    assert ("shift_calendars", 1) in {(r["kind"], r["version"])
                                       for r in published["manifest"]["records"]}
    cut = admin.put(calendar, json={"calendar": mornings, "version": 1, "reason": "matins"})
    assert cut.status_code == 200, cut.text

    result = admin.get(f"{REPORTS}/{published['id']}/verification").json()
    [cause] = result["causes"]
    assert (cause["kind"], cause["record"], cause["change"], cause["version_before"],
            cause["version_after"]) == ("record", "shift_calendars packaging", "edited", 1, 2)
    [entry] = cause["audit"]
    assert entry["reason"] == "matins" and entry["actor"] == "token:test admin"
    moved = {d["figure"]: d for d in result["differences"]}
    # Tuesday 9 June: 06:00–22:00 is 16 h planned, 06:00–14:00 is 8 h.
    planned = next(d for f, d in moved.items() if f.endswith("planned_operation_h"))
    assert (planned["old"], planned["new"]) == (16.0, 8.0)
    assert {f.split(".")[0] for f in moved} == {"packaging"}
    assert result["unexplained"] == []


def test_supersede_immutability_roles_downloads_and_purge(
        admin: TestClient, make_client: Callable[..., TestClient], factor_file: Path) -> None:
    evaluator = make_client(role=TokenRole.EVALUATOR, api_factor_files=(factor_file,))
    first = _publish(evaluator)
    assert first["published_by"] == "token:test evaluator" and first["supersedes"] is None
    second = _publish(evaluator, supersedes=first["id"], lang="en")
    assert second["supersedes"] == first["id"]
    listed = {p["id"]: p for p in evaluator.get(REPORTS).json()}
    assert listed[first["id"]]["status"] == "superseded"
    assert listed[first["id"]]["superseded_by"] == second["id"]
    assert listed[second["id"]]["status"] == "current"
    twice = evaluator.post(REPORTS, json={**DAY, "supersedes": first["id"]})
    assert twice.status_code == 409 and second["id"] in twice.json()["detail"]
    assert evaluator.post(REPORTS, json={**DAY, "supersedes": "ariege-nope"}).status_code == 404
    assert evaluator.post(REPORTS, json={"period": "day"}).status_code == 422

    # Downloads carry their sha256; the PDF's footer names the publication and the one it
    # replaces (English here: "supersedes").
    pdf = evaluator.get(f"{REPORTS}/{second['id']}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    digest = hashlib.sha256(pdf.content).hexdigest()
    assert pdf.headers["x-content-sha256"] == digest == second["pdf_sha256"]
    assert pdf.headers["repr-digest"] == (
        f"sha-256=:{base64.b64encode(hashlib.sha256(pdf.content).digest()).decode()}:")
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf.content, capture_output=True,
                          timeout=60, check=True).stdout.decode()
    assert second["id"] in text and f"supersedes {first['id']}" in text
    first_pdf = evaluator.get(f"{REPORTS}/{first['id']}/pdf").content
    first_text = subprocess.run(["pdftotext", "-", "-"], input=first_pdf, capture_output=True,
                                timeout=60, check=True).stdout.decode()
    assert f"Rapport publié {first['id']}" in first_text and "remplace" not in first_text
    xlsx = evaluator.get(f"{REPORTS}/{second['id']}/xlsx")
    assert xlsx.headers["x-content-sha256"] == hashlib.sha256(xlsx.content).hexdigest()
    from io import BytesIO

    from openpyxl import load_workbook
    about = {row[0]: row[1] for row in load_workbook(BytesIO(xlsx.content))["provenance"]
             .iter_rows(values_only=True)}
    assert about["publication"] == second["id"] and about["supersedes"] == first["id"]

    # Nothing changes a publication.
    one = f"{REPORTS}/{first['id']}"
    for method in ("put", "patch", "delete"):
        assert getattr(admin, method)(one).status_code == 405, method
    assert admin.put(f"{one}/pdf").status_code == 405
    assert admin.get(one).json()["manifest_sha256"] == first["manifest_sha256"]

    # Roles and sites: an operator may not publish nor read; another site's evaluator sees
    # nothing (404, as for a site that does not exist).
    operator = make_client(role=TokenRole.OPERATOR)
    assert operator.post(REPORTS, json=DAY).status_code == 403
    assert operator.get(REPORTS).status_code == 403
    elsewhere = make_client(role=TokenRole.EVALUATOR, site="elsewhere")
    assert elsewhere.post(REPORTS, json=DAY).status_code == 404
    assert elsewhere.get(REPORTS).status_code == 404
    assert elsewhere.get(one).status_code == 404
    assert admin.get(f"/sites/nowhere/reports/{first['id']}").status_code == 404

    # A record a publication rests on may be voided, never purged; another one may.
    refused = admin.delete(f"{DRYER}/batches/1", params={"purge": True})
    assert refused.status_code == 409, refused.text
    reason = refused.json()["detail"]
    assert "impossible de supprimer" in reason and "cannot purge" in reason
    assert first["id"] in reason and second["id"] in reason
    spare = admin.post(f"{DRYER}/batches", json={
        "product": "luzerne", "started_at": "2026-06-20T06:00:00+02:00",
        "ended_at": "2026-06-20T18:00:00+02:00", "mass_in_kg": 500})
    assert spare.status_code == 201, spare.text
    assert admin.delete(f"{DRYER}/batches/{spare.json()['id']}",
                        params={"purge": True}).status_code == 204
    assert admin.delete(f"{DRYER}/batches/1").status_code == 204  # a void is allowed
    voided = admin.get(f"{REPORTS}/{first['id']}/verification").json()
    assert _causes(voided)["record"]["change"] == "voided"


def test_command_line_publishes_lists_and_verifies(
        influx: InfluxClient, admin: TestClient, api_settings: ApiSettings,
        factor_file: Path) -> None:
    env = {"DYNAMO_INFLUX_URL": api_settings.influx_url,
           "DYNAMO_INFLUX_DB": api_settings.influx_db,
           "DYNAMO_API_DATABASE_URL": api_settings.api_database_url,
           "DYNAMO_SITE_CONFIGS": str(api_settings.site_configs),
           "DYNAMO_API_FACTOR_FILES": json.dumps([str(factor_file)])}
    published = CliRunner().invoke(main, ["report", "publish", "--site", SITE, "--period",
                                          "day", "--date", "2026-06-09"], env=env)
    assert published.exit_code == 0, published.output
    pub_id = published.stdout.strip()
    from_api = admin.get(f"{REPORTS}/{pub_id}").json()
    assert from_api["published_by"].startswith("cli:")
    listed = CliRunner().invoke(main, ["report", "list", "--site", SITE], env=env)
    assert listed.exit_code == 0 and pub_id in listed.output
    # Another process, another string hash seed: the same figures to the last bit.
    other = subprocess.run(
        [sys.executable, "-m", "dynamo.cli", "report", "verify", pub_id],
        env={**os.environ, **env, "PYTHONHASHSEED": "4242"}, capture_output=True, text=True,
        timeout=120, cwd=REPO, check=False)
    assert other.returncode == 0, other.stdout + other.stderr
    assert "no difference" in other.stdout

    _change_three_inputs(influx, admin, factor_file)
    verified = CliRunner().invoke(main, ["report", "verify", pub_id], env=env)
    assert verified.exit_code == 1, verified.output
    assert "freezer.energy.electricity: 24.0 → 48.0" in verified.output
    assert "readings readings freezer.electric" in verified.output
    assert "record batches 1 edited (version 1 → 2; edit by token:test admin" in verified.output
    assert f"file {factor_file} changed" in verified.output
    assert "factors.cardboard-case@2" in verified.output
    missing = CliRunner().invoke(main, ["report", "verify", "ariege-nope"], env=env)
    assert missing.exit_code == 2 and "no published report" in missing.output


def test_a_user_gwp_file_never_redefines_a_loaded_value(tmp_path: Path) -> None:
    from api.accounting.gwp import GwpTable
    from telemetry.errors import ConfigError

    bad = tmp_path / "gwp.yaml"
    bad.write_text("# the team's own refrigerants\n"
                   "gases:\n"
                   "  R290:\n"
                   "    AR5: {value: 4, source_ref: ours}\n"
                   "    AR7: {value: 0.02, source_ref: ours}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        GwpTable.load(user_files=[bad])
    [issue] = caught.value.issues  # AR7 is new (an unknown report is another error: none)
    assert (issue.file, issue.line, issue.path) == (str(bad), 4, "gases.R290.AR5")
    assert "already defined in refrigerants.yaml" in issue.message
    assert str(issue).startswith(f"{bad}:4: gases.R290.AR5: redefines")
