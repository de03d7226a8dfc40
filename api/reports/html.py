"""The report as one self-contained HTML page: inline CSS, inline SVG charts, no script and no
fetch, so that it reads offline, forwarded by mail, and prints to PDF as it shows."""

from __future__ import annotations

import math
from html import escape
from zoneinfo import ZoneInfo

from api.accounting.base_year import BaseYearOut
from api.reports.charts import Series, bar_chart, column_chart
from api.reports.content import MachineReport, Report, inventory_totals
from api.reports.dryer_heat import dryer_heat_section
from api.reports.language import Lang, number, say
from api.reports.oee import oee_section
from api.schemas import CounterDropOut

# Decimals shown: the JSON carries full floats, the report rounds them once, here.
KWH_DIGITS = 2
CO2E_DIGITS = 3

SOURCE_COLOURS = {"grid_import": "#d62728", "grid_export": "#9467bd", "pv": "#e6b800",
                  "solar_heat": "#ff7f0e", "fuel": "#8c564b", "electricity": "#1f77b4"}
BAND_COLOUR = "#2ca02c"
BATCH_COLOUR = "#17becf"
MATERIAL_COLOUR = "#7b4f9e"

_CSS = """
@page { size: A4; margin: 14mm; }  /* French reports print on A4, not Chromium's Letter */
body { font-family: "DejaVu Sans", Arial, sans-serif; color: #222; margin: 24px auto;
       max-width: 960px; font-size: 14px; }
h1 { font-size: 24px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 28px;
border-bottom: 2px solid #1f77b4; padding-bottom: 3px; } h3 { font-size: 15px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 4px 6px; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th { background: #eef3f8; } tr.total td { font-weight: bold; }
tr.biogenic td { font-style: italic; color: #2d6a2d; }
h4 { font-size: 14px; margin: 10px 0 2px; } .meta { color: #555; }
.note { color: #555; font-size: 12px; }
svg.chart { display: block; margin: 8px 0 16px; max-width: 100%; height: auto; }
section.machine { page-break-inside: avoid; }
/* A published report's id: fixed, so Chromium prints it at the foot of every page. */
footer.publication { position: fixed; bottom: 0; left: 0; right: 0; font-size: 10px;
                     color: #444; text-align: center; background: #fff; }
"""


def _significant(value: float, lang: Lang) -> str:
    """Four significant digits, for chart labels whose values span orders of magnitude."""
    digits = max(0, 3 - math.floor(math.log10(abs(value)))) if value else 0
    return number(value, digits=digits, lang=lang)


def _period_label(label: str, lang: Lang) -> str:
    """`week 2026-W24` → `semaine 2026-W24`: the period kinds in the report's language."""
    kind, _, rest = label.partition(" ")
    return f"{say('period_' + kind, lang)} {rest}" if rest else label


def _machine_name(m: MachineReport, lang: Lang) -> str:
    return f"{m.equipment.name} ({say(m.equipment.kind.value, lang)})"


def _energy_used(m: MachineReport) -> tuple[float | None, float | None]:
    """(used, purchased) kWh: the dryer's own totals (with free solar heat); for the other
    machines their electricity (feeder, else grid import) plus fuel, as the JSON gives them."""
    out = m.indicators
    if out.dryer is not None:
        return out.dryer.total_energy_kwh, out.dryer.purchased_energy_kwh
    kwh = {s.source: s.energy_kwh for s in out.energy.sources}
    electricity = kwh.get("electricity", kwh.get("grid_import"))
    if electricity is None and "fuel" not in kwh:
        return None, None
    used = (electricity or 0.0) + kwh.get("fuel", 0.0)
    purchased = kwh.get("grid_import", electricity or 0.0) + kwh.get("fuel", 0.0)
    return used, purchased


def _cell(figure: str, value: float | None, digits: int, lang: Lang) -> str:
    # data-figure names the JSON path the cell shows, so a reader (or a test) can trace it.
    return (f'<td class="n" data-figure="{escape(figure)}">'
            f'{number(value, digits=digits, lang=lang)}</td>')


