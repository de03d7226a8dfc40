"""`/health`: can the api reach InfluxDB and the broker?"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.deps import Broker, Store
from api.schemas import Check, Health
from telemetry.influx.client import InfluxError

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health(store: Store, broker: Broker, request: Request, response: Response) -> Health:
    try:
        influx = Check(ok=True, detail=f"InfluxDB {store.client.ping()} at {store.client.url}")
    except InfluxError as exc:
        influx = Check(ok=False, detail=str(exc))
    mqtt = Check(ok=broker.connected.is_set(), detail=broker.describe())
    ok = influx.ok and mqtt.ok
    if not ok:
        response.status_code = 503
    rollups = None
    job = getattr(request.app.state, "rollups", None)
    if job is not None:
        report = job.last_report
        rollups = Check(ok=job.last_error is None, detail=job.last_error or (
            f"last run {report.start.isoformat()} → {report.end.isoformat()}" if report
            else "first run pending"))
    return Health(status="ok" if ok else "degraded", influxdb=influx, broker=mqtt,
                  rollups=rollups)
