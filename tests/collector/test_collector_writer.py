"""The writer's answers to InfluxDB's refusals, against a real influxd.

Partial writes (400) and too large bodies (413) come from influxd itself; throttling (429 with
Retry-After) is what InfluxDB 2.x/Cloud send and 1.6 never does, so a small proxy in front of
the real influxd plays that part and forwards everything else.
"""

from __future__ import annotations

import http.server
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from collector import Backoff, Collector, DeadLetterStore, Writer
from collector.writer import INFLUX_WRITE_TOPIC
from dynamo.devservices import InfluxdProcess
from telemetry.influx.client import InfluxClient
from telemetry.mqtt import connect, make_client
from telemetry.payload import Quality, Reading, Telemetry, encode
from telemetry.site import Broker
from telemetry.topics import telemetry_topic

T0 = 1_763_700_000_000


def _count(influx: InfluxClient, measurement: str) -> int:
    series = influx.query(f'SELECT count(v) FROM "{measurement}"')
    return int(series[0].values[0][1]) if series else 0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DeadLetterStore]:
    letters = DeadLetterStore(tmp_path / "dead.sqlite")
    yield letters
    letters.close()


def _writer(influx: InfluxClient, store: DeadLetterStore, **kwargs: object) -> Writer:
    return Writer(influx=influx, dead_letters=store, give_up=threading.Event(),
                  backoff=Backoff(initial_s=0.05, max_s=0.2), **kwargs)  # type: ignore[arg-type]


# An item is one line, or several joined by newlines (a message's, from the fast path).
@pytest.mark.parametrize("per_item", [1, 40], ids=["line-per-item", "message-per-item"])
def test_partial_write_sets_aside_only_the_refused_lines(influx: InfluxClient,
                                                         store: DeadLetterStore,
                                                         per_item: int) -> None:
    influx.write([f"m v=1.5 {T0}"])  # `v` is now a float field
    good = [f"m,s=a v={i}.5 {T0 + i}" for i in range(1, 200)]
    conflicting = [f"m,s=b v={i}i {T0 + i}" for i in range(2)]  # integers: type conflict
    lines = good[:50] + conflicting[:1] + good[50:] + conflicting[1:]
    items = ["\n".join(lines[i:i + per_item]) for i in range(0, len(lines), per_item)]
    refused = _writer(influx, store).write(items)
    assert refused == 2
    assert _count(influx, "m") == 1 + len(good)
    [letter] = store.entries()
    assert letter.topic == INFLUX_WRITE_TOPIC
    assert "field type conflict" in letter.reason
    assert sorted(letter.payload.decode().split("\n")) == sorted(conflicting)


@pytest.fixture(scope="module")
def small_influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxdProcess]:
    process = InfluxdProcess(workdir=tmp_path_factory.mktemp("small-influxd"))
    config = process.config_file.read_text()
    process.config_file.write_text(config.replace("max-body-size = 25000000",
                                                  "max-body-size = 4000"))
    process.start()
    yield process
    process.stop()


def test_too_large_batch_is_split_until_it_fits(small_influxd: InfluxdProcess,
                                                store: DeadLetterStore) -> None:
    # Uncompressed, so that the body size, which influxd limits, is plain to see.
    with InfluxClient(url=small_influxd.url, database=f"d{uuid.uuid4().hex[:8]}",
                      gzip_writes=False) as influx:
        influx.create_database()
        lines = [f"m,sensor=s{i % 7} v={i}.25 {T0 + i}" for i in range(1000)]  # ~35 kB
        huge = f"m,sensor=huge v=1.5,text=\"{'x' * 5000}\" {T0}"
        assert _writer(influx, store).write([*lines, huge]) == 1
        assert _count(influx, "m") == len(lines)
        [letter] = store.entries()
        assert "body limit" in letter.reason and letter.payload.decode() == huge


