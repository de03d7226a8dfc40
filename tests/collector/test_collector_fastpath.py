"""The fast path against the pydantic model it stands in for (property-based, differential).

The model teaches the fast path the series of every message it accepts. Whatever the fast path
then accepts, the model must accept too, with the same lines; every valid message we encode, once
the model has seen its series, the fast path must take (else it would be no faster).
"""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import collector.fastpath
from collector.fastpath import FastPath
from collector.points import decode, telemetry_lines
from telemetry.errors import PayloadError
from telemetry.payload import Quality, Reading, Telemetry, decode_telemetry, encode

TOPIC = {"site": "ariege", "gateway": "dryer-gw", "equipment": "dryer"}
TOPIC_NAME = "dynamo/v1/ariege/dryer-gw/telemetry/dryer"


def _pick(valid: list[Any], invalid: list[Any]) -> st.SearchStrategy[Any]:
    """Mostly valid values, one time in eight an invalid one: most messages then break one
    rule at a time, the border where a hand-written validator goes wrong."""
    return st.integers(0, 7).flatmap(lambda n: st.sampled_from(invalid if n == 0 else valid))


VALID_SENSORS = ["dryer.p", "a", "x-1_y.z", "s" * 64]
VALID_UNITS = ["W", "kWh", "degC", "", "m3/h", "a,b c=d"]
VALID_REASONS = ["timeout", "", 'say "hi"\\', "r" * 200]
DEVICES = ["meter", "m-1"]
values = _pick([0, 1, -3, 2.5, -0.0, 1e-9, 123456.789, 2**53, None],
               [float("nan"), float("inf"), 2**60, "1.5", True, [], {}, "x"])
sensors = _pick(VALID_SENSORS, ["", "Dryer", "a b", "s" * 65, 1, None, ["a"], "-a", "a\n"])
units = _pick(VALID_UNITS, ["u" * 33, 5, None, ["W"]])
qualities = _pick(["good", "uncertain", "bad"], ["GOOD", "", 1, None, ["bad"]])
reasons = _pick(VALID_REASONS, ["r" * 201, 3, ["x"]])


@st.composite
def readings(draw: st.DrawFn) -> dict[str, Any]:
    reading: dict[str, Any] = {}
    for key, strategy in (("sensor", sensors), ("value", values), ("unit", units),
                          ("quality", qualities), ("reason", reasons)):
        if draw(st.booleans()) or key in ("sensor", "value"):
            reading[key] = draw(strategy)
    if draw(st.integers(0, 30)) == 0:
        reading["extra"] = 1
    return reading


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    message: dict[str, Any] = {
        "v": draw(_pick([1], [2, "1", 1.0, True])),
        **TOPIC,
        "device": draw(_pick(DEVICES, ["Meter", "", 3, "a" * 64])),
        "seq": draw(_pick([0, 7, 10**12], [-1, "3", 1.5, None, True])),
        "ts": draw(_pick([946_684_800_000, 1_763_700_000_123, 4_102_444_799_999],
                         [946_684_799_999, 4_102_444_800_000, 1.7637e12, "x", True])),
        "readings": draw(st.lists(readings(), min_size=0, max_size=4).filter(bool)
                         if draw(st.integers(0, 15)) else st.just([])),
    }
    if draw(st.booleans()):
        message["clock_synced"] = draw(_pick([True, False], [None, 2, "maybe"]))
    for key in ("v", "device", "seq", "ts", "readings"):
        if draw(st.integers(0, 40)) == 0:
            message.pop(key)
    if draw(st.integers(0, 40)) == 0:
        message["site"] = "elsewhere"
    return message


def taught() -> FastPath:
    """A fast path the model taught every valid series of the strategies above, on each device:
    what the fast path accepts of a random message then depends on the message alone."""
    fast = FastPath()
    for device in DEVICES:
        found = []
        for sensor, unit, quality, reason in itertools.product(
                VALID_SENSORS, VALID_UNITS, ["good", "uncertain", "bad"], [None, *VALID_REASONS]):
            if quality != "bad" or reason:
                found.append({"sensor": sensor, "value": 1.5, "unit": unit, "quality": quality,
                              **({} if reason is None else {"reason": reason})})
        for start in range(0, len(found), 1000):
            payload = json.dumps({**TOPIC, "device": device, "seq": 1, "ts": 1_763_700_000_000,
                                  "readings": found[start:start + 1000]}).encode()
            decode(TOPIC_NAME, payload, received_ms=0, fast=fast)
    return fast


TAUGHT = taught()


