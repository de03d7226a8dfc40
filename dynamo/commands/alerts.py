"""`dynamo alerts …`: SMS alerting (rules check, the service, history, maintenance silences)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import click

from dynamo.commands.logs import service_logging
from dynamo.commands.signals import wait_for_signal

DEFAULT_DB = Path("var/alerting/alerts.sqlite")


@click.group()
def alerts() -> None:
    """SMS alerting."""


@alerts.command("check")
@click.argument("file", type=click.Path(path_type=Path))
def alerts_check(file: Path) -> None:
    """Validate an alert rules file; every error with its file, line and path."""
    from alerting.rules import load_alert_config
    from telemetry.errors import ConfigError

    try:
        config = load_alert_config(file)
    except ConfigError as exc:
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        raise SystemExit(1) from None
    click.echo(f"{file}: OK ({len(config.rules)} rules, {len(config.contacts)} contacts)")


@alerts.command("run")
@click.option("--rules", "rules_file", type=click.Path(path_type=Path), required=True)
@click.option("--db", type=click.Path(path_type=Path), default=DEFAULT_DB, show_default=True)
@click.option("--smsd-config", type=click.Path(path_type=Path), default=None,
              help="gammu-smsd configuration (files service): SMS out first, replies in.")
@click.option("--client-id", default="dynamo-alerting", show_default=True)
@click.option("--grafana-port", type=int, default=None,
              help="Listen for Grafana alert webhooks on 127.0.0.1:PORT (POST /grafana).")
@click.option("--grafana-token", envvar="DYNAMO_GRAFANA_WEBHOOK_TOKEN", default=None,
              help="Bearer token Grafana must send (env DYNAMO_GRAFANA_WEBHOOK_TOKEN).")
@click.option("--annotations/--no-annotations", default=True,
              help="Write alert events to InfluxDB (DYNAMO_INFLUX_*).")
@click.option("--session-expiry-s", type=click.IntRange(min=0), default=3600, show_default=True,
              help="Keep the broker session this long across a reconnection (0: none), so "
                   "that no edge alert handed over meanwhile is lost.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=9733, show_default=True,
              envvar="DYNAMO_ALERTING_METRICS_PORT",
              help="Serve Prometheus /metrics on this port (0: not at all).")
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
def alerts_run(rules_file: Path, db: Path, smsd_config: Path | None, client_id: str,
               grafana_port: int | None, grafana_token: str | None, annotations: bool,
               session_expiry_s: int, metrics_port: int, metrics_host: str) -> None:
    """Evaluate the rules on the broker's stream until stopped (settings: DYNAMO_* env)."""
    service_logging("alerting")
    from alerting.annotations import InfluxAnnotations
    from alerting.channels import build_notifier
    from alerting.engine import AlertEvent, Engine
    from alerting.gammu import GammuInbox, GammuNotifier
    from alerting.grafana import GrafanaReceiver
    from alerting.metrics import registry_for
    from alerting.rules import load_alert_config
    from alerting.service import AlertService
    from alerting.store import AlertStore
    from telemetry.errors import ConfigError
    from telemetry.metrics import serve_registry
    from telemetry.settings import ServiceSettings

    settings = ServiceSettings()
    try:
        config = load_alert_config(rules_file)
    except ConfigError as exc:
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        raise SystemExit(1) from None
    notifier = build_notifier(config=config, base_dir=rules_file.parent, smsd_config=smsd_config)
    modems = [n for n in notifier.notifiers if isinstance(n, GammuNotifier)]
    sinks: list[Callable[[AlertEvent], None]] = []
    if annotations:
        sinks.append(InfluxAnnotations(influx=settings.influx()))

    def on_event(event: AlertEvent) -> None:
        for sink in sinks:
            sink(event)

    engine = Engine(config=config, store=AlertStore(db), notifier=notifier, on_event=on_event)
    inbox = GammuInbox(inbox=_inbox_of(modems[0].config)) if modems else None
    service = AlertService(engine=engine, broker=settings.broker(), inbox=inbox,
                           client_id=client_id, session_expiry_s=session_expiry_s)
    sinks.append(service.publish_event)
    receiver = GrafanaReceiver(engine=engine, port=grafana_port, token=grafana_token) \
        if grafana_port is not None else None
    stop_metrics = serve_registry(registry_for(service, broker=settings.broker()),
                                  port=metrics_port, host=metrics_host,
                                  service="alerting") if metrics_port else None
    service.start()
    if receiver is not None:
        receiver.start()
        click.echo(f"Grafana webhook: {receiver.url}")
    wait_for_signal()
    if receiver is not None:
        receiver.stop()
    service.stop()
    if stop_metrics is not None:
        stop_metrics()


