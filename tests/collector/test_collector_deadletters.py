"""Dead letters: malformed payloads through a real broker, and the list/replay commands."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector import Collector, DeadLetterStore
from collector.writer import INFLUX_WRITE_TOPIC
from dynamo.cli import main
from dynamo.devservices import wait_until
from telemetry.influx.client import InfluxClient
from telemetry.topics import telemetry_topic

SITE = f"h{uuid.uuid4().hex[:8]}"
TOPIC = telemetry_topic(SITE, "test-gw", "dryer")
T0 = 1_763_700_000_000


def _valid(seq: int = 1) -> dict[str, Any]:
    return {"v": 1, "site": SITE, "gateway": "test-gw", "equipment": "dryer", "device": "m",
            "seq": seq, "ts": T0 + seq,
            "readings": [{"sensor": "dryer.power", "value": 1.5, "unit": "W"}]}


# Each mutation breaks a rule of docs/mqtt.md, so every result is malformed by construction.
_MUTATIONS: list[Callable[[dict[str, Any]], None]] = [
    lambda m: m.pop("seq"),
    lambda m: m.pop("readings"),
    lambda m: m.update(v=2),
    lambda m: m.update(seq=-1),
    lambda m: m.update(ts="yesterday"),
    lambda m: m.update(ts=12),  # seconds, not ms: before 2000
    lambda m: m.update(site="other"),  # disagrees with the topic
    lambda m: m.update(equipment="freezer"),
    lambda m: m.update(readings=[]),
    lambda m: m.update(unexpected=True),
    lambda m: m["readings"][0].update(value=None),  # null value but quality good
    lambda m: m["readings"][0].update(quality="excellent"),
    lambda m: m["readings"][0].update(quality="bad"),  # bad without a reason
    lambda m: m["readings"][0].update(sensor="Dryer Power"),
    lambda m: m["readings"][0].update(value="12.5 W"),
    lambda m: m["readings"][0].pop("sensor"),
]


def _not_a_json_object(raw: bytes) -> bool:
    try:
        return not isinstance(json.loads(raw), dict)
    except ValueError:
        return True


malformed = st.one_of(
    st.binary(max_size=300).filter(_not_a_json_object),
    st.builds(lambda i, seq: (_valid(seq), _MUTATIONS[i]),
              st.integers(0, len(_MUTATIONS) - 1), st.integers(0, 10**6)).map(
        lambda pair: (pair[1](pair[0]), json.dumps(pair[0]).encode())[1]),
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=malformed)
def test_malformed_payloads_are_each_dead_lettered(collector: Collector, gateway: mqtt.Client,
                                                   payload: bytes) -> None:
    before = collector.counters.dead_letters
    gateway.publish(TOPIC, payload, qos=1).wait_for_publish(timeout=10)
    wait_until(lambda: collector.counters.dead_letters == before + 1, timeout_s=15,
               what="the payload's dead letter", interval_s=0.02)
    [letter] = collector.dead_letters.entries(limit=1, ids=[max(
        e.id for e in collector.dead_letters.entries(limit=10**6))])
    assert letter.payload == payload and letter.topic == TOPIC and letter.reason


def test_collector_survives_malformed_payloads_and_still_writes(
        collector: Collector, gateway: mqtt.Client, influx: InfluxClient) -> None:
    for payload in (b"", b"\xff\xfe", b"[]", b"null", b'{"v": 1, "readings": "x"}'):
        gateway.publish(TOPIC, payload, qos=1)
    gateway.publish(TOPIC, json.dumps(_valid(7)).encode(), qos=1)

    def written() -> list[float]:
        series = influx.query(f"SELECT value FROM readings WHERE site = '{SITE}'")
        return [r["value"] for s in series for r in s.rows()]

    # Other traffic (a retained status) may reach the collector too: wait for these messages.
    wait_until(lambda: collector.counters.dead_letters >= 5 and bool(written()), timeout_s=15,
               what="five dead letters and the good point written", interval_s=0.02)
    assert collector.counters.dead_letters == 5
    assert written() == [1.5]


def test_dead_letters_list_and_replay(influx: InfluxClient, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "dead.sqlite"
    store = DeadLetterStore(path)
    valid_now = json.dumps(_valid(1)).encode()  # e.g. refused by an older, stricter rule
    still_bad = json.dumps({**_valid(2), "seq": -5}).encode()
    store.add(topic=TOPIC, reason="old rule", payload=valid_now)
    store.add(topic=TOPIC, reason="seq: negative", payload=still_bad)
    store.add(topic=INFLUX_WRITE_TOPIC, reason="type conflict then",
              payload=f"readings,site={SITE},sensor=x value=2.5 {T0 + 5}".encode())
    monkeypatch.setenv("DYNAMO_INFLUX_URL", influx.url)
    monkeypatch.setenv("DYNAMO_INFLUX_DB", influx.database)
    runner = CliRunner()

    listed = runner.invoke(main, ["collector", "dead-letters", "list", "--dead-letters",
                                  str(path)])
    assert listed.exit_code == 0, listed.output
    assert [row.split("\t")[3] for row in listed.stdout.splitlines()] == \
        ["old rule", "seq: negative", "type conflict then"]

    one = runner.invoke(main, ["collector", "dead-letters", "replay", "--dead-letters",
                               str(path), "--id", "3"])
    assert one.exit_code == 0, one.output
    assert store.count() == 2

    rest = runner.invoke(main, ["collector", "dead-letters", "replay", "--dead-letters",
                                str(path)])
    assert rest.exit_code == 1  # one letter is still malformed
    assert "1\twritten" in rest.stdout and "2\tkept\tseq:" in rest.stdout
    [kept] = store.entries()
    assert kept.id == 2 and kept.payload == still_bad
    values = influx.query(f"SELECT value FROM readings WHERE site = '{SITE}'")[0].rows()
    assert sorted(r["value"] for r in values) == [1.5, 2.5]
    store.close()
