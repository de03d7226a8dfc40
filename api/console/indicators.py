"""The indicators page: one equipment over a day, a week, a month or a campaign, the figures of
the api's `/indicators` written for an operator (French labels, units, the method and coverage
of each energy figure, the factors behind each emission), and the evaluation report's downloads.

Nothing is computed here: the figures come from the very functions that answer
`GET /api/v1/sites/{site}/equipment/{equipment}/indicators` (and `/campaigns/{id}/indicators`),
the downloads from those of the report and export routes. What each kind of machine shows is
data (`FIGURES`); the words live in `messages/indicators.yaml`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from api.access.people import Person
from api.access.tokens import TokenRole
from api.console.auth import ConsoleRefusal, CurrentPerson
from api.console.i18n import catalogue
from api.console.render import lang_of, page
from api.deps import IDENT, Db, Factors, Gwp, Registry, Settings, Store
from api.periods import Calendar, Period, PeriodError, calendar_period
from api.records.tables import Campaign
from api.reports.exports import ExportFormat
from api.routes import exports as export_routes
from api.routes import indicators as indicator_routes
from api.routes import reports as report_routes
from api.schemas import IndicatorsOut
from api.sites import EquipmentInfo, SiteRegistry
from telemetry.site import EquipmentKind

router = APIRouter()


@dataclass(frozen=True, slots=True)
class Figure:
    """One figure of a machine's block of `IndicatorsOut`: its unit as written, its decimals,
    a factor applied before writing it (100 for a rate shown in %), and the message key of
    what an empty value means."""

    key: str
    unit: str
    digits: int
    scale: float = 1.0
    empty: str = "not_computed"


FIGURES: dict[EquipmentKind, tuple[Figure, ...]] = {
    EquipmentKind.DRYER: (
        Figure("kwh_per_t_water", "kWh/t", 0, empty="no_dryer_batch"),
        Figure("purchased_kwh_per_t_water", "kWh/t", 0, empty="no_dryer_batch"),
        Figure("kwh_per_t_dry_matter", "kWh/t", 0, empty="no_dryer_batch"),
        Figure("co2e_kg_per_t_water", "kg CO₂e/t", 2, empty="no_dryer_batch"),
        Figure("co2e_kg_per_t_dry_matter", "kg CO₂e/t", 2, empty="no_dryer_batch"),
        Figure("metered_energy_per_latent_heat", "×", 2, empty="no_dryer_batch"),
        Figure("air_side.heat_taken_up_kwh", "kWh", 0, empty="no_air_side"),
        Figure("air_side.ambient_heat_kwh", "kWh", 0, empty="no_air_side"),
        Figure("air_side.ambient_share", "%", 0, scale=100, empty="no_air_side"),
        Figure("air_side.water_taken_up_kg", "kg", 0, empty="no_air_side"),
        Figure("water_evaporated_kg", "kg", 0, empty="no_dryer_batch"),
        Figure("dry_matter_kg", "kg", 0, empty="no_dryer_batch"),
        Figure("total_energy_kwh", "kWh", 1),
        Figure("purchased_energy_kwh", "kWh", 1),
        Figure("electricity_used_kwh", "kWh", 1),
        Figure("solar_heat_kwh", "kWh", 1),
        Figure("autonomy_rate", "%", 1, scale=100, empty="no_energy"),
    ),
    EquipmentKind.FREEZER: (
        Figure("kwh_per_kg_frozen", "kWh/kg", 3, empty="no_freezer_batch"),
        Figure("frozen_kg", "kg", 0, empty="no_freezer_batch"),
        Figure("share_of_time_in_band", "%", 1, scale=100, empty="no_band"),
        Figure("door_open_s", "min", 1, scale=1 / 60, empty="no_door"),
        Figure("refrigerant_leak_co2e_kg", "kg CO₂e", 2),
    ),
    EquipmentKind.PACKAGING: (
        Figure("kwh_per_1000_units", "kWh/1000 u", 2, empty="no_units"),
        Figure("material_co2e_kg_per_unit", "kg CO₂e/u", 4, empty="no_material_lot"),
        Figure("units_packed", "u", 0, empty="no_units"),
        Figure("units_rejected", "u", 0, empty="no_units"),
        Figure("oee_availability", "%", 1, scale=100, empty="no_planned_time"),
        Figure("quality", "%", 1, scale=100, empty="no_units"),
        Figure("performance", "%", 1, scale=100, empty="no_nominal_rate"),
        Figure("oee", "%", 1, scale=100, empty="no_nominal_rate"),
    ),
    EquipmentKind.OTHER: (),
}

PeriodKind = Literal["day", "week", "month", "campaign"]
PERIOD_KINDS: tuple[PeriodKind, ...] = ("day", "week", "month", "campaign")


@dataclass(frozen=True, slots=True)
class Shown:
    """A figure ready for the template."""

    figure: Figure
    value: float | None


def machine_block(out: IndicatorsOut) -> Any:
    return out.dryer or out.freezer or out.packaging


def shown_figures(out: IndicatorsOut, kind: EquipmentKind) -> list[Shown]:
    block = machine_block(out)
    if block is None:
        return []
    shown: list[Shown] = []
    for figure in FIGURES.get(kind, ()):
        raw = block
        for part in figure.key.split("."):  # `air_side.…`: a figure of a nested block
            raw = None if raw is None else getattr(raw, part)
        shown.append(Shown(figure=figure,
                           value=None if raw is None else float(raw) * figure.scale))
    return shown


def visible_equipment(registry: SiteRegistry, person: Person) -> list[EquipmentInfo]:
    return [eq for (site, _), eq in sorted(registry.equipment.items()) if person.may_see(site)]


def checked_equipment(request: Request, registry: SiteRegistry, person: Person, site: str,
                      equipment: str) -> EquipmentInfo:
    found = registry.get(site, equipment)
    if found is None or not person.may_see(site):
        # The same answer for another site's machine and for one that does not exist.
        raise ConsoleRefusal(request, 404, "common.not_found")
    return found


def local_today(timezone: str) -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(timezone)).date()


def _label(lang: Literal["fr", "en"]) -> Any:
    """`label(prefix, key)`: the message `indicators.<prefix>_<key>` when there is one, else
    the key itself (a new energy source or activity shows, untranslated, rather than fail)."""
    words = catalogue()

    def label(prefix: str, key: str) -> str:
        found = words.get(f"indicators.{prefix}_{key}")
        return found[lang] if found else key

    return label


def _campaigns(db: Db, eq: EquipmentInfo) -> list[Campaign]:
    return list(db.scalars(
        select(Campaign).filter_by(site=eq.site, equipment=eq.id, voided_at=None)
        .order_by(Campaign.started_at.desc())))


def _calendar(kind: PeriodKind, on: date, timezone: str) -> Period:
    try:
        return calendar_period(kind=Calendar(kind), containing=on, timezone=timezone)
    except PeriodError as exc:
        raise HTTPException(422, str(exc)) from None


_Site = Annotated[str, Path(pattern=IDENT)]
_Kind = Annotated[PeriodKind, Query(alias="periode")]
_Date = Annotated[date | None, Query(alias="date")]
_CampaignId = Annotated[int | None, Query(alias="campagne", ge=1)]


@router.get("/indicateurs", response_class=HTMLResponse)
def choose(request: Request, person: CurrentPerson, registry: Registry) -> Response:
    """The first machine the person may see, today; the page's form picks another."""
    machines = visible_equipment(registry, person)
    if not machines:
        return page(request, "indicators.html", nav="indicators", machines=[], eq=None,
                    out=None, error=None, figures=[], campaigns=[], kinds=PERIOD_KINDS,
                    kind="day", day=None, campaign_id=None, downloads=None,
                    label=_label(lang_of(request)), zone=None)
    return RedirectResponse(f"/indicateurs/{machines[0].site}/{machines[0].id}", 303)


