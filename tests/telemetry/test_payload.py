"""The telemetry codec: what a gateway encodes, a collector decodes unchanged."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telemetry.errors import PayloadError
from telemetry.payload import (
    Quality,
    Reading,
    Status,
    Telemetry,
    decode_status,
    decode_telemetry,
    encode,
)
from telemetry.topics import Channel, parse_topic, status_topic, subscription, telemetry_topic

ident = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True)
sensor = st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,30}", fullmatch=True)
good = st.builds(Reading, sensor=sensor, value=st.floats(allow_nan=False, allow_infinity=False),
                 unit=st.sampled_from(["kWh", "W", "degC", "percent", ""]),
                 quality=st.sampled_from([Quality.GOOD, Quality.UNCERTAIN]),
                 reason=st.none() | st.just("out of range"))
bad = st.builds(Reading, sensor=sensor, value=st.none(), unit=st.just("W"),
                quality=st.just(Quality.BAD), reason=st.sampled_from(["timeout", "no connection"]))


@given(st.builds(Telemetry, site=ident, gateway=ident, equipment=ident, device=ident,
                 seq=st.integers(0, 2**40), ts=st.integers(946_684_800_000, 4_102_444_799_999),
                 readings=st.lists(good | bad, min_size=1, max_size=20).map(tuple)))
def test_round_trip(message: Telemetry) -> None:
    assert decode_telemetry(encode(message)) == message


def test_status_round_trip_and_last_will() -> None:
    will = Status(site="ariege", gateway="dryer-gw", state="offline")
    assert decode_status(encode(will)) == will
    assert b"ts" not in encode(will)


@pytest.mark.parametrize("payload", [
    b"",
    b"[]",
    b'{"v": 2}',
    b'{"v":1,"site":"a","gateway":"b","equipment":"c","device":"d","seq":-1,"ts":1763700000000,'
    b'"readings":[{"sensor":"s","value":1}]}',
    b'{"v":1,"site":"a","gateway":"b","equipment":"c","device":"d","seq":1,"ts":1763700000,'
    b'"readings":[{"sensor":"s","value":1}]}',  # seconds, not milliseconds
    b'{"v":1,"site":"a","gateway":"b","equipment":"c","device":"d","seq":1,"ts":1763700000000,'
    b'"readings":[]}',
    b'{"v":1,"site":"A B","gateway":"b","equipment":"c","device":"d","seq":1,'
    b'"ts":1763700000000,"readings":[{"sensor":"s","value":1}]}',
])
def test_malformed_payloads_raise_payload_error(payload: bytes) -> None:
    with pytest.raises(PayloadError):
        decode_telemetry(payload)


def test_topics_round_trip() -> None:
    topic = parse_topic(telemetry_topic("ariege", "dryer-gw", "dryer"))
    assert topic is not None and topic.equipment == "dryer" and topic.channel is Channel.TELEMETRY
    status = parse_topic(status_topic("ariege", "dryer-gw"))
    assert status is not None and status.channel is Channel.STATUS and status.equipment is None
    assert parse_topic("dynamo/v2/a/b/status") is None
    assert parse_topic("dynamo/v1/a/b/telemetry") is None
    assert subscription(Channel.TELEMETRY, share_group="g") == \
        "$share/g/dynamo/v1/+/+/telemetry/+"