@settings(max_examples=1500, deadline=None)
@given(message=messages())
def test_what_the_fast_path_accepts_the_model_accepts_alike(message: dict[str, Any]) -> None:
    payload = json.dumps(message).encode()  # NaN and Infinity become JSON's non-standard words
    fast = TAUGHT.lines(payload, **TOPIC)
    if fast is None:
        return
    text, points, seq, ts = fast
    try:
        model = decode_telemetry(payload)
    except PayloadError as exc:
        raise AssertionError(f"fast path accepted what the model refuses: {exc}") from exc
    assert (model.site, model.gateway, model.equipment) == tuple(TOPIC.values())
    lines = telemetry_lines(model)
    assert (text, points, seq, ts) == ("\n".join(lines), len(lines), model.seq, model.ts)


def test_the_taught_fast_path_takes_messages_of_valid_choices() -> None:
    """The differential test above proves nothing if the fast path refuses everything: messages
    drawn from the valid choices alone (with values) must all take the fast path."""
    rng = random.Random(7)
    for seq in range(200):
        readings = [{"sensor": rng.choice(VALID_SENSORS), "value": rng.uniform(-1e6, 1e6),
                     "unit": rng.choice(VALID_UNITS), "quality": rng.choice(["good", "uncertain"]),
                     **({"reason": rng.choice(VALID_REASONS)} if rng.random() < 0.3 else {})}
                    for _ in range(rng.randint(1, 30))]
        payload = json.dumps({**TOPIC, "device": rng.choice(DEVICES), "seq": seq,
                              "ts": 1_763_700_000_000, "readings": readings}).encode()
        assert TAUGHT.lines(payload, **TOPIC) is not None, payload


@st.composite
def valid_messages(draw: st.DrawFn) -> Telemetry:
    found = []
    for _ in range(draw(st.integers(1, 5))):
        quality = draw(st.sampled_from(Quality))
        value = draw(st.floats(allow_nan=False, allow_infinity=False))
        reason = draw(st.text(max_size=200))
        found.append(Reading(
            sensor=draw(st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,20}", fullmatch=True)),
            value=None if quality is Quality.BAD and draw(st.booleans()) else value,
            unit=draw(st.text(max_size=32)), quality=quality,
            reason=(reason or "timeout") if quality is Quality.BAD else (reason or None)))
    return Telemetry(**TOPIC, device="meter", seq=draw(st.integers(0, 10**9)),
                     ts=draw(st.integers(946_684_800_000, 4_102_444_799_999)),
                     readings=tuple(found))


@settings(max_examples=500, deadline=None)
@given(message=valid_messages())
def test_once_the_model_has_seen_a_message_the_fast_path_takes_it(message: Telemetry) -> None:
    """Every reading with a value, whatever its unit, quality and reason (escaping included)."""
    fast = FastPath()
    payload = encode(message)
    first = decode(TOPIC_NAME, payload, received_ms=0, fast=fast)
    assert first.lines == telemetry_lines(message)
    again = fast.lines(payload, **TOPIC)
    if any(r.value is None for r in message.readings):
        assert again is None  # the model writes a reading without value
        return
    lines = telemetry_lines(message)
    assert again == ("\n".join(lines), len(lines), message.seq, message.ts)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.floats(allow_nan=False, allow_infinity=False)
                       | st.integers(-(2**53), 2**53)
                       | st.sampled_from([1e-4, 9.999e-5, 1e-5, -1e-7, 5e-324, 1e16, -1e16,
                                          9999999999999998.0, 0.1 + 0.2, -0.0, 0, 2**53]),
                       min_size=1, max_size=50))
def test_the_fast_path_formats_every_number_as_the_model(values: list[float | int]) -> None:
    """The fast path formats a message's numbers in one go (orjson), the model one by one (repr):
    they must agree on every double, at the exponent boundaries above all."""
    def payload(numbers: list[float | int]) -> bytes:
        return json.dumps({
            "v": 1, **TOPIC, "device": "meter", "seq": 1, "ts": 1_763_700_000_123,
            "readings": [{"sensor": f"s{i}", "value": value}
                         for i, value in enumerate(numbers)]}).encode()

    fast = FastPath()
    decode(TOPIC_NAME, payload([1.5] * len(values)), received_ms=0, fast=fast)
    taken = fast.lines(payload(values), **TOPIC)
    assert taken is not None
    assert taken[0] == "\n".join(telemetry_lines(decode_telemetry(payload(values))))


def test_the_series_remembered_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collector.fastpath, "_CACHE_LIMIT", 50)
    fast = FastPath()
    for device in range(30):
        series = [((f"s{i}", "W", "good", None), f"readings,sensor=s{i} value=")
                  for i in range(10)]
        fast.learn(("ariege", "dryer-gw", "dryer", f"d{device}"), series)
        remembered = sum(len(known) for known in fast._series.values())
        assert remembered <= 50
    assert ("ariege", "dryer-gw", "dryer", "d29") in fast._series  # the newest stay