def _summary(report: Report, lang: Lang) -> str:
    head = "".join(f"<th>{say(k, lang)}</th>" for k in (
        "machine", "energy_used", "energy_purchased", "scope1", "scope2_location",
        "scope2_market", "scope3", "total_location", "avoided"))
    rows = []
    for m in report.machines:
        eq, ghg = m.equipment.id, m.indicators.ghg
        total = inventory_totals(ghg)[0]
        used, purchased = _energy_used(m)
        avoided = "<br>".join(
            f'<span data-figure="{eq}.ghg.avoided[{escape(a.baseline)}].avoided_co2e_kg">'
            f"{number(a.avoided_co2e_kg, digits=CO2E_DIGITS, lang=lang)}</span> "
            f'<span class="note">({say("baseline", lang)} {escape(a.baseline)})</span>'
            for a in ghg.avoided) or say("none", lang)
        rows.append(
            f"<tr><td>{escape(_machine_name(m, lang))}</td>"
            + _cell(f"{eq}.energy_used_kwh", used, KWH_DIGITS, lang)
            + _cell(f"{eq}.energy_purchased_kwh", purchased, KWH_DIGITS, lang)
            + _cell(f"{eq}.ghg.scope1_co2e_kg", ghg.scope1_co2e_kg, CO2E_DIGITS, lang)
            + _cell(f"{eq}.ghg.scope2_location_co2e_kg", ghg.scope2_location_co2e_kg,
                    CO2E_DIGITS, lang)
            + _cell(f"{eq}.ghg.scope2_market_co2e_kg", ghg.scope2_market_co2e_kg,
                    CO2E_DIGITS, lang)
            + _cell(f"{eq}.ghg.scope3_co2e_kg", ghg.scope3_co2e_kg, CO2E_DIGITS, lang)
            + _cell(f"{eq}.ghg.by_scope[{total.key}].co2e_kg", total.co2e_kg, CO2E_DIGITS,
                    lang)
            + f'<td class="n">{avoided}</td></tr>')
    return (f'<h2 id="summary">{say("summary", lang)}</h2><table class="summary">'
            f"<tr>{head}</tr>{''.join(rows)}</table>"
            f'<p class="note">{say("avoided_note", lang)}</p>')


# The rows of the scope table, always shown (— when the period has no such line), in the
# GHG Protocol's order; other totals the api gives follow.
SCOPE_ROWS = ("scope1", "scope2_location", "scope2_market", "scope3_cat3", "scope3_cat1",
              "scope3")
_SCOPE_LABELS = {"scope3_cat3": ("Scope 3, catégorie 3 (amont de l'énergie)",
                                 "Scope 3, category 3 (upstream of energy)"),
                 "scope3_cat1": ("Scope 3, catégorie 1 (matériaux achetés)",
                                 "Scope 3, category 1 (purchased materials)")}


def _total_row(eq: str, key: str, label: str, co2e: float | None, spread: float | None,
               pct: float | None, lang: Lang, extra: str = "") -> str:
    path = f"{eq}.ghg.by_scope[{key}]" if not key.startswith("iso") else (
        f"{eq}.ghg.by_iso_category[{key}]")
    return (f"<tr><td>{escape(label)}</td>{extra}"
            + _cell(f"{path}.co2e_kg", co2e, CO2E_DIGITS, lang)
            + _cell(f"{path}.uncertainty_kg", spread, CO2E_DIGITS, lang)
            + _cell(f"{path}.uncertainty_pct", pct, 1, lang) + "</tr>")


def _inventory(report: Report, lang: Lang) -> str:
    """Per machine: the GHG Protocol scope table (dual scope 2, scope 3 by category, totals),
    the ISO 14064-1 category table with its BEGES postes, the biogenic line apart, each
    total with its ± — every figure a field of the indicators' `ghg`."""
    parts = [f'<h2 id="inventory">{say("inventory", lang)}</h2>',
             f'<p>{say("gwp_set", lang).format(gwp=escape(report.gwp_report))}</p>']
    head = "".join(f"<th>{say(k, lang)}</th>" for k in ("item", "co2e_kg", "pm_kg", "pm_pct"))
    for m in report.machines:
        eq, ghg = m.equipment.id, m.indicators.ghg
        given = {t.key: t for t in ghg.by_scope}
        rows = []
        for key in (*SCOPE_ROWS, *(k for k in given if k not in SCOPE_ROWS)):
            total = given.get(key)
            fr, en = _SCOPE_LABELS.get(key, (total.label_fr, total.label_en) if total else
                                       (key, key))
            label = fr if lang == "fr" else en
            rows.append(_total_row(eq, key, label, total.co2e_kg if total else None,
                                   total.uncertainty_kg if total else None,
                                   total.uncertainty_pct if total else None, lang))
        for total in inventory_totals(ghg):
            rows.append(_total_row(eq, total.key, total.label_fr if lang == "fr"
                                   else total.label_en, total.co2e_kg, total.uncertainty_kg,
                                   total.uncertainty_pct, lang).replace("<tr>",
                                                                        '<tr class="total">'))
        rows.append(f'<tr class="biogenic"><td>{say("biogenic", lang)}</td>'
                    + _cell(f"{eq}.ghg.biogenic_co2_kg", ghg.biogenic_co2_kg, CO2E_DIGITS, lang)
                    + "<td></td><td></td></tr>")
        iso_head = "".join(f"<th>{say(k, lang)}</th>" for k in (
            "item", "beges_postes", "co2e_kg", "pm_kg", "pm_pct"))
        iso_rows = []
        for total in ghg.by_iso_category:
            number_of = total.key.removeprefix("iso")
            postes = sorted({line.beges_poste for line in ghg.lines
                             if line.beges_poste and str(line.iso_category) == number_of
                             and line.scope2_method != "market" and not line.biogenic})
            iso_rows.append(_total_row(
                eq, total.key, total.label_fr if lang == "fr" else total.label_en,
                total.co2e_kg, total.uncertainty_kg, total.uncertainty_pct, lang,
                extra=f"<td>{escape(', '.join(postes)) or say('none', lang)}</td>"))
        parts.append(
            f'<section class="machine"><h3>{escape(_machine_name(m, lang))}</h3>'
            f'<h4>{say("scope_table", lang)}</h4><table class="scopes"><tr>{head}</tr>'
            f"{''.join(rows)}</table>"
            f'<h4>{say("iso_table", lang)}</h4><table class="iso"><tr>{iso_head}</tr>'
            f"{''.join(iso_rows)}</table></section>")
    parts.append(f'<p class="note">{say("inventory_note", lang)}</p>')
    return "".join(parts)


