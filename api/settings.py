"""The api's settings (environment, prefix `DYNAMO_`)."""

from __future__ import annotations

from pathlib import Path

from telemetry.settings import ServiceSettings


class ApiSettings(ServiceSettings):
    site_configs: Path = Path("firmware-config/sites")
    # How far back "latest" looks, and how far around a period the energy computation looks for
    # the counter readings that bound it.
    latest_lookback_s: int = 86400
    boundary_lookaround_s: int = 6 * 3600
