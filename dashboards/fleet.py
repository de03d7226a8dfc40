"""The fleet page: gateways online, their buffers, sequence gaps, failed readings, dead letters."""

from __future__ import annotations

from dashboards import query
from dashboards.dashboard import CustomVariable, Dashboard, Section
from dashboards.inventory import SiteInfo
from dashboards.labels import DESCRIPTIONS, ONLINE_TEXTS, TITLES, Lang
from dashboards.machine import dashboard_uid
from dashboards.measurements import COLLECTOR_STATUS, GATEWAY_STATUS, READINGS, SEQUENCE_EVENTS
from dashboards.panel import Panel, PanelType, Target, state_mappings
from telemetry.influx.influxql import quote_ident

GATEWAY_VARIABLE = "gateway"


def _per_gateway(site: SiteInfo, measurement: str, select: str,
                 where: tuple[str, ...] = ()) -> str:
    return query.per_gateway(site=site.id, measurement=measurement, select=select,
                             where=where, gateway_variable=GATEWAY_VARIABLE)


def fleet_dashboard(site: SiteInfo, lang: Lang) -> Dashboard:
    """Gateways and collection health of one site."""
    q = quote_ident
    online = _per_gateway(site, GATEWAY_STATUS, f"last({q('online')})")
    buffer = _per_gateway(site, GATEWAY_STATUS, f"last({q('buffer_depth')})")
    devices = _per_gateway(site, GATEWAY_STATUS,
                           f"last({q('devices_ok')}) AS {q('ok')}, last({q('devices')}) AS "
                           f"{q('polled')}")
    rate = _per_gateway(site, READINGS, f"count({q('value')})")
    gaps = _per_gateway(site, SEQUENCE_EVENTS, f"sum({q('count')})",
                        where=(query.tag_is("kind", "lost"),))  # a gap a backlog fills is no loss
    repeats = _per_gateway(site, SEQUENCE_EVENTS, f"sum({q('count')})",
                           where=(query.tag_is("kind", "repeat"),))
    failed = _per_gateway(site, READINGS, f"count({q('reason')})",
                          where=(query.tag_is("quality", "bad"),))
    # The collector serves every site: its status carries no site tag.
    dead = (f"SELECT non_negative_difference(last({q('dead_letters')})) "
            f"FROM {q(COLLECTOR_STATUS)} WHERE {query.TIME_FILTER} "
            f"GROUP BY time({query.INTERVAL}), {q('collector')} fill(none)")
    sections = [
        Section(TITLES["gateways"](lang), [
            Panel(PanelType.STATE_TIMELINE, TITLES["gateway_online"](lang),
                  [Target(online, alias="$tag_gateway")],
                  mappings=state_mappings(ONLINE_TEXTS, lang), width=24, height=6,
                  description=DESCRIPTIONS["status"](lang)),
            Panel(PanelType.TIMESERIES, TITLES["buffer_depth"](lang),
                  [Target(buffer, alias="$tag_gateway")], width=12),
            Panel(PanelType.BARS, TITLES["readings_rate"](lang),
                  [Target(rate, alias="$tag_gateway")], width=12),
            Panel(PanelType.TIMESERIES, TITLES["devices_ok"](lang),
                  [Target(devices, alias="$tag_gateway: $col")], width=24, height=6,
                  description=DESCRIPTIONS["devices_ok"](lang)),
        ]),
        Section(TITLES["sequence_gaps"](lang), [
            Panel(PanelType.BARS, TITLES["sequence_gaps"](lang),
                  [Target(gaps, alias="$tag_gateway", sparse=True)], width=12),
            Panel(PanelType.BARS, TITLES["sequence_repeats"](lang),
                  [Target(repeats, alias="$tag_gateway", sparse=True)], width=12),
            Panel(PanelType.BARS, TITLES["bad_readings"](lang),
                  [Target(failed, alias="$tag_gateway", sparse=True)], width=12),
            Panel(PanelType.BARS, TITLES["dead_letters"](lang),
                  [Target(dead, alias="$tag_collector", sparse=True)], width=12,
                  description=DESCRIPTIONS["dead_letters"](lang)),
        ]),
    ]
    return Dashboard(
        uid=dashboard_uid(site.id, "fleet"), site=site.id,
        title=f"{TITLES['fleet'](lang)} — {site.id}", timezone=site.timezone, tags=("fleet",),
        sections=sections,
        variables=(CustomVariable(GATEWAY_VARIABLE, TITLES["gateways"](lang), site.gateways),),
        time_from="now-24h")
