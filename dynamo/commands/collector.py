"""`dynamo collector …`: MQTT → InfluxDB, and its dead letters."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import click

from dynamo.commands.signals import wait_for_signal

_DEAD_LETTERS = click.option(
    "--dead-letters", type=click.Path(path_type=Path),
    default=Path("var/collector/dead-letters.sqlite"), show_default=True,
    help="SQLite file of the messages and points set aside.")
_EXISTING_DEAD_LETTERS = click.option(
    "--dead-letters", type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=Path("var/collector/dead-letters.sqlite"), show_default=True,
    help="The collector's SQLite file of the messages and points set aside.")


@click.group()
def collector() -> None:
    """The collector (MQTT → InfluxDB)."""


@collector.command("run")
@click.option("--client-id", default="dynamo-collector", show_default=True,
              help="Keep it across restarts: the broker keeps this id's session.")
@click.option("--share-group", default=None, help="Share the load with other collectors.")
@click.option("--site", default="+", show_default=True,
              help="Collect one site only (default: every site).")
@_DEAD_LETTERS
@click.option("--receive-maximum", type=click.IntRange(1, 65535), default=2000,
              show_default=True, help="Messages held at most before InfluxDB confirms them.")
@click.option("--batch-points", type=click.IntRange(1), default=5000, show_default=True)
@click.option("--flush-interval", type=click.FloatRange(0.01), default=0.2, show_default=True,
              help="Seconds a partial batch waits for more points.")
@click.option("--writers", type=click.IntRange(1, 16), default=1, show_default=True,
              help="Concurrent InfluxDB writes.")
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=None,
              help="Serve Prometheus /metrics on this port.")
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
def collector_run(client_id: str, share_group: str | None, site: str, dead_letters: Path,
                  receive_maximum: int, batch_points: int, flush_interval: float, writers: int,
                  metrics_port: int | None, metrics_host: str) -> None:
    """Write every gateway's telemetry to InfluxDB until stopped (settings: DYNAMO_* env)."""
    from collector.deadletters import DeadLetterStore
    from collector.metrics import serve_metrics
    from collector.service import Collector
    from telemetry.influx.setup import ensure_database
    from telemetry.settings import ServiceSettings

    settings = ServiceSettings()
    influx = settings.influx()
    ensure_database(influx)
    service = Collector(broker=settings.broker(), influx=influx,
                        dead_letters=DeadLetterStore(dead_letters), client_id=client_id,
                        share_group=share_group, site=site, receive_maximum=receive_maximum,
                        batch_points=batch_points, flush_interval_s=flush_interval,
                        writers=writers)
    if metrics_port is not None:
        serve_metrics(service, port=metrics_port, host=metrics_host)
    # What start-up created lives as long as the process: out of the garbage collector's sight,
    # its full collections stop walking it again and again while messages stream through.
    gc.freeze()
    service.start()
    wait_for_signal()
    service.stop()


@collector.group("dead-letters")
def dead_letters_group() -> None:
    """Messages and points the collector set aside, with the reason."""


@dead_letters_group.command("list")
@_EXISTING_DEAD_LETTERS
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
def dead_letters_list(dead_letters: Path, limit: int) -> None:
    """Print id, time, topic, reason and the start of the payload, oldest first."""
    from collector.deadletters import DeadLetterStore
    from collector.replay import describe

    store = DeadLetterStore(dead_letters)
    for letter in store.entries(limit=limit):
        click.echo(describe(letter))
    click.echo(f"{store.count()} dead letter(s)", err=True)


@dead_letters_group.command("replay")
@_EXISTING_DEAD_LETTERS
@click.option("--id", "ids", type=int, multiple=True, help="Only these letters (repeatable).")
@click.option("--limit", type=click.IntRange(1), default=1000, show_default=True)
def dead_letters_replay(dead_letters: Path, ids: tuple[int, ...], limit: int) -> None:
    """Validate the letters again and write those that pass (settings: DYNAMO_* env).

    Written letters are removed; the others stay with their reason. Exit status 1 when some
    letters were kept.
    """
    from collector.deadletters import DeadLetterStore
    from collector.replay import replay
    from telemetry.settings import ServiceSettings

    store = DeadLetterStore(dead_letters)
    report = replay(store=store, influx=ServiceSettings().influx(), ids=list(ids) or None,
                    limit=limit)
    for letter_id in report.written:
        click.echo(f"{letter_id}\twritten")
    for letter_id, reason in report.kept.items():
        click.echo(f"{letter_id}\tkept\t{reason}")
    click.echo(f"{len(report.written)} written, {len(report.kept)} kept", err=True)
    if report.kept:
        sys.exit(1)
