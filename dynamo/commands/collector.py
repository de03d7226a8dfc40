"""`dynamo collector …`: MQTT → InfluxDB."""

from __future__ import annotations

from pathlib import Path

import click

from dynamo.commands.signals import wait_for_signal


@click.group()
def collector() -> None:
    """The collector (MQTT → InfluxDB)."""


@collector.command("run")
@click.option("--client-id", default="dynamo-collector", show_default=True)
@click.option("--share-group", default=None, help="Share the load with other collectors.")
@click.option("--dead-letters", type=click.Path(path_type=Path),
              default=Path("var/collector/dead-letters.sqlite"), show_default=True)
def collector_run(client_id: str, share_group: str | None, dead_letters: Path) -> None:
    """Write every gateway's telemetry to InfluxDB until stopped (settings: DYNAMO_* env)."""
    from collector.deadletters import DeadLetterStore
    from collector.service import Collector
    from telemetry.influx.setup import ensure_database
    from telemetry.settings import ServiceSettings

    settings = ServiceSettings()
    influx = settings.influx()
    ensure_database(influx)
    service = Collector(broker=settings.broker(), influx=influx,
                        dead_letters=DeadLetterStore(dead_letters), client_id=client_id,
                        share_group=share_group)
    service.start()
    wait_for_signal()
    service.stop()
