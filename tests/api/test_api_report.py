"""The evaluation report, end to end: three days of known readings in the real influxd,
records through the api, the report from the api, rendered by a real headless Chromium.

Checked: the screenshot shows the charts drawn in their colours; every figure of the page's
DOM (as Chromium built it) equals the JSON indicators (and the JSON base year) of the same
period, to the digits shown — scope table with dual scope 2 and ±, ISO categories, biogenic
line, avoided emissions under every baseline; the PDF is a real PDF whose text (pdftotext)
carries, in French, the scope table, the ISO category table, both scope 2 methods, the
biogenic line, the ± column, the GWP set and the base-year comparison with its reason.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from PIL import Image

from api.access.tokens import TokenRole
from api.accounting.baselines import shipped_baselines
from api.accounting.rollups import run_rollups
from api.reports.html import (
    BAND_COLOUR,
    BATCH_COLOUR,
    CO2E_DIGITS,
    KWH_DIGITS,
    MATERIAL_COLOUR,
    SOURCE_COLOURS,
)
from api.reports.pdf import CHROMIUM_FLAGS
from api.settings import ApiSettings
from api.sites import SiteRegistry
from api.store import ReadingsStore
from dynamo.cli import main
from telemetry.influx.client import InfluxClient
from telemetry.influx.lineprotocol import line

CASE = Path(__file__).parent / "cases" / "report"
REPO = Path(__file__).resolve().parents[2]
SITE = "ariege"
# ISO week 24 of 2026 in Paris: Monday 8 June 00:00 (22:00Z the day before) to Monday 15 June.
PERIOD = {"period": "week", "date": "2026-06-10"}
DAY0 = datetime(2026, 6, 8, 22, 0, tzinfo=UTC)  # Tuesday 9 June, local midnight
DAYS = 3
STEP = timedelta(minutes=5)  # the integral gap limit: readings further apart are holes

pytestmark = pytest.mark.skipif(shutil.which("chromium") is None,
                                reason="needs Debian's chromium (scripts/bootstrap installs it)")


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    # The relational layer is tested on both databases elsewhere; the report needs one.
    return f"sqlite:///{tmp_path / 'report.sqlite3'}"


def _counter(per_day: list[float]) -> Callable[[datetime], float]:
    """A meter counting `per_day[k]` evenly over local day k of the three."""
    def value(at: datetime) -> float:
        elapsed = (at - DAY0) / timedelta(days=1)
        whole = min(int(elapsed), DAYS - 1)
        return sum(per_day[:whole]) + per_day[whole] * (elapsed - whole)
    return value


def _series() -> dict[tuple[str, str], Callable[[datetime], float]]:
    """(equipment, sensor) → value at a time. Days differ so that bars differ."""
    def cabinet(at: datetime) -> float:
        # In the −30…−18 °C band but for day 1's afternoon (door left open, say).
        hours = (at - DAY0) / timedelta(hours=1)
        return -15.0 if 36 <= hours < 48 else -22.0

    def core(at: datetime) -> float:
        hours = (at - DAY0) / timedelta(hours=1)
        return max(-25.0, 5.0 - 20.0 * (hours - 8)) if hours >= 8 else 5.0

    return {
        ("dryer", "dryer.grid_import"): _counter([12.0, 20.0, 6.0]),
        ("dryer", "dryer.grid_export"): _counter([2.0, 0.5, 4.0]),
        ("dryer", "dryer.pv_energy"): _counter([30.0, 18.0, 40.0]),
        ("dryer", "dryer.electric"): _counter([40.0, 37.5, 42.0]),
        ("dryer", "dryer.solar_heat"): _counter([150.0, 90.0, 180.0]),
        # The drying air (the report's dryer heat section): constant, so the balance is
        # the JSON's and the cells are checked against it.
        ("dryer", "dryer.inlet_air_temp"): lambda at: 30.0,
        ("dryer", "dryer.inlet_air_humidity"): lambda at: 50.0,
        ("dryer", "dryer.outlet_air_temp"): lambda at: 24.0,
        ("dryer", "dryer.outlet_air_humidity"): lambda at: 80.0,
        ("dryer", "dryer.airflow"): lambda at: 2000.0,
        ("freezer", "freezer.electric"): _counter([55.0, 70.0, 48.0]),
        ("freezer", "freezer.cabinet_air_temp"): cabinet,
        ("freezer", "freezer.product_core_temp"): core,
        ("packaging", "packaging.electric"): _counter([9.0, 14.0, 11.0]),
        ("packaging", "packaging.units_packed"):
            _counter([3000.0, 4200.0, 3600.0]),
        ("packaging", "packaging.units_rejected"): _counter([30.0, 50.0, 20.0]),
        ("packaging", "packaging.cardboard"): _counter([60.0, 84.0, 72.0]),
        ("packaging", "packaging.pla_film"): _counter([6.0, 8.4, 7.2]),
        ("packaging", "packaging.line_state"): lambda at: 1.0,
    }


def _fill(influx: InfluxClient) -> None:
    registry = SiteRegistry.load(REPO / "firmware-config" / "sites")
    lines = []
    steps = int(timedelta(days=DAYS) / STEP)
    for (equipment, sensor_id), value in _series().items():
        eq = registry.get(SITE, equipment)
        assert eq is not None
        sensor = next(s for s in eq.sensors if s.id == sensor_id)
        tags = {"site": SITE, "gateway": eq.gateway, "equipment": equipment,
                "device": sensor.device, "sensor": sensor.id, "unit": sensor.unit,
                "quality": "good"}
        for i in range(steps + 1):
            at = DAY0 + i * STEP
            lines.append(line("readings", tags, {"value": value(at)},
                              int(at.timestamp() * 1000)))
    influx.write(lines)


RECORDS: dict[str, list[dict[str, Any]]] = {
    "/sites/ariege/equipment/dryer/batches": [
        {"product": "luzerne", "started_at": "2026-06-09T06:00:00+02:00",
         "ended_at": "2026-06-10T18:00:00+02:00", "mass_in_kg": 1000, "moisture_in_pct": 50,
         "moisture_out_pct": 15},
        {"product": "luzerne", "started_at": "2026-06-11T06:00:00+02:00",
         "ended_at": "2026-06-11T20:00:00+02:00", "mass_in_kg": 600, "moisture_in_pct": 40,
         "moisture_out_pct": 14}],
    "/sites/ariege/equipment/freezer/batches": [
        {"product": "carottes", "started_at": "2026-06-09T08:00:00+02:00",
         "ended_at": "2026-06-09T12:00:00+02:00", "mass_in_kg": 200}],
    "/sites/ariege/equipment/freezer/refrigerant-top-ups": [
        {"refrigerant": "R290", "mass_kg": 0.4, "at": "2026-06-10T09:00:00+02:00"}],
    "/sites/ariege/equipment/packaging/material-lots": [
        {"material": "cardboard", "mass_kg": 1000, "factor_id": "cardboard-case",
         "received_at": "2026-06-01T09:00:00+02:00"},
        {"material": "pla_film", "mass_kg": 100, "factor_id": "pla-film",
         "received_at": "2026-06-01T09:00:00+02:00"}],
    "/baselines": [
        {"name": "fuel-oil-dehydrator", "equipment_kind": "dryer", "output": "t_dry_matter",
         "activity_per_output": 400, "activity_unit": "L", "factor_id": "fuel-oil-combustion-l",
         "description": "industrial dehydrator, ~0.4 L fuel oil per kg of dehydrated product",
         "source": "docs/sources.md#baseline-lucerne-historical"}],
}


@pytest.fixture
def filled(influx: InfluxClient, make_client: Callable[..., TestClient]) -> TestClient:
    """An admin client on an api whose influxd and database hold the known week."""
    admin = make_client(api_factor_files=(CASE / "factors.yaml",))
    _fill(influx)
    for route, rows in RECORDS.items():
        for row in rows:
            response = admin.post(route, json=row)
            assert response.status_code == 201, response.text
    return admin


def _evaluator(admin: TestClient, make_client: Callable[..., TestClient]) -> TestClient:
    # The same app settings (factor file) with an evaluator's token.
    return make_client(role=TokenRole.EVALUATOR, api_factor_files=(CASE / "factors.yaml",))


@pytest.fixture
def browser_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "browser"
    folder.mkdir()
    yield folder


def _chromium(folder: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """One headless Chromium run with a fresh profile; bounded in time."""
    profile = folder / f"profile-{len(list(folder.iterdir()))}"
    return subprocess.run(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, timeout=60, check=False)


class _Figures(HTMLParser):
    """`data-figure` → the text inside the element, from the DOM Chromium dumped."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, str] = {}
        self._open: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open.append(dict(attrs).get("data-figure"))
        if self._open[-1] is not None:
            self.figures[self._open[-1]] = ""

    def handle_endtag(self, tag: str) -> None:
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for key in self._open:
            if key is not None:
                self.figures[key] += data


