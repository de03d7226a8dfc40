"""`dynamo collector …`: MQTT → InfluxDB, and its dead letters."""

from __future__ import annotations

import gc
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dynamo.commands.logs import service_logging
from dynamo.commands.signals import wait_for_signal

if TYPE_CHECKING:
    from collector.service import Collector

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
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=9732, show_default=True,
              envvar="DYNAMO_COLLECTOR_METRICS_PORT",
              help="Serve Prometheus /metrics on this port (0: not at all).")
@click.option("--metrics-host", default="127.0.0.1", show_default=True,
              help="Loopback by default; an internal interface for a remote Prometheus.")
@click.option("--site-configs", type=click.Path(path_type=Path, file_okay=False, exists=True),
              envvar="DYNAMO_SITE_CONFIGS", default=None,
              help="Folder of the gateway configurations: store only what they declare "
                   "(reloaded on SIGHUP and when a file changes). Without: no such check.")
@click.option("--max-future-skew", type=click.FloatRange(0), default=300.0, show_default=True,
              envvar="DYNAMO_COLLECTOR_MAX_FUTURE_S",
              help="Seconds a timestamp may be ahead of our clock (with --site-configs).")
@click.option("--config-check-interval", type=click.FloatRange(0.1), default=10.0,
              show_default=True, help="Seconds between checks of the configuration files.")
@click.option("--dead-letters-max-count", type=click.IntRange(1), default=100_000,
              show_default=True, help="Letters kept at most; beyond, the oldest are dropped.")
@click.option("--dead-letters-max-mb", type=click.IntRange(1), default=256, show_default=True,
              help="Payload MiB kept at most; beyond, the oldest are dropped.")
@click.option("--acks/--no-acks", default=None,
              help="Publish the end-to-end acknowledgements the gateways' spools wait for "
                   "(default: yes, except with --share-group; --no-acks: the benchmark's "
                   "comparison).")
def collector_run(client_id: str, share_group: str | None, site: str, dead_letters: Path,
                  receive_maximum: int, batch_points: int, flush_interval: float, writers: int,
                  metrics_port: int, metrics_host: str, site_configs: Path | None,
                  max_future_skew: float, config_check_interval: float,
                  dead_letters_max_count: int, dead_letters_max_mb: int,
                  acks: bool | None) -> None:
    """Write every gateway's telemetry to InfluxDB until stopped (settings: DYNAMO_* env)."""
    service_logging("collector")
    from collector.deadletters import DeadLetterStore
    from collector.metrics import serve_metrics
    from collector.service import Collector
    from telemetry.influx.setup import ensure_database
    from telemetry.settings import ServiceSettings

    settings = ServiceSettings()
    influx = settings.influx()
    ensure_database(influx)
    store = DeadLetterStore(dead_letters, max_count=dead_letters_max_count,
                            max_bytes=dead_letters_max_mb * 1024 * 1024)
    broker = settings.broker()
    service = Collector(broker=broker, influx=influx,
                        dead_letters=store, client_id=client_id,
                        share_group=share_group, site=site, receive_maximum=receive_maximum,
                        batch_points=batch_points, flush_interval_s=flush_interval,
                        writers=writers, acks=acks)
    stop_watching = _watch_site_configs(service, site_configs, max_future_skew,
                                        config_check_interval)
    if metrics_port:
        serve_metrics(service, port=metrics_port, host=metrics_host, broker=broker)
    # What start-up created lives as long as the process: out of the garbage collector's sight,
    # its full collections stop walking it again and again while messages stream through.
    gc.freeze()
    service.start()
    wait_for_signal()
    stop_watching()
    service.stop()


def _watch_site_configs(service: Collector, directory: Path | None, max_future_s: float,
                        interval_s: float) -> Callable[[], None]:
    """Judge messages by the site configurations, reloaded on SIGHUP or a file's change.

    A configuration that does not load at start stops the collector here (exit 2, every
    issue with file:line); later, a bad one is refused and the one in force kept.
    """
    from collector.admission import SiteConfigs
    from telemetry.errors import ConfigError

    if directory is None:
        logging.getLogger("collector").warning(
            "no --site-configs (DYNAMO_SITE_CONFIGS): every well-formed message is stored, "
            "whatever its site, gateway, sensor or unit")
        return lambda: None
    try:
        configs = SiteConfigs(directory, on_change=service.set_admission,
                              max_future_s=max_future_s)
    except ConfigError as exc:
        click.echo(f"{directory}: {len(exc.issues)} error(s)", err=True)
        for issue in exc.issues:
            click.echo(f"  {issue}", err=True)
        sys.exit(2)
    service.site_configs = configs
    signal.signal(signal.SIGHUP, lambda _s, _f: configs.request_reload())
    return configs.watch(interval_s)


