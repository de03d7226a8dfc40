"""The InfluxQL of the panels, built from identifiers of the configuration.

Only what InfluxDB 1.x, 2.x (v1 compatibility) and 3 Core all serve: plain SELECT with
aggregates, GROUP BY time, fill, NON_NEGATIVE_DIFFERENCE and SPREAD; no subquery, no INTEGRAL.
Identifiers and tag values go through telemetry.influx.influxql. `$timeFilter`,
`$__interval` and `$<variable>` are Grafana's: Grafana replaces them before InfluxDB sees the
query (tests replace them with concrete values).
"""

from __future__ import annotations

from collections.abc import Sequence

from telemetry.influx.influxql import quote_ident, tag_equals
from telemetry.influx.schema import GHG_HOURLY, READINGS, VALUE_FIELD

TIME_FILTER = "$timeFilter"
INTERVAL = "$__interval"


def _where(site: str, *clauses: str) -> str:
    return " AND ".join((tag_equals("site", site), *clauses, TIME_FILTER))


def _sensor(sensor: str) -> str:
    return tag_equals("sensor", sensor)


def _value() -> str:
    return quote_ident(VALUE_FIELD)


Linear = tuple[float, float]
IDENTITY: Linear = (1.0, 0.0)


def _scaled(expression: str, linear: Linear) -> str:
    """`expression × a + b`: a sensor's unit converted to its panel's (see panels.py)."""
    a, b = linear
    if a != 1.0:
        expression = f"{expression} * {a:.12g}"
    if b != 0.0:
        expression = f"{expression} {'+' if b > 0 else '-'} {abs(b):.12g}"
    return expression


def _select(aggregate: str, *, site: str, sensor: str, linear: Linear,
            per_interval: bool) -> str:
    group = f" GROUP BY time({INTERVAL}) fill(none)" if per_interval else ""
    return (f"SELECT {_scaled(aggregate, linear)} FROM {quote_ident(READINGS)} "
            f"WHERE {_where(site, _sensor(sensor))}{group}")


def sensor_mean(*, site: str, sensor: str, linear: Linear = IDENTITY) -> str:
    """A gauge's mean per interval."""
    return _select(f"mean({_value()})", site=site, sensor=sensor, linear=linear,
                   per_interval=True)


def sensor_last_per_interval(*, site: str, sensor: str) -> str:
    """A state's last code per interval (state timelines hold it until the next one)."""
    return _select(f"last({_value()})", site=site, sensor=sensor, linear=IDENTITY,
                   per_interval=True)


def sensor_last(*, site: str, sensor: str, linear: Linear = IDENTITY) -> str:
    """The latest value in the period."""
    return _select(f"last({_value()})", site=site, sensor=sensor, linear=linear,
                   per_interval=False)


def counter_spread(*, site: str, sensor: str, linear: Linear = IDENTITY) -> str:
    """A counter's increase over the whole period (last - first; a reset would distort it)."""
    return _select(f"spread({_value()})", site=site, sensor=sensor, linear=linear,
                   per_interval=False)


def counter_increase(*, site: str, sensor: str, linear: Linear = IDENTITY) -> str:
    """A counter's increase per interval; a reset gives a negative step, which is dropped."""
    return _select(f"non_negative_difference(last({_value()}))", site=site, sensor=sensor,
                   linear=linear, per_interval=True)


def state_seconds(*, site: str, sensor: str, code: int, poll_interval_s: float) -> str:
    """Seconds spent in a state code per interval, estimated as readings × poll interval.

    Panels sum the intervals. A state never reached in the period returns no series at all
    (fill only fills series that exist): panels show 0 then.
    """
    return (f"SELECT count({_value()}) * {poll_interval_s:g} FROM {quote_ident(READINGS)} "
            f"WHERE {_where(site, _sensor(sensor), f'{_value()} = {code:d}')} "
            f"GROUP BY time({INTERVAL}) fill(0)")


def per_gateway(*, site: str, measurement: str, select: str, interval: bool = True,
                where: Sequence[str] = (), gateway_variable: str | None = None) -> str:
    """`select` (already quoted) from a per-gateway measurement, one series per gateway."""
    clauses = [*where]
    if gateway_variable:
        # Grafana formats a multi-value variable as a regex alternation for InfluxDB.
        clauses.append(f"{quote_ident('gateway')} =~ /^${gateway_variable}$/")
    group = f"time({INTERVAL}), " if interval else ""
    fill = " fill(none)" if interval else ""
    return (f"SELECT {select} FROM {quote_ident(measurement)} WHERE {_where(site, *clauses)} "
            f"GROUP BY {group}{quote_ident('gateway')}{fill}")


def events(*, site: str, measurement: str, fields: Sequence[str],
           where: Sequence[str] = ()) -> str:
    """Raw event rows of the period (alert annotations and history)."""
    columns = ", ".join(quote_ident(f) for f in fields)
    return f"SELECT {columns} FROM {quote_ident(measurement)} WHERE {_where(site, *where)}"


def tag_is(tag: str, value: str) -> str:
    """A condition on a tag (quoted and escaped)."""
    return tag_equals(tag, value)


def co2e_sum(*, site: str, equipment: str | None = None, group_by: Sequence[str] = (),
             interval: str | None = None, scopes: Sequence[str] = ()) -> str:
    """`sum(co2e_kg)` of the api's hourly emissions rollup (`ghg_hourly`): the api multiplies
    the activities by its cited factors; the dashboards never hold a factor of their own.
    `scopes` keeps only those scopes (e.g. 1 and 2, without the upstream scope 3)."""
    clauses = [tag_equals("equipment", equipment)] if equipment else []
    if scopes:
        clauses.append("(" + " OR ".join(tag_equals("scope", s) for s in scopes) + ")")
    group = [f"time({interval})"] if interval else []
    group += [quote_ident(tag) for tag in group_by]
    tail = f" GROUP BY {', '.join(group)}" if group else ""
    tail += " fill(none)" if interval else ""
    return (f"SELECT sum({quote_ident('co2e_kg')}) FROM {quote_ident(GHG_HOURLY)} "
            f"WHERE {_where(site, *clauses)}{tail}")
