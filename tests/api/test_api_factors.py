"""Emission factors and GWPs as data: shipped defaults with sources, superseded by user files."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from api.accounting.factors import FactorTable, GwpTable, UnknownFactor
from api.accounting.ghg import activity_emission, refrigerant_emission, summarise
from telemetry.errors import ConfigError


def test_shipped_factors_carry_sources_and_pick_the_right_year() -> None:
    table = FactorTable.load()
    assert all(f.source and f.version and f.origin == "emission_factors.yaml"
               for f in table.factors)
    electricity = "electricity-fr-consumption-mix"
    assert table.get(electricity, on=date(2021, 7, 1)).value == 0.0569
    assert table.get(electricity, on=date(2022, 12, 31)).value == 0.0520
    assert table.get(electricity, on=date(2026, 6, 1)).value == 0.0580
    with pytest.raises(UnknownFactor, match="valid on 2019"):
        table.get(electricity, on=date(2019, 1, 1))
    assert table.for_activity("fuel_volume", on=date(2026, 1, 1)).unit == "kgCO2e/L"


def test_a_user_file_supersedes_and_adds_without_code(tmp_path: Path) -> None:
    user = tmp_path / "ours.yaml"
    user.write_text("""
defaults:
  electricity: rte-2026-study
factors:
  - {id: electricity-fr-consumption-mix, version: "2023", value: 0.061, unit: kgCO2e/kWh,
     scope: 2, source: "Base Empreinte v23.4, checked 2026-11-02", valid_from: 2023-01-01}
  - {id: rte-2026-study, version: "1", value: 0.040, unit: kgCO2e/kWh, scope: 2,
     source: "our own study", valid_from: 2026-01-01, valid_to: 2027-01-01}
  - {id: cardboard-recycled, version: "1", value: 0.9, unit: kgCO2e/kg, scope: 3,
     source: "supplier EPD", valid_from: 2025-01-01}
""")
    table = FactorTable.load(user_files=[user])
    superseded = table.get("electricity-fr-consumption-mix", on=date(2026, 6, 1))
    assert (superseded.value, superseded.origin) == (0.061, "ours.yaml")
    assert table.get("electricity-fr-consumption-mix", on=date(2022, 6, 1)).value == 0.0520
    assert table.for_activity("electricity", on=date(2026, 6, 1)).id == "rte-2026-study"
    assert table.get("cardboard-recycled", on=date(2026, 1, 1)).activity_unit == "kg"


def test_a_wrong_factor_file_is_refused_with_file_line_and_field(tmp_path: Path) -> None:
    user = tmp_path / "bad.yaml"
    user.write_text("""factors:
  - {id: a, version: "1", value: -2, unit: kgCO2e/kWh, source: "x y z", valid_from: 2024-01-01}
  - id: b
    version: "1"
    value: 1
    unit: CO2/kWh
    source: "x y z"
    valid_from: 2024-01-01
    valid_to: 2023-01-01
""")
    with pytest.raises(ConfigError) as caught:
        FactorTable.load(user_files=[user])
    text = str(caught.value)
    assert "bad.yaml:2: factors[0].value" in text
    assert "bad.yaml:6: factors[1].unit" in text and "kgCO2e/<activity unit>" in text


def test_gwp_tables_are_named_and_distinct() -> None:
    gwp = GwpTable.load()
    assert gwp.gwp("R404A", report="AR4")[0] == 3922
    assert gwp.gwp("R404A", report="AR6")[0] == 4728
    assert gwp.gwp("R290", report="AR6")[0] == 0.02
    with pytest.raises(UnknownFactor, match="AR5"):
        gwp.gwp("R290", report="AR5")
    with pytest.raises(UnknownFactor, match="R999"):
        gwp.gwp("R999", report="AR4")


def test_scopes_stay_apart_and_units_convert() -> None:
    table = FactorTable.load()
    on = date(2026, 3, 1)
    electricity = activity_emission(table, activity="grid_import_energy", quantity=250_000,
                                    unit="Wh", on=on, default_for="electricity", scope=2)
    assert electricity.co2e_kg == pytest.approx(250 * 0.0580)
    assert (electricity.factor_id, electricity.factor_version) == (
        "electricity-fr-consumption-mix", "2023")
    fuel = activity_emission(table, activity="fuel_volume", quantity=100, unit="L", on=on,
                             default_for="fuel_volume", scope=1)
    assert fuel.co2e_kg == pytest.approx(324.0)
    leak = refrigerant_emission(GwpTable.load(), refrigerant="R404A", leaked_kg=2.5,
                                report="AR6")
    assert leak.co2e_kg == pytest.approx(2.5 * 4728) and leak.factor_version == "AR6"
    total = summarise([electricity, fuel, leak], gwp_report="AR6")
    assert total.scope2_co2e_kg == pytest.approx(14.5)
    assert total.scope1_co2e_kg == pytest.approx(324.0 + 11820.0)


def test_a_default_naming_an_unknown_factor_is_refused(tmp_path: Path) -> None:
    user = tmp_path / "defaults.yaml"
    user.write_text("defaults:\n  electricity: no-such-factor\n")
    with pytest.raises(ConfigError, match=r"defaults.yaml: defaults.electricity: unknown"):
        FactorTable.load(user_files=[user])