def _french_number(text: str) -> float:
    assert re.fullmatch(r"-?[0-9\u202f]+(,[0-9]+)?", text), f"not a French number: {text!r}"
    return float(text.replace("\u202f", "").replace(",", "."))


def _expected(indicators: dict[str, dict[str, Any]]) -> dict[str, tuple[float, int]]:
    """What each data-figure must show, from the JSON indicators, with the digits shown."""
    found: dict[str, tuple[float, int]] = {}
    for eq, body in indicators.items():
        ghg = body["ghg"]
        for key in ("scope1_co2e_kg", "scope2_location_co2e_kg", "scope2_market_co2e_kg",
                    "scope3_co2e_kg", "biogenic_co2_kg"):
            found[f"{eq}.ghg.{key}"] = (ghg[key], CO2E_DIGITS)
        for listed in ("by_scope", "by_iso_category"):
            for total in ghg[listed]:
                path = f"{eq}.ghg.{listed}[{total['key']}]"
                found[f"{path}.co2e_kg"] = (total["co2e_kg"], CO2E_DIGITS)
                found[f"{path}.uncertainty_kg"] = (total["uncertainty_kg"], CO2E_DIGITS)
                if total["uncertainty_pct"] is not None:
                    found[f"{path}.uncertainty_pct"] = (total["uncertainty_pct"], 1)
        # The inventory total (scope 2 location-based): scope 1 + scope 2 location + scope 3,
        # its ± the root-sum-square of the lines' own ± (the lines outside it: market-based
        # scope 2 and biogenic CO2).
        inside = [x for x in ghg["lines"] if x["scope"] is not None and not x["biogenic"]
                  and x["scope2_method"] != "market"]
        found[f"{eq}.ghg.by_scope[total_location].co2e_kg"] = (
            ghg["scope1_co2e_kg"] + ghg["scope2_location_co2e_kg"] + ghg["scope3_co2e_kg"],
            CO2E_DIGITS)
        found[f"{eq}.ghg.by_scope[total_location].uncertainty_kg"] = (
            sum((x["uncertainty_kg"] or 0.0) ** 2 for x in inside) ** 0.5, CO2E_DIGITS)
        for avoided in ghg["avoided"]:
            for field in ("avoided_co2e_kg", "baseline_co2e_kg", "actual_co2e_kg"):
                found[f"{eq}.ghg.avoided[{avoided['baseline']}].{field}"] = (
                    avoided[field], CO2E_DIGITS)
        for source in body["energy"]["sources"]:
            key = f"{eq}.energy.sources[{source['source']}]"
            found[f"{key}.energy_kwh"] = (source["energy_kwh"], KWH_DIGITS)
            found[f"{key}.coverage_pct"] = (100 * source["coverage"], 1)
        if body["packaging"] and body["packaging"]["planned_time"]:
            # OEE availability's time model, in hours to one decimal
            found |= {f"{eq}.packaging.planned_time.{key}": (hours, 1)
                      for key, hours in body["packaging"]["planned_time"].items()
                      if key.endswith("_h")}
        if body["dryer"]:
            found[f"{eq}.energy_used_kwh"] = (body["dryer"]["total_energy_kwh"], KWH_DIGITS)
            found[f"{eq}.energy_purchased_kwh"] = (body["dryer"]["purchased_energy_kwh"],
                                                   KWH_DIGITS)
            found |= _dryer_heat(eq, body["dryer"])
    return found


