"""The shipped GHG data checked against itself and its sources: per-litre/per-kg and per-kWh
factors reconcile through density and PCI; every row is cited in docs/sources.md; blend GWPs
computed from composition match the F-gas Regulation's figures; pure-gas AR5 values equal the
IPCC table (stated here independently of the data file)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.accounting.factors import FactorTable, UnknownFactor
from api.accounting.gwp import GwpTable
from telemetry.errors import ConfigError

ROOT = Path(__file__).parents[2]
DATA = ROOT / "api" / "data"
ANCHORS = set(re.findall(r"\{#([a-z0-9-]+)\}", (ROOT / "docs" / "sources.md").read_text()))


def _yaml(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((DATA / name).read_text())
    assert isinstance(loaded, dict)
    return loaded


FACTORS = _yaml("emission_factors.yaml")


def _kwh_per(carrier: dict[str, float], unit: str) -> float | None:
    """kWh PCI in one L or one kg of the carrier, from its stated density and PCI."""
    pci = carrier.get("pci_kwh_per_kg")
    if pci is None:
        return None
    if unit == "kg":
        return pci
    density = carrier.get("density_kg_per_l")
    return density * pci if unit == "L" and density else None


def _pairs() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(per-L or per-kg factor, per-kWh PCI factor) of the same carrier, part and version."""
    rows = FACTORS["factors"]
    per_kwh = {(f["carrier"], f["part"], f["version"]): f for f in rows
               if f["unit"] == "kgCO2e/kWh" and f.get("basis") == "PCI" and "carrier" in f}
    return [(f, per_kwh[(f["carrier"], f["part"], f["version"])]) for f in rows
            if f["unit"] in ("kgCO2e/L", "kgCO2e/kg") and "carrier" in f
            and (f["carrier"], f["part"], f["version"]) in per_kwh]


def test_the_pairs_to_reconcile_are_the_ones_expected() -> None:
    # Written out so that a pair silently dropped from the data (a renamed part, a changed
    # version) fails here instead of escaping the reconciliation below.
    assert sorted((a["id"], b["id"]) for a, b in _pairs()) == [
        ("fuel-oil-combustion-l", "fuel-oil-combustion-kwh"),
        ("fuel-oil-upstream-l", "fuel-oil-upstream-kwh"),
        ("propane-combustion-kg", "propane-combustion-kwh"),
        ("propane-upstream-kg", "propane-upstream-kwh"),
        ("wood-chips-combustion-kg", "wood-chips-combustion-kwh"),
        ("wood-chips-upstream-kg", "wood-chips-upstream-kwh"),
        ("wood-pellets-combustion-kg", "wood-pellets-combustion-kwh"),
        ("wood-pellets-upstream-kg", "wood-pellets-upstream-kwh"),
    ]


@pytest.mark.parametrize(("per_unit", "per_kwh"), _pairs(), ids=lambda f: f["id"])
def test_per_litre_or_kg_and_per_kwh_agree_through_density_and_pci(
        per_unit: dict[str, Any], per_kwh: dict[str, Any]) -> None:
    carrier = FACTORS["carriers"][per_unit["carrier"]]
    kwh = _kwh_per(carrier, per_unit["unit"].split("/")[1])
    assert kwh, f"carrier {per_unit['carrier']} lacks the density or PCI that ties the pair"
    implied = per_unit["value"] / kwh
    assert implied == pytest.approx(per_kwh["value"], rel=0.005), (
        f"{per_unit['id']} {per_unit['value']} / {kwh:.4g} kWh = {implied:.5g}, "
        f"{per_kwh['id']} ships {per_kwh['value']}")
    biogenic = per_unit.get("biogenic_co2_per_unit", 0) / kwh
    assert biogenic == pytest.approx(per_kwh.get("biogenic_co2_per_unit", 0), rel=0.005)


def test_fuel_oil_reconciles_by_hand() -> None:
    # Arrêté 31 Oct 2012, code 204: 2.66 tCO2/m3 and 75 tCO2/TJ, PCI 42 GJ/t, 3.15 tCO2/t.
    density = 2.66 / 3.15                      # 0.8444 t/m3
    kwh_per_litre = density * 42 / 3.6         # 9.852 kWh PCI per L
    assert 2.66 / kwh_per_litre == pytest.approx(75 * 0.0036, rel=0.001)   # 0.2700
    carrier = FACTORS["carriers"]["fuel_oil"]
    assert carrier["density_kg_per_l"] * carrier["pci_kwh_per_kg"] == pytest.approx(
        kwh_per_litre, rel=0.002)