@collector.group("dead-letters")
def dead_letters_group() -> None:
    """Messages and points the collector set aside, with the reason."""


@dead_letters_group.command("list")
@_EXISTING_DEAD_LETTERS
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@click.option("--reason", "kind", default=None,
              help="Only letters of this kind (invalid, undeclared, unit, future, "
                   "influx_refused, collector_error).")
def dead_letters_list(dead_letters: Path, limit: int, kind: str | None) -> None:
    """Print id, time, topic, reason and the start of the payload, oldest first; on stderr,
    how many by kind and what the store's bound dropped."""
    from collector.deadletters import DeadLetterStore
    from collector.replay import describe

    store = DeadLetterStore(dead_letters)
    for letter in store.entries(limit=limit, kind=kind):
        click.echo(describe(letter))
    stats = store.stats()
    kinds = ", ".join(f"{name or 'unclassified'} {n}" for name, n in store.kinds().items())
    click.echo(f"{stats.count} dead letter(s), {stats.bytes} bytes"
               f"{f' ({kinds})' if kinds else ''}; {stats.dropped} dropped at the bound",
               err=True)


@dead_letters_group.command("purge")
@_EXISTING_DEAD_LETTERS
@click.option("--older-than", "older_than", default=None, metavar="AGE",
              help="Only letters received more than AGE ago: a number and s, m, h or d (7d).")
@click.option("--reason", "kind", default=None, help="Only letters of this kind (see list).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def dead_letters_purge(dead_letters: Path, older_than: str | None, kind: str | None,
                       yes: bool) -> None:
    """Delete dead letters for good (all of them unless --older-than/--reason narrow it).

    Replay what should be stored first (`dead-letters replay`): a purged letter is gone.
    """
    import time

    from collector.deadletters import DeadLetterStore

    before = None if older_than is None else int(time.time() * 1000) - _age_ms(older_than)
    store = DeadLetterStore(dead_letters)
    count = store.purge(received_before_ms=before, kind=kind, dry_run=True)
    what = " ".join(filter(None, [f"of kind {kind}" if kind else "",
                                  f"older than {older_than}" if older_than else ""]))
    if count == 0:
        click.echo(f"no dead letter {what}".rstrip(), err=True)
        return
    if not yes:
        click.confirm(f"delete {count} dead letter(s) {what}".rstrip() + " for good?",
                      abort=True, err=True)
    deleted = store.purge(received_before_ms=before, kind=kind)
    click.echo(f"{deleted} dead letter(s) deleted", err=True)


def _age_ms(text: str) -> int:
    """'90s', '30m', '12h', '7d' in milliseconds; a usage error says what is expected."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit():
        raise click.BadParameter(f"{text!r}: expected a whole number and s, m, h or d (7d)",
                                 param_hint="--older-than")
    return int(number) * units[unit] * 1000


@dead_letters_group.command("replay")
@_EXISTING_DEAD_LETTERS
@click.option("--id", "ids", type=int, multiple=True, help="Only these letters (repeatable).")
@click.option("--limit", type=click.IntRange(1), default=1000, show_default=True)
@click.option("--site-configs", type=click.Path(path_type=Path, file_okay=False, exists=True),
              envvar="DYNAMO_SITE_CONFIGS", default=None,
              help="Judge the letters by these gateway configurations too, as the collector "
                   "does (a letter set aside as undeclared stays so until they declare it).")
def dead_letters_replay(dead_letters: Path, ids: tuple[int, ...], limit: int,
                        site_configs: Path | None) -> None:
    """Validate the letters again and write those that pass (settings: DYNAMO_* env).

    Written letters are removed; the others stay with their reason. Exit status 1 when some
    letters were kept.
    """
    from collector.deadletters import DeadLetterStore
    from collector.replay import replay
    from telemetry.settings import ServiceSettings

    admission = None
    if site_configs is not None:
        from collector.admission import load_admission
        from telemetry.errors import ConfigError

        try:
            admission = load_admission(site_configs)
        except ConfigError as exc:
            raise click.ClickException(f"{site_configs}: {exc}") from None
    store = DeadLetterStore(dead_letters)
    report = replay(store=store, influx=ServiceSettings().influx(), ids=list(ids) or None,
                    limit=limit, admission=admission)
    for letter_id in report.written:
        click.echo(f"{letter_id}\twritten")
    for letter_id, reason in report.kept.items():
        click.echo(f"{letter_id}\tkept\t{reason}")
    click.echo(f"{len(report.written)} written, {len(report.kept)} kept", err=True)
    if report.kept:
        sys.exit(1)