def _dryer_heat(eq: str, dryer: dict[str, Any]) -> dict[str, tuple[float, int]]:
    """The dryer heat section's figures (api/reports/dryer_heat.py): shares as percentages."""
    found: dict[str, tuple[float, int]] = {}
    for key, digits in (("metered_energy_per_latent_heat", 2), ("water_evaporated_kg", 0)):
        if dryer[key] is not None:
            found[f"{eq}.dryer.{key}"] = (dryer[key], digits)
    air = dryer["air_side"] or {}
    for key, scale, digits in (("water_taken_up_kg", 1, 0), ("water_balance_gap", 100, 1),
                               ("heat_taken_up_kwh", 1, 0), ("metered_heat_kwh", 1, 0),
                               ("ambient_heat_kwh", 1, 0), ("ambient_share", 100, 0)):
        if air.get(key) is not None:
            found[f"{eq}.dryer.air_side.{key}"] = (scale * air[key], digits)
    return found


def _indicators(client: TestClient, period: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The JSON indicators of each machine; the dryer's with its avoided emissions under
    every baseline (the stored one and the shipped historical and current ones)."""
    found = {}
    for eq in ("dryer", "freezer", "packaging"):
        got = client.get(f"/sites/{SITE}/equipment/{eq}/indicators", params=period)
        assert got.status_code == 200, got.text
        found[eq] = got.json()
    names = ["fuel-oil-dehydrator", *(b.name for b in shipped_baselines()
                                      if b.equipment_kind == "dryer")]
    for name in names:
        got = client.get(f"/sites/{SITE}/equipment/dryer/indicators",
                         params={**period, "baseline": name})
        assert got.status_code == 200, got.text
        found["dryer"]["ghg"]["avoided"] += got.json()["ghg"]["avoided"]
    assert len(found["dryer"]["ghg"]["avoided"]) == len(names)
    return found


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def test_report_renders_in_chromium_and_matches_the_json(
        filled: TestClient, make_client: Callable[..., TestClient], browser_dir: Path) -> None:
    evaluator = _evaluator(filled, make_client)
    response = evaluator.get(f"/sites/{SITE}/reports/evaluation",
                             params={**PERIOD, "format": "html"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    page = browser_dir / "report.html"
    page.write_text(response.text, encoding="utf-8")
    # Self-contained: nothing for a browser to fetch, nothing to run.
    assert not re.search(r"<script|<link|src=|url\(|https?://(?!www\.w3\.org/2000/svg)",
                         response.text)

    indicators = _indicators(evaluator, PERIOD)
    # The data are what the test wrote: a wrong fill would make the comparison vacuous.
    dryer_grid = next(s for s in indicators["dryer"]["energy"]["sources"]
                      if s["source"] == "grid_import")
    assert dryer_grid["energy_kwh"] == pytest.approx(38.0)
    # 0.4 kg of R290 × GWP-100 0.02 (the AR5 set, default; propane is not in AR5's table
    # 8.A.1, the project uses AR6's figure: docs/sources.md).
    assert indicators["freezer"]["ghg"]["scope1_co2e_kg"] == pytest.approx(0.4 * 0.02)
    # the line runs all the time: its planned time is the configuration's shifts
    assert indicators["packaging"]["packaging"]["planned_time"]["calendar"] == "configuration"

    dom = _chromium(browser_dir, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    parser = _Figures()
    parser.feed(dom.stdout.decode("utf-8"))
    shown = parser.figures
    expected = _expected(indicators)
    assert "dryer.dryer.air_side.ambient_heat_kwh" in expected  # the dryer heat section's
    assert set(expected) <= set(shown), sorted(set(expected) - set(shown))
    wrong = {key: (shown[key], round(value, digits)) for key, (value, digits) in expected.items()
             if abs(_french_number(shown[key]) - round(value, digits)) > 10 ** -(digits + 3)}
    assert not wrong, wrong
    text = dom.stdout.decode("utf-8")
    for title in ("Synthèse énergie et gaz à effet de serre", "Énergie par source",
                  "Énergie spécifique par lot", "part du temps dans la plage",
                  "Empreinte des matériaux d'emballage", "Méthode et sources des facteurs",
                  "Couverture des données", "electricity-fr-mix-generation",
                  "fuel-oil-combustion-l", "pla-film", "gwp100-ar5-r290",
                  "Inventaire des émissions de gaz à effet de serre",
                  "Par scope (GHG Protocol)", "Comparaison à l'année de référence",
                  "Disponibilité sur temps de production planifié"):
        assert title in text, title

    shot = browser_dir / "report.png"
    done = _chromium(browser_dir, f"--screenshot={shot}", "--window-size=1280,2400",
                     page.as_uri())
    assert shot.is_file(), done.stderr[-2000:]
    full = browser_dir / "report-full.png"
    _chromium(browser_dir, f"--screenshot={full}", "--window-size=1280,7000", page.as_uri())
    with Image.open(full) as image:
        pixels = image.convert("RGB")
        counts = {colour: count for count, colour in pixels.getcolors(maxcolors=1 << 20) or []}
    # Each chart's bars are drawn: enough pixels in each of its colours.
    for name, colour in [*((s, SOURCE_COLOURS[s]) for s in
                           ("grid_import", "grid_export", "pv", "solar_heat", "electricity")),
                         ("band", BAND_COLOUR), ("batches", BATCH_COLOUR),
                         ("materials", MATERIAL_COLOUR)]:
        assert counts.get(_rgb(colour), 0) > 200, (name, colour, counts.get(_rgb(colour)))
    assert len(counts) > 20  # text, grid lines, bars: not a blank page


BASE_YEAR = f"/sites/{SITE}/equipment/freezer/base-year"
TOP_UPS = f"/sites/{SITE}/equipment/freezer/refrigerant-top-ups"


def _base_year(admin: TestClient) -> int:
    """Base year 2025 of the freezer: one R134a top-up of 0.2 kg when it is set, another of
    0.1 kg recorded afterwards (a datum of the base year added late). By hand, with the AR5
    GWP-100 of HFC-134a, 1300 (IPCC AR5 WG1 table 8.A.1): frozen scope 1 = 0.2 × 1300 =
    260 kgCO2e; recalculated = (0.2 + 0.1) × 1300 = 390 kgCO2e. Answers the late record's id."""
    first = admin.post(TOP_UPS, json={"refrigerant": "R134a", "mass_kg": 0.2,
                                      "at": "2025-05-01T09:00:00+02:00"})
    assert first.status_code == 201, first.text
    assert admin.put(BASE_YEAR, json={"year": 2025}).status_code == 200
    late = admin.post(TOP_UPS, json={"refrigerant": "R134a", "mass_kg": 0.1,
                                     "at": "2025-06-01T09:00:00+02:00"})
    assert late.status_code == 201, late.text
    body = admin.get(BASE_YEAR).json()
    assert body["frozen"]["figures"]["ghg.scope1_co2e_kg"] == pytest.approx(260.0)
    assert body["recalculated"]["figures"]["ghg.scope1_co2e_kg"] == pytest.approx(390.0)
    return int(late.json()["id"])


def test_report_pdf_in_french(filled: TestClient, make_client: Callable[..., TestClient],
                              tmp_path: Path) -> None:
    late = _base_year(filled)
    response = _evaluator(filled, make_client).get(
        f"/sites/{SITE}/reports/evaluation", params={**PERIOD, "format": "pdf"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(response.content)
    if shutil.which("pdfinfo") is None:
        pytest.skip("needs poppler-utils (scripts/bootstrap installs it)")
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, timeout=30,
                          check=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))  # type: ignore[union-attr]
    assert pages >= 1
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, timeout=30, check=True).stdout
    assert "Rapport d'évaluation" in text
    assert "Synthèse énergie et gaz à effet de serre" in text
    # Cells wrap and pdftotext spaces glyphs its own way: compare the reading-order text
    # (no -layout) with every blank removed.
    reading = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                             timeout=30, check=True).stdout
    squeezed = "".join(reading.split())
    for shown in (
            # The scope table: scope 1, both scope 2 methods, scope 3 by category, totals, ±.
            "Par scope (GHG Protocol)", "Scope 1 (émissions directes)",
            "Scope 2, méthode « location-based »", "Scope 2, méthode « market-based »",
            "Scope 3, catégorie 3 (amont de l'énergie)",
            "Scope 3, catégorie 1 (matériaux achetés)", "Total (scope 2 « location-based »)",
            "Total (scope 2 « market-based »)", "± kgCO2e", "± %",
            # The biogenic line, outside the totals; the GWP set named.
            "CO2 biogénique (hors totaux)", "GIEC AR5, à 100 ans",
            # The ISO 14064-1 category table, with BEGES postes.
            "Par catégorie ISO 14064-1 (postes de la méthode BEGES)", "Postes BEGES",
            # The base-year comparison: original and recalculated side by side, the reason.
            "Comparaison à l'année de référence", "Année de référence 2025",
            "Année de réf. (original)", "Année de réf. (recalculée)",
            f"enregistrement refrigerant_top_ups {late} ajouté depuis", "260,000", "390,000",
            # Avoided emissions under both shipped baselines.
            "Émissions évitées selon chaque scénario de référence", "historique", "actuel"):
        assert "".join(shown.split()) in squeezed, shown
    # Side by side: the base year's scope 1 row carries the original, then the recalculated.
    row = next(line for line in text.splitlines()
               if "Scope 1 (kgCO2e)" in line and "260,000" in line)
    assert row.index("260,000") < row.index("390,000"), row