def test_fuel_oil_base_carbone_records_reconcile_by_hand() -> None:
    # ADEME Base Carbone v23.6, France continentale (docs/sources.md#base-carbone-fuels):
    # 14087 per litre: combustion 2.68, amont 0.567; 14081 per GJ PCI: 75.5 and 16;
    # 9406 density 845 kg/m3; 9379 PCI 42 GJ/t.
    kwh_per_litre = 0.845 * 42 / 3.6                         # 9.8583 kWh PCI per L
    assert 2.68 / kwh_per_litre == pytest.approx(75.5 * 0.0036, rel=0.001)    # 0.2718
    assert 0.567 / kwh_per_litre == pytest.approx(16 * 0.0036, rel=0.002)     # 0.0576
    by_id = {f["id"]: f["value"] for f in FACTORS["factors"]}
    assert (by_id["fuel-oil-combustion-l"], by_id["fuel-oil-upstream-l"]) == (2.68, 0.567)


def test_electricity_parts_add_up_to_the_base_empreinte_record() -> None:
    # Base Empreinte 42513 (2022): total 0.052 = combustion à la centrale 0.0338 + amont 0.0135
    # + pertes 0.00474; 43273 (2023): 0.058 = 0.0394 + 0.0133 + 0.0053
    # (docs/sources.md#base-empreinte-electricity-2022, #base-empreinte-electricity-2023).
    rows = {(f["id"], f["version"]): f["value"] for f in FACTORS["factors"]}
    for version, total in (("2022", 0.052), ("2023", 0.058)):
        generation = rows[("electricity-fr-mix-generation", version)]
        upstream = rows[("electricity-fr-mix-upstream", version)]
        assert generation + upstream == pytest.approx(total, rel=0.001), version
    assert rows[("electricity-fr-mix-upstream", "2022")] == pytest.approx(0.0135 + 0.00474)


def test_the_market_based_default_is_the_aib_residual_mix() -> None:
    # AIB European Residual Mixes 2023 v1.0, Table 2, FR: 40,74 gCO2/kWh
    # (docs/sources.md#aib-residual-mix).
    assert FACTORS["defaults"]["electricity_residual_mix"] == {
        "generation": ["electricity-fr-residual-mix"]}
    row = next(f for f in FACTORS["factors"] if f["id"] == "electricity-fr-residual-mix")
    assert row["value"] == pytest.approx(40.74 / 1000)


def test_gas_pcs_and_pci_factors_agree_through_the_ratio() -> None:
    ratio = FACTORS["carriers"]["natural_gas"]["pcs_over_pci"]
    by_id = {f["id"]: f["value"] for f in FACTORS["factors"]}
    for part in ("combustion", "upstream"):
        pcs, pci = by_id[f"natural-gas-{part}-kwh-pcs"], by_id[f"natural-gas-{part}-kwh-pci"]
        # per kWh PCI = per kWh PCS × PCS/PCI (one kWh PCI holds `ratio` kWh PCS)
        assert pcs * ratio == pytest.approx(pci, rel=0.005), part


def test_every_factor_is_cited_with_uncertainty_or_a_reason() -> None:
    rows = FACTORS["factors"]
    assert rows
    for f in rows:
        assert len(f.get("source", "")) > 10, f["id"]
        assert f.get("source_ref") in ANCHORS, f"{f['id']}: source_ref {f.get('source_ref')!r}"
        assert "uncertainty_pct" in f, f"{f['id']}: uncertainty_pct missing (null + note)"
        if f["uncertainty_pct"] is None:
            assert f.get("note"), f"{f['id']}: no uncertainty and no note saying why"
    for name, carrier in FACTORS["carriers"].items():
        assert carrier.get("source_ref") in ANCHORS, name


def test_every_default_names_a_shipped_factor() -> None:
    ids = {f["id"] for f in FACTORS["factors"]}
    for carrier, parts in FACTORS["defaults"].items():
        for part, listed in parts.items():
            assert listed and set(listed) <= ids, (carrier, part)
            assert {f["part"] for f in FACTORS["factors"] if f["id"] in listed} == {part}


def test_category_and_baseline_rows_are_cited() -> None:
    for row in _yaml("ghg_categories.yaml")["lines"]:
        assert row["source_ref"] in ANCHORS, row["key"]
    baselines = _yaml("baselines.yaml")["baselines"]
    assert {b["status"] for b in baselines} == {"historical", "current"}
    ids = {f["id"] for f in FACTORS["factors"]}
    for b in baselines:
        assert b["source_ref"] in ANCHORS and b["factor_id"] in ids, b["id"]