class _ThrottlingProxy(http.server.ThreadingHTTPServer):
    """Answers the first `throttle` writes with 429 and Retry-After; forwards all the rest."""

    def __init__(self, upstream: str, *, throttle: int, retry_after_s: int) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream = upstream
        self.throttle = throttle
        self.retry_after_s = retry_after_s
        self.write_times: list[float] = []


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    server: _ThrottlingProxy

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.startswith("/write"):
            self.server.write_times.append(time.monotonic())
            if len(self.server.write_times) <= self.server.throttle:
                self.send_response(429)
                self.send_header("Retry-After", str(self.server.retry_after_s))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        answer = httpx.post(f"{self.server.upstream}{self.path}", content=body,
                            headers=headers)
        self.send_response(answer.status_code)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    def log_message(self, *_args: object) -> None:
        pass


def test_throttled_write_waits_as_long_as_retry_after_says(influx: InfluxClient,
                                                           store: DeadLetterStore) -> None:
    proxy = _ThrottlingProxy(influx.url, throttle=2, retry_after_s=1)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    retries: list[int] = []
    try:
        with InfluxClient(url=f"http://127.0.0.1:{proxy.server_port}",
                          database=influx.database) as throttled:
            writer = _writer(throttled, store, on_retry=lambda: retries.append(1))
            assert writer.write([f"m v={i}.5 {T0 + i}" for i in range(10)]) == 0
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert len(retries) == 2
    gaps = [b - a for a, b in zip(proxy.write_times, proxy.write_times[1:], strict=False)]
    # Backoff alone would have retried within 0.2 s; Retry-After said 1 s.
    assert len(gaps) == 2 and min(gaps) >= 0.95
    assert _count(influx, "m") == 10
    assert store.count() == 0


def test_collector_sets_refused_points_aside_and_writes_the_rest(
        broker_for: Callable[[str], Broker], influx: InfluxClient, tmp_path: Path) -> None:
    # Someone wrote `reason` as an integer: InfluxDB now refuses every string `reason` point.
    influx.write([f"readings,sensor=other reason=1i {T0}"])
    service = Collector(broker=broker_for("collector"), influx=influx,
                        dead_letters=DeadLetterStore(tmp_path / "dead.sqlite"),
                        client_id=f"collector-{uuid.uuid4().hex[:6]}", flush_interval_s=0.05)
    gateway = make_client(broker=broker_for("test-gw"), client_id=f"gw-{uuid.uuid4().hex[:6]}")
    site = f"r{uuid.uuid4().hex[:8]}"
    try:
        service.start()
        assert service.connected.wait(10)
        time.sleep(0.2)
        connect(gateway, broker_for("test-gw"))
        deadline = time.monotonic() + 10
        while not gateway.is_connected() and time.monotonic() < deadline:
            time.sleep(0.05)
        for seq in range(3):
            message = Telemetry(site=site, gateway="test-gw", equipment="dryer", device="m",
                                seq=seq, ts=T0 + seq, readings=(
                                    Reading(sensor="dryer.ok", value=float(seq), unit="W"),
                                    Reading(sensor="dryer.gone", unit="W",
                                            quality=Quality.BAD, reason="timeout")))
            gateway.publish(telemetry_topic(site, "test-gw", "dryer"), encode(message), qos=1)
        deadline = time.monotonic() + 20
        while service.counters.rejected_points < 3 or service.counters.points < 3:
            assert time.monotonic() < deadline, service.counters
            time.sleep(0.05)
    finally:
        gateway.disconnect()
        gateway.loop_stop()
        service.stop()
    rows = influx.query(f"SELECT value FROM readings WHERE site = '{site}'")[0].rows()
    assert [r["value"] for r in rows] == [0.0, 1.0, 2.0]
    refused = [line for letter in service.dead_letters.entries()
               for line in letter.payload.decode().split("\n")]
    assert len(refused) == 3 and all("sensor=dryer.gone" in line for line in refused)
    assert service.counters.snapshot()["held"] == 0  # every message was acknowledged
