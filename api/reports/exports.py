"""Indicators as files for the evaluation team: CSV, XLSX and Parquet, one row per figure.

Every row carries its own provenance (period, method, sensors, coverage, evidence, factor id,
version and source), so a row copied out of the file still says where it comes from. XLSX adds
a `provenance` sheet; Parquet keeps the same in the file's key-value metadata.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from api.schemas import EmissionLine, IndicatorsOut

COLUMNS = ("site", "equipment", "period_start", "period_end", "indicator", "value", "unit",
           "method", "sensors", "coverage", "evidence", "factor_id", "factor_version",
           "factor_value", "factor_unit", "factor_source", "gwp_report", "scope",
           "ghg_protocol_category", "iso_category", "beges_poste", "scope2_method",
           "uncertainty_kg", "uncertainty_pct", "note")

# Units of equipment figures, from their field names' suffixes (names carry their unit).
_SUFFIX_UNITS = (("_kwh_per_t_water", "kWh/t"), ("_kwh_per_t_dry_matter", "kWh/t"),
                 ("kwh_per_t_water", "kWh/t"), ("kwh_per_t_dry_matter", "kWh/t"),
                 ("_co2e_kg_per_t_water", "kgCO2e/t"), ("co2e_kg_per_t_water", "kgCO2e/t"),
                 ("co2e_kg_per_t_dry_matter", "kgCO2e/t"), ("kwh_per_kg_frozen", "kWh/kg"),
                 ("kwh_per_1000_units", "kWh/1000 units"), ("co2e_kg_per_unit", "kgCO2e/unit"),
                 ("_kwh_per_kg", "kWh/kg"), ("_co2e_kg", "kgCO2e"), ("_kwh", "kWh"),
                 ("_kg", "kg"), ("_s", "s"), ("_c", "degC"), ("_upm", "units/min"),
                 ("units_packed", "units"), ("units_rejected", "units"))


class ExportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    PARQUET = "parquet"


MEDIA_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ExportFormat.PARQUET: "application/vnd.apache.parquet",
}


def _unit(field: str) -> str:
    return next((unit for suffix, unit in _SUFFIX_UNITS if field.endswith(suffix)), "")


def _part(line: EmissionLine) -> str:
    # A period cut at a factor's validity boundary has one line per part: say which part.
    if line.share is None or line.share == 1 or not line.applies_from or not line.applies_to:
        return ""
    return (f", {line.applies_from.isoformat()}/{line.applies_to.isoformat()}"
            f" ({line.share:.1%} of the activity)")


def rows_of(out: IndicatorsOut) -> list[dict[str, Any]]:
    """The figures of one equipment's indicators, flattened."""
    base = {"site": out.site, "equipment": out.equipment,
            "period_start": out.start.isoformat(), "period_end": out.end.isoformat(),
            "evidence": out.energy.evidence, "gwp_report": out.ghg.gwp_report}
    rows: list[dict[str, Any]] = []
    for source in out.energy.sources:
        rows.append({**base, "indicator": f"energy.{source.source}", "value": source.energy_kwh,
                     "unit": "kWh", "method": source.method,
                     "sensors": " ".join(source.sensors), "coverage": source.coverage})
    for line in out.ghg.lines:
        # Location-based lines keep the names they always had (ghg.scope2.<activity>).
        where = ("biogenic" if line.biogenic else "scope2_market"
                 if line.scope2_method == "market" else f"scope{line.scope}")
        rows.append({**base, "indicator": f"ghg.{where}.{line.activity}",
                     "value": line.co2e_kg, "unit": "kgCO2" if line.biogenic else "kgCO2e",
                     "method": f"{line.quantity:g} {line.quantity_unit} × factor{_part(line)}"
                               + (f" ({line.method})" if line.method else ""),
                     "factor_id": line.factor_id, "factor_version": line.factor_version,
                     "factor_value": line.factor_value, "factor_unit": line.factor_unit,
                     "factor_source": line.factor_source,
                     "gwp_report": line.gwp_report or base["gwp_report"],
                     "scope": line.scope, "ghg_protocol_category": line.ghg_protocol_category,
                     "iso_category": line.iso_category, "beges_poste": line.beges_poste,
                     "scope2_method": line.scope2_method, "uncertainty_kg": line.uncertainty_kg,
                     "uncertainty_pct": line.uncertainty_pct,
                     "note": " / ".join(n for n in (line.note, line.note_fr) if n) or None})
    rows.append({**base, "indicator": "ghg.scope1", "value": out.ghg.scope1_co2e_kg,
                 "unit": "kgCO2e", "method": "sum of scope 1 lines", "scope": 1})
    rows.append({**base, "indicator": "ghg.scope2", "value": out.ghg.scope2_co2e_kg,
                 "unit": "kgCO2e", "method": "sum of scope 2 lines, location-based", "scope": 2,
                 "scope2_method": "location"})
    for total in out.ghg.by_scope:
        rows.append({**base, "indicator": f"ghg.total.{total.key}", "value": total.co2e_kg,
                     "unit": "kgCO2e", "method": f"sum of {total.lines} lines; ± root-sum-square",
                     "scope": int(total.key[5]) if total.key.startswith("scope") else None,
                     "ghg_protocol_category": (int(total.key.split("cat")[1])
                                               if "_cat" in total.key else None),
                     "scope2_method": total.key.split("_")[1] if total.key.startswith(
                         "scope2_") else None,
                     "uncertainty_kg": total.uncertainty_kg,
                     "uncertainty_pct": total.uncertainty_pct})
    for total in out.ghg.by_iso_category:
        rows.append({**base, "indicator": f"ghg.iso.{total.key}", "value": total.co2e_kg,
                     "unit": "kgCO2e", "method": f"{total.label_en}; sum of {total.lines} lines "
                                                 "(location-based electricity)",
                     "iso_category": int(total.key[3:]), "uncertainty_kg": total.uncertainty_kg,
                     "uncertainty_pct": total.uncertainty_pct})
    rows.append({**base, "indicator": "ghg.biogenic_co2", "value": out.ghg.biogenic_co2_kg,
                 "unit": "kgCO2", "method": "biogenic CO2 of biomass, outside the scope totals"})
    for avoided in out.ghg.avoided:
        rows.append({**base, "indicator": f"avoided.{avoided.baseline}",
                     "value": avoided.avoided_co2e_kg, "unit": "kgCO2e",
                     "method": f"baseline {avoided.baseline_co2e_kg:g} − actual "
                               f"{avoided.actual_co2e_kg:g} (not netted)",
                     "factor_id": avoided.factor_id, "factor_version": avoided.factor_version})
    for kind in ("dryer", "freezer", "packaging"):
        figures = getattr(out, kind)
        if figures is None:
            continue
        for field, value in figures.model_dump().items():
            if field == "planned_time" and isinstance(value, dict):
                # OEE availability's time model: hours, and the calendar it rests on
                calendar = f"shift calendar: {value['calendar']} v{value['calendar_version']}"
                rows += [{**base, "indicator": f"{kind}.planned_time.{name}", "value": hours,
                          "unit": "h", "method": calendar}
                         for name, hours in value.items() if name.endswith("_h")]
                continue
            if field == "air_side" and isinstance(value, dict):
                # the dryer's air-side balance (docs/indicators.md)
                rows += [{**base, "indicator": f"{kind}.air_side.{name}", "value": figure,
                          "unit": "Pa" if name == "pressure_pa" else _unit(name),
                          "method": "psychrometrics (ASHRAE 2017 ch. 1, psychrolib)"}
                         for name, figure in value.items()
                         if isinstance(figure, int | float) and not isinstance(figure, bool)]
                continue
            if isinstance(value, bool) or not isinstance(value, int | float | None):
                continue
            rows.append({**base, "indicator": f"{kind}.{field}", "value": value,
                         "unit": _unit(field),
                         "note": figures.oee_availability_reason
                         if field == "oee_availability" and kind == "packaging" else None})
    return [{column: row.get(column) for column in COLUMNS} for row in rows]


