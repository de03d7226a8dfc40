"""The InfluxDB schema, in one place (docs/influxdb-schema.md explains it).

readings          tags: site, gateway, equipment, device, sensor, unit, quality
                  fields: value (float), reason (string, only for bad readings)
gateway_status    tags: site, gateway       fields: online (0/1), buffer_depth, version, config_hash
sequence_events   tags: site, gateway       fields: gaps (int), repeats (int)

Timestamps are the gateway's, in ms. Points are keyed by (measurement, tags, time), so a batch
written twice overwrites itself: writes are idempotent.
"""

from __future__ import annotations

READINGS = "readings"
GATEWAY_STATUS = "gateway_status"
SEQUENCE_EVENTS = "sequence_events"

VALUE_FIELD = "value"
REASON_FIELD = "reason"
