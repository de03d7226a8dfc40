"""The api's settings (environment, prefix `DYNAMO_`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from telemetry.settings import ServiceSettings


class ApiSettings(ServiceSettings):
    site_configs: Path = Path("firmware-config/sites")
    # How far back "latest" looks, and how far around a period the energy computation looks for
    # the counter readings that bound it.
    latest_lookback_s: int = 86400
    boundary_lookaround_s: int = 6 * 3600
    # A power series with no reading for longer than this is not integrated across the hole:
    # the hole is reported as missing coverage instead of being guessed.
    integral_max_gap_s: int = 300
    # The evaluation team's own factor and GWP files (JSON list in the environment), loaded
    # after the shipped ones: they add factors or supersede them.
    api_factor_files: tuple[Path, ...] = ()
    api_refrigerant_files: tuple[Path, ...] = ()
    # One IPCC assessment report for every refrigerant figure of a deployment.
    api_gwp_report: Literal["AR4", "AR5", "AR6"] = "AR5"
    # Production records: embedded SQLite by default, PostgreSQL by URL
    # (postgresql+psycopg://user@host/db).
    api_database_url: str = "sqlite:///.run/dynamo-api.sqlite3"
    # Rollups inside the api process: every interval (0: never; `dynamo api rollup` then),
    # recompute the last hours so that late data corrects them.
    api_rollup_interval_s: int = 300
    api_rollup_lookback_h: int = 48
    # The alerting service's SQLite store (its --db), read-only, for the alert history route;
    # unset: that route answers 503.
    api_alert_db: Path | None = None
    # Console sessions (docs/console-admin.md): signed out after this long without a request,
    # and after the absolute lifetime whatever happens. Secure cookies: "auto" when the request
    # is https (behind a proxy: run uvicorn with --proxy-headers), or always / never.
    console_idle_timeout_s: int = 30 * 60
    console_session_lifetime_s: int = 12 * 3600
    console_cookie_secure: Literal["auto", "always", "never"] = "auto"
    # Failed sign-ins counted over the window, per login and per client address.
    console_login_window_s: int = 15 * 60
    console_login_failures_per_login: int = 5
    console_login_failures_per_address: int = 20
    # Prometheus `GET /metrics` (api/metrics.py): on; answered to loopback clients not behind a
    # proxy, or to anyone showing this bearer token (a remote Prometheus).
    api_metrics: bool = True
    api_metrics_token: str | None = None
    # The fleet's Ed25519 private key (`dynamo fleet keygen`, docs/fleet.md): set, the console's
    # fleet page lets admins push a gateway's configuration; unset (default), it only shows.
    fleet_key: Path | None = None
    # Gateway bundles published for remote upgrade (`dynamo fleet publish-bundle --store`),
    # served at /api/v1/fleet/bundles/{sha256} (api/routes/fleet.py); unset: none served.
    fleet_bundles: Path | None = None
