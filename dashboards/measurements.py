"""Measurements the dashboards read, and the names inside them the queries rely on.

telemetry.influx.schema owns the measurement names written by our components (readings,
gateway status, sequence events, the collector's status, the api's hourly rollups); they are
re-exported here. docs/dashboards.md lists the fields each panel reads.
"""

from __future__ import annotations

from telemetry.influx.schema import (
    AVOIDED_BATCHES,
    COLLECTOR_STATUS,
    ENERGY_HOURLY,
    GATEWAY_STATUS,
    GHG_HOURLY,
    READINGS,
    SENSOR_HOURLY,
    SEQUENCE_EVENTS,
    STATE_HOURLY,
)

# alerting (alerting/annotations.py): one point per change of an alert.
# tags site, equipment, rule, severity, event ("fired", "acknowledged", "escalated",
# "resolved"); fields alert_id (one per alert occurrence), title, subject, detail, value.
ALERT_EVENTS = "alert_events"
FIRED = "fired"
RESOLVED = "resolved"

# The `source` tag of energy_hourly (the api's api/accounting/sources.py).
RENEWABLE_SOURCES = ("pv", "solar_heat")  # made on site
PURCHASED_SOURCES = ("grid_import", "fuel")  # bought

# Roles whose readings the api turns into ghg_hourly points (api/accounting/rollups.py): electricity
# bought (grid meter, else the machine's feeder) and fuel; refrigerant leaks come from records.
EMISSION_ROLES = ("grid_import_energy", "grid_power", "electric_energy", "electric_power",
                  "fuel_energy", "fuel_volume")

# collector: its counters, once it publishes them to InfluxDB (today they are Prometheus
# metrics only). tags collector; fields dead_letters (cumulative), queued_messages.

__all__ = [
    "ALERT_EVENTS",
    "AVOIDED_BATCHES",
    "COLLECTOR_STATUS",
    "EMISSION_ROLES",
    "ENERGY_HOURLY",
    "FIRED",
    "GATEWAY_STATUS",
    "GHG_HOURLY",
    "PURCHASED_SOURCES",
    "READINGS",
    "RENEWABLE_SOURCES",
    "RESOLVED",
    "SENSOR_HOURLY",
    "SEQUENCE_EVENTS",
    "STATE_HOURLY",
]