@router.get("/indicateurs/choisir")
def picked(request: Request, person: CurrentPerson, registry: Registry,
           machine: Annotated[str, Query(max_length=130)], kind: _Kind = "day",
           day: _Date = None,
           campaign: Annotated[str, Query(alias="campagne", max_length=12)] = "") -> Response:
    """The page's form (a GET, so that the address can be bookmarked) sent to the page."""
    site, _, equipment = machine.partition("/")
    eq = checked_equipment(request, registry, person, site, equipment)
    query: dict[str, str] = {"periode": kind}
    if day is not None:
        query["date"] = day.isoformat()
    if kind == "campaign" and campaign.isdigit():
        query["campagne"] = campaign
    return RedirectResponse(f"/indicateurs/{eq.site}/{eq.id}?{urlencode(query)}", 303)


@router.get("/indicateurs/{site}/{equipment}", response_class=HTMLResponse)
def indicators_page(
    request: Request, person: CurrentPerson, registry: Registry, store: Store, db: Db,
    factors: Factors, gwp: Gwp, settings: Settings, site: _Site,
    equipment: Annotated[str, Path(pattern=IDENT)], kind: _Kind = "day", day: _Date = None,
    campaign_id: _CampaignId = None,
) -> HTMLResponse:
    """The figures of one machine over the period asked."""
    eq = checked_equipment(request, registry, person, site, equipment)
    on = day or local_today(eq.timezone)
    campaigns = _campaigns(db, eq)
    out: IndicatorsOut | None = None
    error: str | None = None
    period: Period | None = None
    try:
        if kind == "campaign":
            if campaign_id is None:
                raise HTTPException(422, "choose a campaign")
            out = indicator_routes.campaign_indicators(
                request=request, equipment=eq, store=store, db=db, factors=factors, gwp=gwp,
                settings=settings, campaign_id=campaign_id)
        else:
            period = _calendar(kind, on, eq.timezone)
            out = indicator_routes.indicators(
                request=request, equipment=eq, store=store, db=db, factors=factors, gwp=gwp,
                settings=settings, period=period)
    except HTTPException as exc:
        if exc.status_code == 404:
            raise
        error = str(exc.detail)
    downloads = None
    if period is not None:
        query = f"periode={kind}&date={on.isoformat()}"
        downloads = {
            "pdf": (f"/indicateurs/{site}/rapport/evaluation.pdf?{query}"
                    if person.role in (TokenRole.ADMIN, TokenRole.EVALUATOR) else None),
            "xlsx": f"/indicateurs/{site}/{equipment}/export.xlsx?{query}",
            "csv": f"/indicateurs/{site}/{equipment}/export.csv?{query}",
        }
    return page(request, "indicators.html", nav="indicators",
                machines=visible_equipment(registry, person), eq=eq, out=out, error=error,
                figures=shown_figures(out, eq.kind) if out is not None else [],
                campaigns=campaigns, kinds=PERIOD_KINDS, kind=kind, day=on,
                campaign_id=campaign_id, downloads=downloads, label=_label(lang_of(request)),
                zone=ZoneInfo(eq.timezone))


