"""Our line-protocol encoder agrees with influxdb-client's, and a real influxd reads it back."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from influxdb_client import Point, WritePrecision

from telemetry.influx.client import InfluxClient
from telemetry.influx.lineprotocol import line

tag_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20) \
    .filter(lambda s: not s.endswith("\\") and s.strip() == s)


@given(measurement=st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1,
                           max_size=20).filter(lambda s: not s.endswith("\\")
                                               and not s.startswith("#")),
       tags=st.dictionaries(tag_text, tag_text, max_size=4),
       value=st.floats(allow_nan=False, allow_infinity=False),
       reason=st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
       ts=st.integers(0, 2**50))
def test_same_as_influxdb_client(measurement: str, tags: dict[str, str], value: float,
                                 reason: str, ts: int) -> None:
    ours = line(measurement, tags, {"value": value, "reason": reason}, ts)
    point = Point(measurement).time(ts, WritePrecision.MS).field("value", value) \
        .field("reason", reason)
    for key, tag_value in sorted(tags.items()):
        point = point.tag(key, tag_value)
    theirs = point.to_line_protocol()
    assert ours == theirs


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tag=tag_text, reason=st.text(st.characters(blacklist_categories=("Cs", "Cc"))
                                    | st.just("\n"), max_size=30))
def test_real_influxd_reads_back_escaped_values(influx: InfluxClient, tag: str,
                                                reason: str) -> None:
    influx.write([line("m x", {"sensor": tag}, {"value": 1.0, "reason": reason},
                       1_700_000_000_000)])
    rows = [row for s in influx.query('SELECT * FROM "m x"') for row in s.rows()
            if row["sensor"] == tag]
    assert rows and rows[-1]["reason"] == reason