@alerts.command("edge")
@click.option("--rules", "rules_file", type=click.Path(path_type=Path), required=True)
@click.option("--gateway-config", type=click.Path(path_type=Path), required=True,
              help="The gateway's configuration: its equipment, local broker (with "
                   "`mirror_to_local: true`) and central broker credentials.")
@click.option("--db", type=click.Path(path_type=Path), required=True,
              help="The edge's own alert store (SQLite), on the gateway.")
@click.option("--smsd-config", type=click.Path(path_type=Path), required=True,
              help="gammu-smsd configuration of the gateway's modem (files service).")
@click.option("--tick-s", type=click.FloatRange(min=0.05, max=10), default=1.0,
              show_default=True)
def alerts_edge(rules_file: Path, gateway_config: Path, db: Path, smsd_config: Path,
                tick_s: float) -> None:
    """Edge alerting on a gateway: its equipment's rules, SMS through its modem while its
    uplink is down, handed over to the central engine when it returns."""
    service_logging("alerting-edge")
    from alerting.edge import EdgeAlerting
    from alerting.gammu import GammuInbox, GammuNotifier
    from alerting.notifier import FallbackNotifier
    from alerting.rules import load_alert_config
    from alerting.store import AlertStore
    from telemetry.errors import ConfigError
    from telemetry.loader import load_gateway_config

    try:
        config = load_alert_config(rules_file)
        gateway = load_gateway_config(gateway_config)
    except ConfigError as exc:
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        raise SystemExit(1) from None
    # Only the modem: with the uplink down, no HTTP provider is reachable anyway.
    notifier = FallbackNotifier(notifiers=[GammuNotifier(config=smsd_config)])
    try:
        edge = EdgeAlerting(config=config, gateway=gateway, store=AlertStore(db),
                            notifier=notifier, inbox=GammuInbox(inbox=_inbox_of(smsd_config)),
                            tick_s=tick_s)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    edge.start()
    if edge.ready.wait(timeout=30):
        click.echo(f"edge alerting ready: {gateway.gateway}, "
                   f"{len(edge.engine.config.rules)} rule(s)", err=True)
    wait_for_signal()
    edge.stop()


def _inbox_of(smsd_config: Path) -> Path:
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    parser.read(smsd_config)
    return Path(parser["smsd"]["inboxpath"])


@alerts.command("history")
@click.option("--db", type=click.Path(path_type=Path), default=DEFAULT_DB, show_default=True)
@click.option("--equipment", default=None)
@click.option("--limit", default=20, show_default=True)
def alerts_history(db: Path, equipment: str | None, limit: int) -> None:
    """Print recent alerts with their notifications and acknowledgements, as JSON lines."""
    from alerting.store import AlertStore

    store = AlertStore(db)
    for row in store.history(equipment=equipment, limit=limit):
        click.echo(json.dumps(asdict(row), default=str, ensure_ascii=False))


@alerts.command("silence")
@click.option("--db", type=click.Path(path_type=Path), default=DEFAULT_DB, show_default=True)
@click.option("--site", required=True)
@click.option("--equipment", required=True)
@click.option("--minutes", type=click.FloatRange(min=1, max=30 * 24 * 60), required=True)
@click.option("--reason", required=True)
@click.option("--by", required=True, help="Who asked for it.")
def alerts_silence(db: Path, site: str, equipment: str, minutes: float, reason: str,
                   by: str) -> None:
    """Maintenance: no SMS for one equipment for a while (alerts are still recorded)."""
    from alerting.store import AlertStore

    now_ms = int(time.time() * 1000)
    silence_id = AlertStore(db).add_silence(site=site, equipment=equipment, start_ms=now_ms,
                                            until_ms=now_ms + int(minutes * 60_000),
                                            reason=reason, created_by=by)
    click.echo(f"silence {silence_id}: {site}/{equipment} for {minutes:g} min")
