"""The FastAPI application: `/api/v1`, built from settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.broker import BrokerMonitor
from api.routes import energy, equipment, health
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
        app.state.store = ReadingsStore(settings.influx())
        app.state.broker = BrokerMonitor(broker=settings.broker())
        app.state.broker.start()
        try:
            yield
        finally:
            app.state.broker.stop()
            app.state.store.client.close()

    app = FastAPI(title="DYNAMO equipment monitoring", version="0.1.0", lifespan=lifespan,
                  description="Energy and greenhouse-gas indicators of the DYNAMO demonstrator's "
                              "pilot equipment.")
    for module in (health, equipment, energy):
        app.include_router(module.router, prefix="/api/v1")
    return app