def test_report_in_english_and_access(filled: TestClient,
                                      make_client: Callable[..., TestClient]) -> None:
    url = f"/sites/{SITE}/reports/evaluation"
    english = filled.get(url, params={**PERIOD, "lang": "en"})
    assert english.status_code == 200, english.text
    assert "Energy and greenhouse gas summary" in english.text
    for title in ("By scope (GHG Protocol)", "By ISO 14064-1 category (BEGES method postes)",
                  "Biogenic CO2 (outside the totals)", "Base-year comparison",
                  "Avoided emissions under each baseline", "IPCC AR5, 100-year"):
        assert title in english.text, title
    assert "Synthèse" not in english.text and "Inventaire" not in english.text
    operator = make_client(role=TokenRole.OPERATOR)
    assert operator.get(url, params=PERIOD).status_code == 403
    assert make_client(role=None).get(url, params=PERIOD).status_code == 401
    other_site = make_client(role=TokenRole.EVALUATOR, site="elsewhere")
    assert other_site.get(url, params=PERIOD).status_code == 404
    assert filled.get("/sites/nowhere/reports/evaluation", params=PERIOD).status_code == 404
    # The indicator routes' validation: one of the two period forms, whole hours beyond 31 days.
    assert filled.get(url, params={"period": "week"}).status_code == 422
    assert filled.get(url, params={"start": "2026-01-01T00:30:00Z",
                                   "end": "2026-03-01T00:00:00Z"}).status_code == 422
    assert filled.get(url, params={**PERIOD, "format": "docx"}).status_code == 422