_BASE_FIGURES = ("ghg.scope1_co2e_kg", "ghg.scope2_location_co2e_kg",
                 "ghg.scope2_market_co2e_kg", "ghg.scope3_co2e_kg")


def _reason_text(base: BaseYearOut, text: str, lang: Lang) -> str:
    """A reason in the report's language, from the api's structured reason."""
    found = next((r for r in base.reasons if r.text == text), None)
    if found is None:
        return say("reason_none", lang)
    key = f"reason_{found.kind}"
    if found.kind == "record":
        key += ("_added" if found.frozen is None else "_deleted" if found.current is None
                else "_voided" if "voided" in found.current and "voided" not in found.frozen
                else "")
    return say(key, lang).format(
        subject=found.subject, frozen=found.frozen or say("none", lang),
        current=found.current or say("none", lang))


def _base_year(report: Report, lang: Lang) -> str:
    """Per machine: the base year's original and recalculated figures side by side, the
    reason of each recalculation, and the report period's figure beside them."""
    head = "".join(f"<th>{say(k, lang)}</th>" for k in (
        "figure", "base_frozen", "base_recalculated", "reason", "this_period"))
    parts = [f'<h2 id="base-year">{say("base_year", lang)}</h2>']
    for m in report.machines:
        eq, base = m.equipment.id, m.base_year
        name = escape(_machine_name(m, lang))
        if base is None:
            parts.append(f"<p>{name} : {say('base_year_none', lang)}</p>")
            continue
        zone = ZoneInfo(report.timezone)
        intro = say("base_year_intro", lang).format(
            year=base.year, who=escape(base.set_by),
            at=base.set_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"))
        changes = {c.figure: c for c in base.changes}
        now = m.indicators.ghg.model_dump()
        rows = []
        for figure in _BASE_FIGURES:
            field = figure.removeprefix("ghg.")
            recalculated = (base.recalculated.figures.get(figure)
                            if base.recalculated is not None else None)
            change = changes.get(figure)
            reason = ("<br>".join(escape(_reason_text(base, r, lang)) for r in change.reasons)
                      if change else say("unchanged", lang) if base.recalculated is not None
                      else escape(base.recalculation_error or say("base_year_error", lang)))
            label = say({"scope1_co2e_kg": "scope1"}.get(field, field.removesuffix(
                "_co2e_kg")), lang)
            rows.append(
                f"<tr><td>{escape(label)}</td>"
                + _cell(f"{eq}.base_year.frozen.figures[{figure}]",
                        base.frozen.figures.get(figure), CO2E_DIGITS, lang)
                + _cell(f"{eq}.base_year.recalculated.figures[{figure}]", recalculated,
                        CO2E_DIGITS, lang)
                + f'<td class="reason">{reason}</td>'
                + _cell(f"{eq}.{figure}", now.get(field), CO2E_DIGITS, lang) + "</tr>")
        parts.append(f'<section class="machine"><h3>{name}</h3><p>{intro}</p>'
                     f'<table class="base-year"><tr>{head}</tr>{"".join(rows)}</table>'
                     "</section>")
    return "".join(parts)


def _avoided(report: Report, lang: Lang) -> str:
    """Avoided emissions under every baseline, each named with its status, source and year,
    so that the figure's sensitivity to the baseline shows."""
    head = "".join(f"<th>{say(k, lang)}</th>" for k in (
        "machine", "baseline", "status", "source", "year", "baseline_co2e", "actual_co2e",
        "avoided"))
    rows = []
    for m in report.machines:
        eq = m.equipment.id
        for a in m.indicators.ghg.avoided:
            info = m.baselines.get(a.baseline)
            rows.append(
                f"<tr><td>{escape(_machine_name(m, lang))}</td><td>{escape(a.baseline)}<br>"
                f'<span class="note">{escape(a.baseline_description)}</span></td>'
                f"<td>{say(info.status, lang) if info else say('none', lang)}</td>"
                f"<td>{escape(info.source) if info else say('none', lang)}</td>"
                f'<td class="n">{info.year if info and info.year else say("none", lang)}</td>'
                + _cell(f"{eq}.ghg.avoided[{a.baseline}].baseline_co2e_kg",
                        a.baseline_co2e_kg, CO2E_DIGITS, lang)
                + _cell(f"{eq}.ghg.avoided[{a.baseline}].actual_co2e_kg", a.actual_co2e_kg,
                        CO2E_DIGITS, lang)
                + _cell(f"{eq}.ghg.avoided[{a.baseline}].avoided_co2e_kg#table",
                        a.avoided_co2e_kg, CO2E_DIGITS, lang) + "</tr>")
    if not rows:
        return ""
    return (f'<h2 id="avoided">{say("avoided_table", lang)}</h2>'
            f'<p>{say("avoided_sensitivity", lang)}</p>'
            f'<table class="avoided"><tr>{head}</tr>{"".join(rows)}</table>'
            f'<p class="note">{say("avoided_note", lang)}</p>')


def _charts(report: Report, lang: Lang) -> str:
    per = say("per_day" if report.bucket == "day" else "per_month", lang)
    parts = [f'<h2 id="charts">{say("charts", lang)}</h2>']
    for m in report.machines:
        name = _machine_name(m, lang)
        sources = sorted({s for b in m.energy_buckets for s in b.values},
                         key=list(SOURCE_COLOURS).index)
        title = f"{say('chart_energy', lang)} — {name}, {per}"
        parts.append(f'<section class="machine"><h3>{escape(title)}</h3>' + column_chart(
            title=title, categories=[b.label for b in m.energy_buckets],
            series=[Series(label=say(s, lang), colour=SOURCE_COLOURS[s],
                           values=[b.values.get(s) for b in m.energy_buckets])
                    for s in sources],
            unit="kWh", empty=say("no_data", lang)) + "</section>")
        if m.indicators.dryer is not None or m.indicators.freezer is not None:
            title = f"{say('chart_batches', lang)} — {name}"
            unit = m.batches[0].unit if m.batches else "kWh"
            parts.append(f'<section class="machine"><h3>{escape(title)}</h3>' + bar_chart(
                title=title, unit=unit, colour=BATCH_COLOUR, empty=say("no_data", lang),
                write=lambda v: _significant(v, lang),
                items=[(f"{say('batch', lang)} {b.batch} ({b.product})", b.value)
                       for b in m.batches]) + "</section>")
        if m.band_buckets:
            freezer = m.indicators.freezer
            band = (f" [{number(freezer.band_min_c, digits=0, lang=lang)} ; "
                    f"{number(freezer.band_max_c, digits=0, lang=lang)} °C]" if freezer else "")
            title = f"{say('chart_band', lang)}{band}, {per}"
            parts.append(f'<section class="machine"><h3>{escape(title)}</h3>' + column_chart(
                title=title, categories=[b.label for b in m.band_buckets],
                series=[Series(label=say("band_share", lang), colour=BAND_COLOUR,
                               values=[None if b.values["in_band"] is None
                                       else 100 * b.values["in_band"]
                                       for b in m.band_buckets])],
                unit="%", empty=say("no_data", lang), maximum=100.0) + "</section>")
        if m.indicators.packaging is not None:
            title = f"{say('chart_materials', lang)} — {name}"
            parts.append(f'<section class="machine"><h3>{escape(title)}</h3>' + bar_chart(
                title=title, unit="kgCO2e", colour=MATERIAL_COLOUR, empty=say("no_data", lang),
                write=lambda v: number(v, digits=CO2E_DIGITS, lang=lang),
                items=[(mat.material, mat.co2e_kg)
                       for mat in m.indicators.packaging.materials]) + "</section>")
    return "".join(parts)


def _method(report: Report, lang: Lang) -> str:
    head = "".join(f"<th>{say(k, lang)}</th>" for k in (
        "factor_id", "version", "value", "unit", "source"))
    rows = "".join(
        f"<tr><td>{escape(f.id)}</td><td>{escape(f.version)}</td>"
        f'<td class="n">{number(f.value, digits=4, lang=lang)}</td><td>{escape(f.unit)}</td>'
        f"<td>{escape(f.source)}</td></tr>" for f in report.factors)
    text = say("method_text", lang).format(gwp=escape(report.gwp_report))
    return (f'<h2 id="method">{say("method", lang)}</h2><p>{text}</p>'
            f'<table class="factors"><tr>{head}</tr>{rows}</table>')


def _coverage(report: Report, lang: Lang) -> str:
    head = "".join(f"<th>{say(k, lang)}</th>" for k in (
        "machine", "energy_source", "kwh", "how", "readings", "resets", "rollovers", "covered",
        "evidence"))
    rows, notes = [], []
    for m in report.machines:
        energy, eq = m.indicators.energy, m.equipment.id
        for s in energy.sources:
            rows.append(
                f"<tr><td>{escape(_machine_name(m, lang))}</td><td>{say(s.source, lang)}</td>"
                + _cell(f"{eq}.energy.sources[{s.source}].energy_kwh", s.energy_kwh,
                        KWH_DIGITS, lang)
                + f"<td>{say(s.method, lang)}</td><td class=\"n\">{s.readings}</td>"
                f'<td class="n">{s.resets}</td><td class="n">{s.rollovers}</td>'
                + _cell(f"{eq}.energy.sources[{s.source}].coverage_pct", 100 * s.coverage, 1,
                        lang)
                + f"<td>{say(energy.evidence, lang)}</td></tr>")
            notes += [f"{escape(_machine_name(m, lang))} — {_drop(d, report, lang)}"
                      for d in s.drops]
        if energy.missing:
            notes.append(f"{escape(_machine_name(m, lang))} — {say('missing', lang)} : "
                         f"{escape(', '.join(energy.missing))}")
        notes += [f"{escape(_machine_name(m, lang))} — {escape(n)}" for n in m.indicators.notes]
    note_list = "".join(f"<li>{n}</li>" for n in notes)
    return (f'<h2 id="coverage">{say("coverage", lang)}</h2><table class="coverage">'
            f"<tr>{head}</tr>{''.join(rows)}</table>"
            + (f'<h3>{say("notes", lang)}</h3><ul class="note">{note_list}</ul>'
               if notes else ""))


def _drop(drop: CounterDropOut, report: Report, lang: Lang) -> str:
    """A counter's roll-over or reset, named in the coverage notes (docs/indicators.md)."""
    return escape(say(f"drop_{drop.kind}", lang).format(
        sensor=drop.sensor,
        at=drop.at.astimezone(ZoneInfo(report.timezone)).strftime("%Y-%m-%d %H:%M:%S"),
        before=number(drop.from_value, digits=2, lang=lang),
        after=number(drop.to, digits=2, lang=lang),
        increment=number(drop.increment, digits=2, lang=lang)))


def render_html(report: Report, *, lang: Lang = "fr", footer: str | None = None) -> str:
    """The whole report as one HTML document; `footer` (a published report's id, plain
    text) is printed at the foot of every page."""
    zone = ZoneInfo(report.timezone)
    start = report.period.start.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    end = report.period.end.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    generated = report.generated_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    title = f"{say('title', lang)} — {report.site} — {_period_label(report.period.label, lang)}"
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{say('title', lang)}</h1>"
            f'<p class="meta">{say("site", lang)} : <b>{escape(report.site)}</b> · '
            f'{say("period", lang)} : <b>{escape(_period_label(report.period.label, lang))}</b> '
            f"({start} → {end}, {escape(report.timezone)}) · {say('generated', lang)} "
            f"{generated}</p>"
            + _summary(report, lang) + _inventory(report, lang) + _base_year(report, lang)
            + _avoided(report, lang)
            + oee_section(report, lang, f"{{name}} ({say('packaging', lang)})")
            + dryer_heat_section(report, lang, f"{{name}} ({say('dryer', lang)})")
            + _charts(report, lang) + _method(report, lang)
            + _coverage(report, lang)
            + (f'<footer class="publication">{escape(footer)}</footer>' if footer else "")
            + "</body></html>")