# Packaging materials: ADEME Base Carbone v23.6 identifiant and the figure as published, copied
# here from the export, not from the data file (docs/sources.md#base-carbone-packaging).
# Per tonne except 24309 (published per kg).
PACKAGING = {
    "cardboard-virgin-kg": (26737, 390 / 1000), "cardboard-recycled-kg": (26738, 670 / 1000),
    "paper-average-kg": (24309, 0.919),
    "ldpe-virgin-kg": (20831, 2090 / 1000), "ldpe-recycled-kg": (20838, 202 / 1000),
    "pet-virgin-kg": (20832, 3270 / 1000), "pet-recycled-kg": (20839, 202 / 1000),
    "pet-film-virgin-kg": (20835, 5500 / 1000), "pet-film-recycled-kg": (20842, 2460 / 1000),
    "glass-virgin-kg": (26741, 923 / 1000), "glass-recycled-kg": (26742, 409 / 1000),
}


def test_material_factors_cite_their_base_carbone_record() -> None:
    rows = [f for f in FACTORS["factors"] if "material" in f]
    assert sorted(f["id"] for f in rows) == sorted(PACKAGING)
    sources = (ROOT / "docs" / "sources.md").read_text()
    for f in rows:
        identifier, per_kg = PACKAGING[f["id"]]
        assert f"identifiant {identifier} " in f["source"], f["id"]
        assert f["value"] == pytest.approx(per_kg, rel=1e-9), f["id"]
        # a material lot needs a per-kg, life-cycle factor without a carrier
        assert (f["unit"], f["part"], f.get("carrier")) == ("kgCO2e/kg", "life_cycle", None)
        assert f["source_ref"] in ANCHORS, f["id"]
        entry = sources.split(f"{{#{f['source_ref']}}}", 1)[1].split("\n### ", 1)[0]
        assert f"**{identifier}**" in entry and f"`{f['id']}`" in entry, f["id"]
    table = FactorTable.load()
    for factor_id in PACKAGING:
        assert table.get(factor_id, on=date(2026, 6, 1)).activity_unit == "kg"


# --- GWPs --------------------------------------------------------------------------------

# IPCC AR5 WG1 ch. 8, table 8.A.1, GWP-100 (docs/sources.md#ipcc-ar5-table-8a1), copied here
# from its republications, not from the data file: ADEME Base Carbone v23.6 records 22584 R32
# 677, 22585 R125 3170, 22586 R134a 1300, 22587 R143a 4800 (source « GIEC »), and the
# Australian NGER Regulations 2008 s 2.02 table (AR5 values): the same four figures. HFOs are
# "<1" in the table (reported by IIR and Cooling Post), shipped as 1.
AR5_TABLE_8A1 = {"R32": 677, "R125": 3170, "R134a": 1300, "R143a": 4800, "R744": 1,
                 "R1234yf": 1, "R1234ze(E)": 1}
# Regulation (EU) No 517/2014 Annex I (AR4) and Annex IV (docs/sources.md#fgas-2014-annexes).
FGAS_PURE = {"R32": 675, "R125": 3500, "R134a": 1430, "R143a": 4470, "R290": 3, "R1270": 2,
             "R717": 0, "R744": 1}
# Published AR4 GWPs of the blends under the F-gas Regulation's mixture method.
FGAS_BLENDS = {"R404A": 3922, "R407C": 1774, "R410A": 2088, "R448A": 1387, "R449A": 1397,
               "R452A": 2140}
# AR6 blend values (docs/sources.md#ipcc-ar6-table-7sm7): ADEME Base Carbone v23.6 « GIEC
# (AR6 - 2023) » records 43628 R404a 4728, 43630 R407c 1908, 43632 R410a 2256; R452A 2292 from
# Project Drawdown's table.
AR6_BLENDS = {"R404A": 4728, "R407C": 1908, "R410A": 2256, "R452A": 2292}
# AR5 blend values: ADEME Base Carbone v23.6 records 22596 R404a 3943, 22598 R407c 1624,
# 22600 R410a 1924 (source « GIEC », the AR5 generation of its refrigerant records).
AR5_BLENDS = {"R404A": 3943, "R407C": 1624, "R410A": 1924}
# AR6 pure gases: Base Carbone « GIEC (AR6 - 2023) » records 43152 HFC-32 771, 43131 HFC-125
# 3740, 43133 HFC-134a 1530, 43135 HFC-143a 5810, 43586 HFO-1234yf 0.501, 43199 HFO-1234ze(E)
# 1.37, 43625 propane 0.02.
AR6_PURE = {"R32": 771, "R125": 3740, "R134a": 1530, "R143a": 5810, "R1234yf": 0.501,
            "R1234ze(E)": 1.37, "R290": 0.02}


