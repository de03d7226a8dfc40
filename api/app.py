"""The FastAPI application: `/api/v1`, built from settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from api.accounting.factors import FactorTable
from api.accounting.gwp import GwpTable
from api.accounting.references import References
from api.accounting.rollups import EmissionInputs, RollupScheduler, top_ups_from
from api.alerts.history import AlertHistoryReader
from api.broker import BrokerMonitor
from api.console import router as console_router
from api.console.auth import ConsoleRefusal, console_refusal_page
from api.console.render import STATIC
from api.database import make_engine, migrate, sessions
from api.deps import AUTHENTICATED
from api.metrics import ApiMetrics, MetricsMiddleware, metrics_response
from api.routes import (
    alerts,
    base_years,
    calendars,
    contracts,
    energy,
    equipment,
    exports,
    factors,
    fleet,
    grid_intensity,
    health,
    indicators,
    publications,
    records,
    reports,
)
from api.settings import ApiSettings
from api.sites import SiteRegistry
from api.store import ReadingsStore


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """The api, reading its configuration from `settings` (default: the environment)."""
    settings = settings or ApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.registry = SiteRegistry.load(settings.site_configs)
        # Refuse to start on a wrong factor file: figures must never rest on a half-read table.
        app.state.factors = FactorTable.load(user_files=settings.api_factor_files)
        app.state.gwp = GwpTable.load(user_files=settings.api_refrigerant_files)
        app.state.references = References.load()
        engine = make_engine(settings.api_database_url)
        migrate(engine)
        app.state.sessions = sessions(engine)
        app.state.store = ReadingsStore(settings.influx())
        app.state.broker = BrokerMonitor(broker=settings.broker())
        app.state.broker.start()
        rollups = None
        if settings.api_rollup_interval_s > 0:
            rollups = RollupScheduler(
                registry=app.state.registry, store=app.state.store,
                interval=timedelta(seconds=settings.api_rollup_interval_s),
                lookback=timedelta(hours=settings.api_rollup_lookback_h),
                around=timedelta(seconds=settings.boundary_lookaround_s),
                max_gap=timedelta(seconds=settings.integral_max_gap_s),
                emissions=EmissionInputs(factors=app.state.factors, gwp=app.state.gwp,
                                         gwp_report=settings.api_gwp_report,
                                         top_ups=top_ups_from(app.state.sessions),
                                         records=app.state.sessions,
                                         references=app.state.references))
            rollups.start()
        app.state.rollups = rollups
        app.state.alert_history = AlertHistoryReader(settings.api_alert_db)
        try:
            yield
        finally:
            if rollups is not None:
                rollups.stop()
            app.state.broker.stop()
            app.state.store.client.close()
            engine.dispose()

    app = FastAPI(title="DYNAMO equipment monitoring", version="0.1.0", lifespan=lifespan,
                  description="Energy and greenhouse-gas indicators of the DYNAMO demonstrator's "
                              "pilot equipment.")
    app.include_router(health.router, prefix="/api/v1")
    # Bundles for remote upgrade: public, their signed notices are what gateways trust.
    app.include_router(fleet.router, prefix="/api/v1")
    for module in (equipment, energy, indicators, records, factors, exports, grid_intensity,
                   reports, publications, alerts, base_years, contracts, calendars):
        app.include_router(module.router, prefix="/api/v1", dependencies=[AUTHENTICATED])
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(console_router)
    # The console's refusals (403, 404, expired form) as French pages, whichever page raised them.
    app.add_exception_handler(ConsoleRefusal, console_refusal_page)
    _serve_metrics(app, settings)
    return app


def _serve_metrics(app: FastAPI, settings: ApiSettings) -> None:
    """Prometheus `/metrics` of this app (api/metrics.py: who may scrape, and why)."""
    if not settings.api_metrics:
        return
    metrics = ApiMetrics()
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request) -> Response:
        return metrics_response(request, metrics, token=settings.api_metrics_token)
