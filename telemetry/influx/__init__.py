"""InfluxDB v1 HTTP API: client, line protocol, safe InfluxQL, and the schema."""

from telemetry.influx.client import (
    InfluxClient,
    InfluxError,
    InfluxRejected,
    InfluxThrottled,
    InfluxTooLarge,
    InfluxUnavailable,
    Series,
)

__all__ = [
    "InfluxClient",
    "InfluxError",
    "InfluxRejected",
    "InfluxThrottled",
    "InfluxTooLarge",
    "InfluxUnavailable",
    "Series",
]
