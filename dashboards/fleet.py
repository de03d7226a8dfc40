"""The fleet pages: gateways online, their buffers, sequence gaps, failed readings, dead letters
from InfluxDB; and the services' own metrics from Prometheus (docs/operations.md)."""

from __future__ import annotations

from dashboards import query
from dashboards.dashboard import CustomVariable, Dashboard, Section
from dashboards.inventory import SiteInfo
from dashboards.labels import DESCRIPTIONS, ONLINE_TEXTS, TITLES, Label, Lang
from dashboards.machine import dashboard_uid
from dashboards.measurements import COLLECTOR_STATUS, GATEWAY_STATUS, READINGS, SEQUENCE_EVENTS
from dashboards.panel import Panel, PanelType, PromTarget, Target, Threshold, state_mappings
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
    void = _per_gateway(site, SEQUENCE_EVENTS, f"sum({q('count')})",
                        where=(query.tag_is("kind", "void"),))
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
            Panel(PanelType.BARS, TITLES["sequence_void"](lang),
                  [Target(void, alias="$tag_gateway", sparse=True)], width=12,
                  description=DESCRIPTIONS["sequence_void"](lang)),
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


# The Prometheus fleet page: the services' own metrics (docs/operations.md), beside the
# InfluxDB page above. Its words live here, with the page (French first, English by --lang).
_WORDS: dict[str, Label] = {
    "title": Label("Flotte (Prometheus)", "Fleet (Prometheus)"),
    "gateways": Label("Passerelles", "Gateways"),
    "lag": Label("Retard de la donnée stockée (s)", "Lag of the data stored (s)"),
    "lag_help": Label("Maintenant moins l'horodatage du dernier message stocké de chaque "
                      "passerelle : monte pendant une panne (InfluxDB, courtier, passerelle), "
                      "redescend quand l'arriéré est écrit.",
                      "Now minus the timestamp of each gateway's newest message stored: rises "
                      "during an outage (InfluxDB, broker, gateway), falls once the backlog "
                      "is written."),
    "spool": Label("Messages en attente sur la passerelle", "Messages spooled on the gateway"),
    "spool_age": Label("Âge du plus ancien message en attente (s)",
                       "Age of the oldest spooled message (s)"),
    "devices_up": Label("Appareils qui répondent", "Devices answering"),
    "poll_errors": Label("Interrogations en échec par seconde", "Failed polls per second"),
    "collection": Label("Collecte", "Collection"),
    "points": Label("Points écrits par seconde", "Points written per second"),
    "retries": Label("Nouvelles tentatives d'écriture InfluxDB",
                     "InfluxDB write retries"),
    "dead_letters": Label("Messages mis de côté, par raison", "Messages set aside, by reason"),
    "since_write": Label("Depuis la dernière écriture (s)", "Since the last write (s)"),
    "services": Label("Api et alertes", "Api and alerting"),
    "api_requests": Label("Requêtes de l'api par statut (par seconde)",
                          "Api requests by status (per second)"),
    "api_latency": Label("Temps de réponse de l'api, 95e centile (s)",
                         "Api response time, 95th percentile (s)"),
    "sms": Label("SMS par résultat", "SMS by result"),
    "certificates": Label("Jours avant l'expiration des certificats",
                          "Days before certificates expire"),
}
_RATE = "[$__rate_interval]"


def prometheus_fleet_dashboard(site: SiteInfo, lang: Lang) -> Dashboard:
    """Gateways, collection, api and alerting of one site, from Prometheus."""
    w = {key: label(lang) for key, label in _WORDS.items()}
    mine = f'site="{site.id}", gateway=~"${GATEWAY_VARIABLE}"'
    sections = [
        Section(w["gateways"], [
            Panel(PanelType.TIMESERIES, w["lag"], [PromTarget(
                f"dynamo_collector_gateway_lag_seconds{{{mine}}}", "{{gateway}}")],
                unit="s", width=24, description=w["lag_help"], thresholds=(Threshold(300),)),
            Panel(PanelType.TIMESERIES, w["spool"], [PromTarget(
                f"dynamo_gateway_spool_messages{{{mine}}}", "{{gateway}}")]),
            Panel(PanelType.TIMESERIES, w["spool_age"], [PromTarget(
                f"dynamo_gateway_spool_oldest_age_seconds{{{mine}}}", "{{gateway}}")],
                unit="s"),
            Panel(PanelType.TIMESERIES, w["devices_up"], [PromTarget(
                f"dynamo_gateway_device_up{{{mine}}}", "{{gateway}} {{device}}")]),
            Panel(PanelType.TIMESERIES, w["poll_errors"], [PromTarget(
                f'sum by (gateway, device) (rate(dynamo_gateway_polls_total{{{mine}, '
                f'result="error"}}{_RATE}))', "{{gateway}} {{device}}")]),
        ]),
        Section(w["collection"], [
            Panel(PanelType.TIMESERIES, w["points"], [PromTarget(
                f"sum(rate(dynamo_collector_points_written_total{_RATE}))", "points")]),
            Panel(PanelType.BARS, w["retries"], [PromTarget(
                f"sum(increase(dynamo_collector_write_retries_total{_RATE}))", "retries")]),
            Panel(PanelType.BARS, w["dead_letters"], [PromTarget(
                f"sum by (reason) (increase(dynamo_collector_dead_letters_total{_RATE}))",
                "{{reason}}")]),
            Panel(PanelType.STAT, w["since_write"], [PromTarget(
                "max(dynamo_collector_seconds_since_last_write)", instant=True)],
                unit="s", thresholds=(Threshold(120),)),
        ]),
        Section(w["services"], [
            Panel(PanelType.TIMESERIES, w["api_requests"], [PromTarget(
                f"sum by (status) (rate(dynamo_api_requests_total{_RATE}))", "{{status}}")]),
            Panel(PanelType.TIMESERIES, w["api_latency"], [PromTarget(
                "histogram_quantile(0.95, sum by (le) "
                f"(rate(dynamo_api_request_duration_seconds_bucket{_RATE})))", "p95")],
                unit="s"),
            Panel(PanelType.BARS, w["sms"], [PromTarget(
                f"sum by (result) (increase(dynamo_alerting_notifications_total{_RATE}))",
                "{{result}}")]),
            Panel(PanelType.STAT, w["certificates"], [PromTarget(
                "min by (job, role) ((dynamo_certificate_expiry_timestamp_seconds - time()) "
                "/ 86400)", "{{job}} {{role}}", instant=True)],
                thresholds=(Threshold(30, "orange"),), decimals=0),
        ]),
    ]
    return Dashboard(
        uid=dashboard_uid(site.id, "fleet-prometheus"), site=site.id,
        title=f"{w['title']} — {site.id}", timezone=site.timezone, tags=("fleet",),
        sections=sections,
        variables=(CustomVariable(GATEWAY_VARIABLE, TITLES["gateways"](lang), site.gateways),),
        time_from="now-6h")