@pytest.fixture(scope="module")
def gwp() -> GwpTable:
    return GwpTable.load()


def test_ar5_pure_gases_equal_the_ipcc_table(gwp: GwpTable) -> None:
    for gas, value in AR5_TABLE_8A1.items():
        assert gwp.gwp(gas, report="AR5")[0] == value, gas


def test_ar4_pure_gases_equal_the_fgas_annexes(gwp: GwpTable) -> None:
    for gas, value in FGAS_PURE.items():
        assert gwp.gwp(gas, report="AR4")[0] == value, gas


def test_blends_computed_from_composition_match_the_regulations_values(gwp: GwpTable) -> None:
    for blend, value in FGAS_BLENDS.items():
        assert round(gwp.gwp(blend, report="AR4")[0]) == pytest.approx(value, abs=1), blend
    for blend, value in AR6_BLENDS.items():
        assert round(gwp.gwp(blend, report="AR6")[0]) == pytest.approx(value, abs=1), blend
    for blend, value in AR5_BLENDS.items():
        assert round(gwp.gwp(blend, report="AR5")[0]) == pytest.approx(value, abs=1), blend


def test_ar6_pure_gases_equal_ademe_republication(gwp: GwpTable) -> None:
    for gas, value in AR6_PURE.items():
        assert gwp.gwp(gas, report="AR6")[0] == value, gas


def test_r452a_by_hand(gwp: GwpTable) -> None:
    # 11 % R32 + 59 % R125 + 30 % R1234yf
    assert gwp.gwp("R452A", report="AR4")[0] == pytest.approx(
        0.11 * 675 + 0.59 * 3500 + 0.30 * 4)                 # 2140.45
    assert gwp.gwp("R452A", report="AR5")[0] == pytest.approx(
        0.11 * 677 + 0.59 * 3170 + 0.30 * 1)                 # 1945.07
    value, source = gwp.gwp("R452A", report="AR6")
    assert value == pytest.approx(0.11 * 771 + 0.59 * 3740 + 0.30 * 0.501)   # 2291.56
    assert "7.SM.7" in source and "59 % R125" in source


def test_every_gwp_is_cited(gwp: GwpTable) -> None:
    data = _yaml("refrigerants.yaml")
    for report in data["reports"].values():
        assert report["source_ref"] in ANCHORS
    for gas, values in data["gases"].items():
        assert set(values) == {"AR4", "AR5", "AR6"}, gas
        for report, row in values.items():
            assert row["source_ref"] in ANCHORS, (gas, report)
    for blend, row in data["blends"].items():
        assert row["source_ref"] in ANCHORS and sum(row["composition"].values()) == 100, blend
    assert gwp.reports == ["AR4", "AR5", "AR6"]


def test_unknown_refrigerant_or_report_is_refused(gwp: GwpTable) -> None:
    with pytest.raises(UnknownFactor, match="R999"):
        gwp.gwp("R999", report="AR5")
    with pytest.raises(UnknownFactor, match="AR7"):
        gwp.gwp("R32", report="AR7")


def test_a_user_file_adds_but_never_redefines_a_shipped_value(tmp_path: Path) -> None:
    ours = tmp_path / "ours.yaml"
    ours.write_text("""
gases:
  R600a: {AR4: {value: 3, source_ref: fgas-2014-annexes}}
blends:
  R999X: {composition: {R32: 50, R600a: 50}, source_ref: ours}
""")
    table = GwpTable.load(user_files=[ours])
    assert table.gwp("R999X", report="AR4")[0] == pytest.approx(0.5 * 675 + 0.5 * 3)

    bad = tmp_path / "bad.yaml"
    bad.write_text("""
gases:
  R32: {AR5: {value: 600, source_ref: ours}}
blends:
  R404A: {composition: {R125: 100}, source_ref: ours}
""")
    with pytest.raises(ConfigError) as caught:
        GwpTable.load(user_files=[bad])
    text = str(caught.value)
    assert "bad.yaml" in text and "gases.R32.AR5" in text and "redefines" in text
    assert "blends.R404A" in text