_CalendarKind = Annotated[Literal["day", "week", "month"], Query(alias="periode")]


@router.get("/indicateurs/{site}/rapport/evaluation.pdf")
def report_pdf(request: Request, person: CurrentPerson, registry: Registry, store: Store,
               db: Db, factors: Factors, gwp: Gwp, settings: Settings, site: _Site,
               kind: _CalendarKind, day: Annotated[date, Query(alias="date")]) -> Response:
    """The evaluation report of the site as PDF: evaluators and admins, as for the api."""
    zones = sorted({eq.timezone for eq in visible_equipment(registry, person)
                    if eq.site == site})
    if not zones:
        raise ConsoleRefusal(request, 404, "common.not_found")
    if person.role not in (TokenRole.ADMIN, TokenRole.EVALUATOR):
        raise ConsoleRefusal(request, 403, "common.forbidden")
    return report_routes.evaluation_report(
        request=request, site=site, period=_calendar(kind, day, zones[0]), registry=registry,
        store=store, db=db, factors=factors, gwp=gwp, settings=settings, fmt="pdf",
        lang=lang_of(request))


@router.get("/indicateurs/{site}/{equipment}/export.{fmt}")
def export(request: Request, person: CurrentPerson, registry: Registry, store: Store, db: Db,
           factors: Factors, gwp: Gwp, settings: Settings, site: _Site,
           equipment: Annotated[str, Path(pattern=IDENT)],
           fmt: Annotated[Literal["xlsx", "csv"], Path()], kind: _CalendarKind,
           day: Annotated[date, Query(alias="date")]) -> Response:
    """The machine's indicators for the period as a spreadsheet, from the api's export."""
    eq = checked_equipment(request, registry, person, site, equipment)
    return export_routes.export_indicators(
        request=request, site=site, fmt=ExportFormat(fmt), registry=registry, store=store,
        db=db, factors=factors, gwp=gwp, settings=settings,
        period=_calendar(kind, day, eq.timezone), equipment=[eq.id])
