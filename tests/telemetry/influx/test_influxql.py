"""Quoted InfluxQL literals match exactly what was written, and injections stay inert."""

from __future__ import annotations

import pytest

from telemetry.influx.client import InfluxClient
from telemetry.influx.influxql import quote_ident, quote_string, tag_equals
from telemetry.influx.lineprotocol import line

NASTY = [
    "plain",
    "it's",
    "back\\slash",
    "x' OR sensor =~ /.*/ OR sensor='",
    "x'; DROP DATABASE \"t\"; --",
    'double"quote',
    "trailing\\'",
]


def test_string_literals_select_exactly_their_tag(influx: InfluxClient) -> None:
    influx.write([line("readings", {"sensor": s}, {"value": float(i)}, 1_700_000_000_000)
                  for i, s in enumerate(NASTY)])
    for i, sensor in enumerate(NASTY):
        q = f"SELECT value FROM {quote_ident('readings')} WHERE {tag_equals('sensor', sensor)}"
        rows = [row for s in influx.query(q) for row in s.rows()]
        assert [r["value"] for r in rows] == [float(i)], sensor
    # the database survived every attempt
    assert influx.query('SELECT count(value) FROM "readings"')[0].values[0][1] == len(NASTY)


def test_identifiers_are_quoted(influx: InfluxClient) -> None:
    influx.write([line('we"ird', {"k": "v"}, {"value": 1.0}, 1_700_000_000_000)])
    rows = influx.query("SELECT value FROM " + quote_ident('we"ird'))
    assert rows and rows[0].values[0][1] == 1.0


def test_line_breaks_are_refused() -> None:
    with pytest.raises(ValueError):
        quote_string("a\nSELECT")
