"""GHG figures of inventory grade: the worked cases of tests/api/cases/ghg/ (arithmetic by hand
in each case.yaml, figures over HTTP from the real api, influxd and SQLite, to 0.1 %), the
factor loader's refusals, the electricity-contract routes and the export columns.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from casekit import dig, mismatches, same, write_series
from fastapi.testclient import TestClient

from api.access.tokens import TokenRole
from api.accounting.categories import Categories
from api.accounting.factors import FactorTable
from api.accounting.ghg import counter_uncertainty_pct, float32_step
from api.sites import SiteRegistry
from telemetry.errors import ConfigError
from telemetry.influx.client import InfluxClient

CASES_DIR = Path(__file__).parent / "cases" / "ghg"
SITES = CASES_DIR / "sites"
CASES = sorted(CASES_DIR.glob("*/case.yaml"))
TOLERANCE = 1e-3  # 0.1 %: the issue's bar for a figure against its hand result
CONTRACTS = "/sites/ghgcase/electricity-contracts"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ghg.sqlite3'}"


def _series(influx: InfluxClient, equipment: str, series: dict[str, list[Any]]) -> None:
    # casekit writes for site "ariege"; the cases have their own site: same readings, own tags.
    registry = SiteRegistry.load(SITES)
    eq = registry.get("ghgcase", equipment)
    assert eq is not None
    shadow = SiteRegistry({("ariege", equipment): eq})
    write_series(influx, shadow, equipment, series)


@pytest.mark.parametrize("case_file", CASES, ids=[c.parent.name for c in CASES])
def test_ghg_case(case_file: Path, influx: InfluxClient,
                  make_client: Callable[..., TestClient]) -> None:
    case = yaml.safe_load(case_file.read_text())
    factors = case_file.parent / "factors.yaml"
    client = make_client(site_configs=SITES,
                         api_factor_files=(factors,) if factors.exists() else ())
    _series(influx, case["equipment"], case.get("series") or {})
    base = f"/sites/ghgcase/equipment/{case['equipment']}"
    routes = {"electricity_contracts": CONTRACTS,
              "refrigerant_top_ups": f"{base}/refrigerant-top-ups"}
    for kind, rows in case.get("records", {}).items():
        for row in rows:
            response = client.post(routes[kind], json=row)
            assert response.status_code == 201, response.text
    for request in case["requests"]:
        response = client.get(f"{base}/indicators", params=request["params"])
        assert response.status_code == 200, response.text
        body = response.json()
        wrong = mismatches(body, request["expected"], tolerance=TOLERANCE)
        assert not wrong, (f"{request['params']}: actual vs expected: {wrong}\n"
                           f"notes: {body['notes']}")
        for path, check in request.get("each", {}).items():
            container, _, condition = path.rpartition("[")
            key, value = condition.rstrip("]").split("=")
            items = [x for x in dig(body, container) if str(x[key]) == value]
            assert len(items) == check["count"], (path, items)
            for item in items:
                for field, expected in check["fields"].items():
                    assert same(item[field], expected, tolerance=TOLERANCE), (path, field, item)


def test_the_cases_cover_what_the_issue_asks() -> None:
    names = {c.parent.name for c in CASES}
    assert {"dryer-month-fuel-oil-grid-pv-half-contract", "freezer-year-r452a-ar4-ar5-ar6",
            "pellet-boiler-biogenic", "month-at-80-percent-coverage"} <= names


def test_shipped_data_loads_and_every_line_key_has_its_categories() -> None:
    table = FactorTable.load()
    assert table.factors and table.defaults
    categories = Categories.load()
    assert categories.of("fuel_combustion").ghg_protocol.scope == 1
    assert categories.of("electricity_location").ghg_protocol.scope == 2
    assert categories.of("energy_upstream").ghg_protocol.scope == 3
    assert categories.of("energy_upstream").ghg_protocol.category == 3
    assert categories.of("purchased_materials").ghg_protocol.category == 1
    assert categories.of("biogenic_co2").ghg_protocol.scope is None


def test_a_user_file_may_add_a_version_never_redefine_a_shipped_one(tmp_path: Path) -> None:
    shipped = FactorTable.load()
    factor = next(f for f in shipped.factors if f.valid_to is None)
    newer = tmp_path / "newer.yaml"
    newer.write_text(
        "factors:\n"
        f"  - {{id: {factor.id}, version: \"user-2099\", value: 1.0, unit: {factor.unit},\n"
        f"     part: {factor.part}, source: \"the team's own\", valid_from: 2099-01-01}}\n")
    table = FactorTable.load(user_files=[newer])
    assert table.get(factor.id, on=date(2099, 6, 1)).version == "user-2099"
    clash = tmp_path / "clash.yaml"
    clash.write_text(
        "# a comment line\n"
        "factors:\n"
        f"  - {{id: {factor.id}, version: \"{factor.version}\", value: 1.0, unit: {factor.unit},\n"
        f"     source: \"an edit in place\", valid_from: {factor.valid_from.isoformat()}}}\n")
    with pytest.raises(ConfigError) as caught:
        FactorTable.load(user_files=[clash])
    [issue] = caught.value.issues
    assert issue.file == str(clash) and issue.line == 3
    assert "already defined in emission_factors.yaml" in issue.message
    assert "new version" in issue.message


def test_the_default_is_the_first_factor_whose_unit_converts(tmp_path: Path) -> None:
    user = tmp_path / "f.yaml"
    user.write_text(
        "defaults:\n  test_fuel: {combustion: [t-kwh, t-l]}\n"
        "factors:\n"
        "  - {id: t-kwh, version: '1', value: 0.3, unit: kgCO2e/kWh, source: abc,"
        " valid_from: 2020-01-01, part: combustion}\n"
        "  - {id: t-l, version: '1', value: 3.0, unit: kgCO2e/L, source: abc,"
        " valid_from: 2020-01-01, part: combustion}\n")
    table = FactorTable.load(user_files=[user])
    assert table.default_id("test_fuel", "combustion", unit="L") == "t-l"
    assert table.default_id("test_fuel", "combustion", unit="MWh") == "t-kwh"


def test_float32_resolution_makes_a_short_period_uncertain() -> None:
    # Near 12 345 kWh a float32 moves in steps of 2^(13 − 23) = 2^-10 = 0.0009765625 kWh.
    assert float32_step(12345.0) == 2.0 ** -10
    # Over 0.01 kWh (a few seconds of a small load) that is ±9.77 %, with the class's 1 %:
    # √(1² + 9.765625²) = 9.8167 %.
    assert counter_uncertainty_pct(increase=0.01, register_max=12345.0, data_type="float32") \
        == pytest.approx(9.8167, rel=1e-4)
    # An int32 register (no data type given): the class alone.
    assert counter_uncertainty_pct(increase=0.01) == 1.0


def _contract(**overrides: Any) -> dict[str, Any]:
    return {"supplier": "S", "product": "P", "factor_kg_per_kwh": 0.02,
            "factor_source": "supplier's disclosure 2025", "guarantees_of_origin": True,
            "certificate_ref": "GO-1", "valid_from": "2026-01-01T00:00:00+01:00", **overrides}


def test_electricity_contracts_routes(make_client: Callable[..., TestClient]) -> None:
    admin = make_client(site_configs=SITES)
    created = admin.post(CONTRACTS, json=_contract())
    assert created.status_code == 201, created.text
    row = created.json()
    assert row["version"] == 1 and row["voided_at"] is None
    # An edit names the version it started from.
    edited = admin.put(f"{CONTRACTS}/{row['id']}", json=_contract(factor_kg_per_kwh=0.03,
                                                                    version=1))
    assert edited.status_code == 200 and edited.json()["version"] == 2
    stale = admin.put(f"{CONTRACTS}/{row['id']}", json=_contract(version=1))
    assert stale.status_code == 409
    # Guarantees of origin need their certificate; valid_to after valid_from.
    assert admin.post(CONTRACTS, json=_contract(certificate_ref=None)).status_code == 422
    assert admin.post(CONTRACTS, json=_contract(
        valid_to="2025-01-01T00:00:00+01:00")).status_code == 422
    # Operators read, never write; a token of another site sees nothing.
    operator = make_client(role=TokenRole.OPERATOR, site_configs=SITES)
    assert operator.get(CONTRACTS).status_code == 200
    assert operator.post(CONTRACTS, json=_contract()).status_code == 403
    evaluator = make_client(role=TokenRole.EVALUATOR, site="ghgcase", site_configs=SITES)
    assert evaluator.post(CONTRACTS, json=_contract(certificate_ref="GO-2")).status_code == 201
    other = make_client(role=TokenRole.EVALUATOR, site="ariege", site_configs=SITES)
    assert other.get(CONTRACTS).status_code == 404
    # DELETE voids: out of the list (and of the figures), still readable on request.
    assert admin.delete(f"{CONTRACTS}/{row['id']}").status_code == 204
    listed = admin.get(CONTRACTS).json()
    assert row["id"] not in [c["id"] for c in listed]
    voided = admin.get(CONTRACTS, params={"include_voided": "true"}).json()
    [again] = [c for c in voided if c["id"] == row["id"]]
    assert again["voided_at"] is not None and again["void_reason"] == "voided through the api"


def test_exports_carry_categories_and_uncertainty(influx: InfluxClient,
                                                  make_client: Callable[..., TestClient]) -> None:
    case_dir = CASES_DIR / "pellet-boiler-biogenic"
    case = yaml.safe_load((case_dir / "case.yaml").read_text())
    client = make_client(site_configs=SITES, api_factor_files=(case_dir / "factors.yaml",))
    _series(influx, case["equipment"], case["series"])
    response = client.get("/sites/ghgcase/exports/indicators.csv",
                          params={"period": "day", "date": "2026-02-10",
                                  "equipment": "pellet-dryer"})
    assert response.status_code == 200, response.text
    rows = list(csv.DictReader(io.StringIO(response.text)))
    by = {r["indicator"]: r for r in rows}
    combustion = next(r for r in rows if r["factor_id"] == "case-pellets-combustion-kwh"
                      and r["indicator"].startswith("ghg.scope1"))
    assert combustion["scope"] == "1" and combustion["iso_category"] == "1"
    assert combustion["beges_poste"] and float(combustion["uncertainty_kg"]) == pytest.approx(
        4.2008, rel=1e-3)
    assert float(by["ghg.biogenic_co2"]["value"]) == pytest.approx(480.0)
    assert by["ghg.total.scope3_cat3"]["ghg_protocol_category"] == "3"


def test_a_systems_charge_is_stated_in_tco2e_with_the_f_gas_gwps_whatever_the_set() -> None:
    """The F-gas Regulation's figure: charge × AR4 GWP, even when emissions use AR5.

    R452A = 11 % HFC-32 + 59 % HFC-125 + 30 % HFO-1234yf (Regulation (EU) 2024/573 Annex;
    AR4 GWPs 675, 3500, 4): 0.11 × 675 + 0.59 × 3500 + 0.30 × 4 = 74.25 + 2065 + 1.2
    = 2140.45; 12 kg × 2140.45 = 25 685.4 kg = 25.6854 tCO2e.
    """
    from types import SimpleNamespace

    from api.accounting.gwp import GwpTable
    from api.accounting.indicators import _charge_tco2e
    from telemetry.site import RefrigerantCharge

    gwp = GwpTable.load()
    held = SimpleNamespace(equipment=SimpleNamespace(
        refrigerant=RefrigerantCharge(fluid="R452A", charge_kg=12)), gwp=gwp, gwp_report="AR5")
    notes: list[str] = []
    assert _charge_tco2e(held, notes) == pytest.approx(25.6854, rel=1e-6)  # type: ignore[arg-type]
    unknown = SimpleNamespace(equipment=SimpleNamespace(
        refrigerant=RefrigerantCharge(fluid="R999", charge_kg=1)), gwp=gwp)
    assert _charge_tco2e(unknown, notes) is None  # type: ignore[arg-type]
    assert any("R999" in note for note in notes)
    none = SimpleNamespace(equipment=SimpleNamespace(refrigerant=None), gwp=gwp)
    assert _charge_tco2e(none, []) is None  # type: ignore[arg-type]