def test_pdf_without_chromium_is_a_clear_error(
        filled: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A PATH without Chromium, as on a server where it was not installed.
    monkeypatch.setenv("PATH", str(tmp_path))
    url = f"/sites/{SITE}/reports/evaluation"
    response = filled.get(url, params={**PERIOD, "format": "pdf"})
    assert response.status_code == 503
    assert "chromium" in response.json()["detail"].lower()
    assert filled.get(url, params=PERIOD).status_code == 200


def test_command_writes_the_same_report(filled: TestClient, api_settings: ApiSettings,
                                        tmp_path: Path) -> None:
    env = {"DYNAMO_INFLUX_URL": api_settings.influx_url,
           "DYNAMO_INFLUX_DB": api_settings.influx_db,
           "DYNAMO_API_DATABASE_URL": api_settings.api_database_url,
           "DYNAMO_SITE_CONFIGS": str(api_settings.site_configs),
           "DYNAMO_API_FACTOR_FILES": json.dumps([str(CASE / "factors.yaml")])}
    out = tmp_path / "rapport.html"
    # --date 2026-06 with --period month: the month of June, which holds the whole week.
    result = CliRunner().invoke(main, ["report", "render", "--site", SITE, "--period", "month",
                                       "--date", "2026-06", "--format", "html",
                                       "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    api = filled.get(f"/sites/{SITE}/reports/evaluation",
                     params={"period": "month", "date": "2026-06-01"})
    assert api.status_code == 200, api.text
    from_api, from_cli = _Figures(), _Figures()
    from_api.feed(api.text)
    from_cli.feed(out.read_text(encoding="utf-8"))
    assert from_cli.figures and from_cli.figures == from_api.figures
    assert "mois 2026-06" in out.read_text(encoding="utf-8")
    pdf = tmp_path / "rapport.pdf"
    result = CliRunner().invoke(main, ["report", "render", "--site", SITE, "--start",
                                       "2026-06-09T00:00:00+02:00", "--end",
                                       "2026-06-10T00:00:00+02:00", "--format", "pdf",
                                       "--out", str(pdf), "--lang", "en"], env=env)
    assert result.exit_code == 0, result.output
    assert pdf.read_bytes().startswith(b"%PDF")
    result = CliRunner().invoke(main, ["report", "render", "--site", SITE, "--period", "month",
                                       "--out", str(pdf)], env=env)
    assert result.exit_code != 0 and "--period and --date" in result.output


def test_year_report_from_rollups(filled: TestClient, influx: InfluxClient) -> None:
    # Beyond 31 days the indicators read the hourly rollups only; so does the report, whose
    # bars are then months.
    registry = SiteRegistry.load(REPO / "firmware-config" / "sites")
    run_rollups(registry=registry, store=ReadingsStore(influx), start=DAY0 - timedelta(hours=1),
                end=DAY0 + timedelta(days=DAYS, hours=1), around=timedelta(hours=6),
                max_gap=timedelta(minutes=5))
    year = {"period": "year", "date": "2026-06-10"}
    response = filled.get(f"/sites/{SITE}/reports/evaluation", params=year)
    assert response.status_code == 200, response.text
    assert "année 2026" in response.text and "par mois" in response.text
    shown = _Figures()
    shown.feed(response.text)
    got = filled.get(f"/sites/{SITE}/equipment/freezer/indicators", params=year)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["energy"]["evidence"] == "hourly rollups"
    assert body["energy"]["sources"][0]["energy_kwh"] == pytest.approx(173.0)
    expected = _expected({"freezer": body})
    wrong = {key: (shown.figures.get(key), round(value, digits))
             for key, (value, digits) in expected.items()
             if abs(_french_number(shown.figures[key]) - round(value, digits))
             > 10 ** -(digits + 3)}
    assert not wrong, wrong
