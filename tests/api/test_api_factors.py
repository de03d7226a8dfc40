"""Emission factors and GWPs as data: shipped defaults with sources, superseded by user files."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from api.accounting.factors import FactorTable, UnknownFactor
from api.accounting.ghg import activity_emission, refrigerant_emission, summarise
from api.accounting.gwp import GwpTable
from telemetry.errors import ConfigError


def test_shipped_factors_carry_sources_and_pick_the_right_year() -> None:
    table = FactorTable.load()
    assert all(f.source and f.version and f.origin == "emission_factors.yaml"
               for f in table.factors)
    # The generation part of ADEME's consumption mix (docs/sources.md): 2022, then 2023 on.
    electricity = "electricity-fr-mix-generation"
    assert table.get(electricity, on=date(2022, 12, 31)).value == 0.0338
    assert table.get(electricity, on=date(2026, 6, 1)).value == 0.0394
    with pytest.raises(UnknownFactor, match="valid on 2019"):
        table.get(electricity, on=date(2019, 1, 1))
    # A litre meter takes the per-litre factor of the carrier's defaults.
    assert table.for_activity("fuel_oil", on=date(2026, 1, 1), unit="L").unit == "kgCO2e/L"


def test_a_user_file_adds_versions_and_repoints_defaults_without_code(tmp_path: Path) -> None:
    user = tmp_path / "ours.yaml"
    user.write_text("""
defaults:
  electricity: {generation: [rte-2026-study]}
factors:
  - {id: electricity-fr-mix-generation, version: "2026-checked", value: 0.041,
     unit: kgCO2e/kWh, part: generation, carrier: electricity,
     source: "Base Empreinte, checked 2026-11-02", valid_from: 2026-01-01}
  - {id: rte-2026-study, version: "1", value: 0.040, unit: kgCO2e/kWh, part: generation,
     source: "our own study", valid_from: 2026-01-01, valid_to: 2027-01-01}
  - {id: cardboard-recycled, version: "1", value: 0.9, unit: kgCO2e/kg,
     source: "supplier EPD", valid_from: 2025-01-01}
""")
    table = FactorTable.load(user_files=[user])
    newer = table.get("electricity-fr-mix-generation", on=date(2026, 6, 1))
    assert (newer.value, newer.origin) == (0.041, "ours.yaml")
    assert table.get("electricity-fr-mix-generation", on=date(2022, 6, 1)).value == 0.0338
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
    # Blends are computed from their composition, unrounded; Regulation (EU) 517/2014 Annex I
    # lists R404A (44 % HFC-125, 52 % HFC-143a, 4 % HFC-134a) rounded: 0.44 × 3500 +
    # 0.52 × 4470 + 0.04 × 1430 = 3921.6 → 3922.
    assert gwp.gwp("R404A", report="AR4")[0] == pytest.approx(3921.6)
    assert round(gwp.gwp("R404A", report="AR4")[0]) == 3922
    assert sorted(gwp.reports) == ["AR4", "AR5", "AR6"]
    assert gwp.gwp("R404A", report="AR5")[0] != gwp.gwp("R404A", report="AR4")[0]
    with pytest.raises(UnknownFactor, match="AR3"):
        gwp.gwp("R290", report="AR3")
    with pytest.raises(UnknownFactor, match="R999"):
        gwp.gwp("R999", report="AR4")


def test_scopes_stay_apart_and_units_convert() -> None:
    table = FactorTable.load()
    on = date(2026, 3, 1)
    electricity = activity_emission(table, activity="grid_import_energy", quantity=250_000,
                                    unit="Wh", on=on, default_for="electricity")
    assert electricity.co2e_kg == pytest.approx(250 * 0.0394)
    assert (electricity.factor_id, electricity.factor_version) == (
        "electricity-fr-mix-generation", "2023")
    fuel = activity_emission(table, activity="fuel_volume", quantity=100, unit="L", on=on,
                             default_for="fuel_oil")
    per_litre = table.get("fuel-oil-combustion-l", on=on).value
    assert fuel.co2e_kg == pytest.approx(100 * per_litre)
    leak = refrigerant_emission(GwpTable.load(), refrigerant="R404A", leaked_kg=2.5,
                                report="AR6")
    r404a = GwpTable.load().gwp("R404A", report="AR6")[0]
    assert leak.co2e_kg == pytest.approx(2.5 * r404a) and leak.factor_version == "AR6"
    total = summarise([electricity, fuel, leak], gwp_report="AR6")
    assert total.scope2_co2e_kg == pytest.approx(250 * 0.0394)
    assert total.scope1_co2e_kg == pytest.approx(100 * per_litre + 2.5 * r404a)


def test_a_default_naming_an_unknown_factor_is_refused(tmp_path: Path) -> None:
    user = tmp_path / "defaults.yaml"
    user.write_text("defaults:\n  electricity: {generation: [no-such-factor]}\n")
    with pytest.raises(ConfigError,
                       match=r"defaults.yaml:2: defaults.electricity.generation: unknown"):
        FactorTable.load(user_files=[user])