def provenance(outs: Sequence[IndicatorsOut], *, generated_at: datetime,
               version: str) -> dict[str, str]:
    """File-level provenance: what produced the file, when, from what."""
    factors = sorted({(line.factor_id, line.factor_version, line.factor_source)
                      for out in outs for line in out.ghg.lines})
    return {
        "generated_at": generated_at.isoformat(),
        "software": f"dynamo-monitoring {version}",
        "equipment": " ".join(f"{o.site}/{o.equipment}" for o in outs),
        "period": outs[0].period if outs else "",
        "gwp_report": outs[0].ghg.gwp_report if outs else "",
        "factors": json.dumps([{"id": i, "version": v, "source": s} for i, v, s in factors],
                              ensure_ascii=False),
        "notes": json.dumps({f"{o.equipment}": o.notes for o in outs}, ensure_ascii=False),
        "conventions": "GHG Protocol scopes: 1 (fuel combustion, refrigerant), 2 (electricity, "
                       "location- and market-based, never added together), 3 (upstream of "
                       "energy: category 3; materials: category 1); ISO 14064-1 categories "
                       "with the location-based electricity; biogenic CO2 outside the totals; "
                       "± is the root-sum-square of independent line uncertainties "
                       "(docs/indicators.md); avoided emissions against a named baseline, "
                       "never netted.",
    }


def to_csv(rows: Sequence[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def to_xlsx(rows: Sequence[dict[str, Any]], meta: dict[str, str]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "indicators"
    sheet.append(list(COLUMNS))
    for row in rows:
        sheet.append([row[c] for c in COLUMNS])
    about = book.create_sheet("provenance")
    for key, value in meta.items():
        about.append([key, value])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def to_parquet(rows: Sequence[dict[str, Any]], meta: dict[str, str]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    numeric = {"value", "coverage", "factor_value", "uncertainty_kg", "uncertainty_pct"}
    integers = {"scope", "ghg_protocol_category", "iso_category"}
    schema = pa.schema([(c, pa.float64() if c in numeric else
                         pa.int64() if c in integers else pa.string()) for c in COLUMNS],
                       metadata={f"dynamo.{k}": v for k, v in meta.items()})
    table = pa.Table.from_pylist(list(rows), schema=schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()
