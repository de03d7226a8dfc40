"""The InfluxDB schema, in one place (docs/influxdb-schema.md explains it).

readings          tags: site, gateway, equipment, device, sensor, unit, quality
                  fields: value (float), reason (string, only for bad readings),
                          dtype (string, counters: the register type the value was read from)
gateway_status    tags: site, gateway
                  fields: online (0/1), buffer_depth, version, config_hash, clock_synced (0/1),
                          devices, devices_ok
sequence_events   tags: site, gateway, kind (gap, late, lost, repeat, reset, stale, void)
                  fields: seq (int), count (int: messages skipped by a gap or given up as
                          lost, else 1)

Timestamps are the gateway's, in ms. Points are keyed by (measurement, tags, time), so a batch
written twice overwrites itself: writes are idempotent.
"""

from __future__ import annotations

READINGS = "readings"
GATEWAY_STATUS = "gateway_status"
SEQUENCE_EVENTS = "sequence_events"
# tag collector; fields dead_letters, dead_letter_bytes, dead_letters_dropped, queued_messages
COLLECTOR_STATUS = "collector_status"

VALUE_FIELD = "value"
REASON_FIELD = "reason"
TYPE_FIELD = "dtype"  # a field, not a tag: it must not split a counter's series

# Hourly rollups written by the api (docs/influxdb-schema.md, "Retention and rollups").
ENERGY_HOURLY = "energy_hourly"  # tags: site, equipment, source
SENSOR_HOURLY = "sensor_hourly"  # tags: site, equipment, sensor, role
STATE_HOURLY = "state_hourly"  # tags: site, equipment, sensor, state
BAND_HOURLY = "band_hourly"  # tags: site, equipment, sensor, band; seconds below/within/above
# tags: site, equipment, scope (1|2|3), activity (electricity, fuel_energy, fuel_volume,
# refrigerant_leak; <activity>_upstream for scope 3); fields co2e_kg, quantity, quantity_unit,
# meter, factor_id, factor_version, factor_value, part — the factor in fields, so that a
# superseded factor overwrites the point.
GHG_HOURLY = "ghg_hourly"
# Avoided emissions of each batch against each stored baseline of its equipment kind, written by
# the api's rollup job with the indicators' own per-batch computation
# (api/accounting/indicators.py); time = the batch's end. tags: site, equipment, baseline;
# fields batch_id (int), avoided_co2e_kg, baseline_co2e_kg, actual_co2e_kg, output_quantity,
# output (the baseline's output, which names its unit: kg_frozen, t_water_evaporated…).
AVOIDED_BATCHES = "avoided_batches"
# RTE éCO2mix grid intensity imported by the api: tags source; field co2_g_per_kwh.
GRID_INTENSITY = "grid_intensity"
