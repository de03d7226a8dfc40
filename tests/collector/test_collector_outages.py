"""Faults on real services: influxd down under load, broker restarts, a collector killed -9.

These tests stop and restart services, so they run their own influxd and mosquitto (the session
fixtures are shared with everyone else's tests). Each counts points in InfluxDB against what was
sent: none missing, none duplicated, every value the one sent.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from collector import Backoff, Collector, DeadLetterStore
from dynamo.devservices import (
    InfluxdProcess,
    MosquittoProcess,
    free_port,
    generated_acl,
    stop_processes,
    wait_until,
)
from telemetry.influx.client import InfluxClient
from telemetry.mqtt import connect, make_client
from telemetry.payload import Reading, Telemetry, encode
from telemetry.site import Broker
from telemetry.topics import telemetry_topic

REPO = Path(__file__).resolve().parents[2]
GATEWAY = "test-gw"
READINGS_PER_MESSAGE = 10


@pytest.fixture(scope="module")
def own_influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxdProcess]:
    process = InfluxdProcess(workdir=tmp_path_factory.mktemp("own-influxd"))
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def own_mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoProcess]:
    users = {"collector": uuid.uuid4().hex, GATEWAY: uuid.uuid4().hex}
    workdir = tmp_path_factory.mktemp("own-mosquitto")
    acl = generated_acl(workdir, sites=REPO / "firmware-config" / "sites",
                        development_gateways=(GATEWAY,))
    process = MosquittoProcess(workdir=workdir, users=users, acl_file=acl)
    process.start()
    yield process
    process.stop()


def _broker(mosquitto: MosquittoProcess, user: str) -> Broker:
    return Broker(host=mosquitto.host, port=mosquitto.port, username=user,
                  password=mosquitto.users[user])


@pytest.fixture
def influx(own_influxd: InfluxdProcess) -> Iterator[InfluxClient]:
    client = InfluxClient(url=own_influxd.url, database=f"o_{uuid.uuid4().hex[:12]}")
    client.create_database()
    yield client
    client.close()


@dataclass
class Sent:
    site: str
    messages: int = 0

    @property
    def points(self) -> int:
        return self.messages * READINGS_PER_MESSAGE

    def value_sum(self) -> float:
        # value of reading k of message seq: seq + k/100 (see _message)
        n, k = self.messages, READINGS_PER_MESSAGE
        return k * n * (n - 1) / 2 + n * sum(i / 100 for i in range(k))


def _message(site: str, seq: int) -> bytes:
    return encode(Telemetry(
        site=site, gateway=GATEWAY, equipment="dryer", device="meter", seq=seq,
        ts=1_763_700_000_000 + seq * 1000,
        readings=tuple(Reading(sensor=f"dryer.s{k}", value=seq + k / 100, unit="W")
                       for k in range(READINGS_PER_MESSAGE))))


class Gateway:
    """A test gateway that re-publishes until the broker confirms, like the real one's spool."""

    def __init__(self, broker: Broker) -> None:
        self.client = make_client(broker=broker, client_id=f"gw-{uuid.uuid4().hex[:8]}")
        connect(self.client, broker)
        wait_until(self.client.is_connected, timeout_s=15, what="the gateway's connection")

    def publish(self, sent: Sent, count: int, *, window: int = 50,
                pause_s: float = 0.0) -> None:
        """Publish `count` more messages, `window` at a time, each confirmed by the broker."""
        end = sent.messages + count
        while sent.messages < end:
            seqs = range(sent.messages, min(end, sent.messages + window))
            pending = {seq: _message(sent.site, seq) for seq in seqs}
            deadline = time.monotonic() + 60
            while pending:
                assert time.monotonic() < deadline, "the broker never confirmed"
                if not self.client.is_connected():
                    time.sleep(0.1)
                    continue
                infos = {seq: self.client.publish(telemetry_topic(sent.site, GATEWAY, "dryer"),
                                                  payload, qos=1)
                         for seq, payload in pending.items()}
                for seq, info in infos.items():
                    # Not connected (paho raises, from either call): published again below.
                    with contextlib.suppress(RuntimeError, ValueError):
                        info.wait_for_publish(timeout=5)
                        if info.is_published():
                            pending.pop(seq)
            sent.messages = seqs.stop
            if pause_s:
                time.sleep(pause_s)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _stored(influx: InfluxClient, site: str) -> tuple[int, float]:
    series = influx.query(f"SELECT count(value), sum(value) FROM readings WHERE site = '{site}'")
    if not series:
        return 0, 0.0
    _, count, total = series[0].values[0]
    return int(count), float(total)


def _assert_all_stored_once(influx: InfluxClient, sent: Sent, *, timeout_s: float) -> None:
    wait_until(lambda: _stored(influx, sent.site)[0] >= sent.points, timeout_s=timeout_s,
               what=f"{sent.points} points in InfluxDB")
    time.sleep(0.5)  # anything extra would show now
    count, total = _stored(influx, sent.site)
    assert count == sent.points
    assert total == pytest.approx(sent.value_sum())
    # one point per (sensor, timestamp): each sensor has exactly one point per message sent
    per_sensor = influx.query(f"SELECT count(value) FROM readings WHERE site = '{sent.site}' "
                              "GROUP BY sensor")
    assert sorted(int(s.values[0][1]) for s in per_sensor) == \
        [sent.messages] * READINGS_PER_MESSAGE


def _collector(mosquitto: MosquittoProcess, influx: InfluxClient, tmp_path: Path, *,
               client_id: str, receive_maximum: int = 100) -> Collector:
    service = Collector(broker=_broker(mosquitto, "collector"), influx=influx,
                        dead_letters=DeadLetterStore(tmp_path / f"{client_id}.sqlite"),
                        client_id=client_id, receive_maximum=receive_maximum,
                        batch_points=500, flush_interval_s=0.05,
                        backoff=Backoff(initial_s=0.1, max_s=0.5))
    service.start()
    assert service.connected.wait(15)
    time.sleep(0.3)  # let the SUBACK land before anything is published
    return service


def test_influxd_outage_under_load_loses_nothing_and_holds_bounded_memory(
        own_influxd: InfluxdProcess, own_mosquitto: MosquittoProcess, influx: InfluxClient,
        tmp_path: Path) -> None:
    service = _collector(own_mosquitto, influx, tmp_path, client_id=f"c-{uuid.uuid4().hex[:6]}")
    gateway = Gateway(_broker(own_mosquitto, GATEWAY))
    sent = Sent(site=f"s{uuid.uuid4().hex[:8]}")
    try:
        gateway.publish(sent, 200)
        publishing = threading.Thread(target=gateway.publish, args=(sent, 1500),
                                      kwargs={"pause_s": 0.02}, daemon=True)
        publishing.start()
        own_influxd.stop()
        retries_before = service.counters.retries
        depths = []
        outage_end = time.monotonic() + 6
        while time.monotonic() < outage_end:
            depths.append(service.counters.snapshot()["held"])
            time.sleep(0.05)
        received_during_outage = service.counters.messages
        sent_during_outage = sent.messages
        own_influxd.start()
        publishing.join(timeout=120)
        assert not publishing.is_alive()
        _assert_all_stored_once(influx, sent, timeout_s=90)
    finally:
        own_influxd.start()
        gateway.close()
        service.stop()
    assert service.counters.retries > retries_before
    # Backpressure: the collector held about `receive_maximum` unacknowledged messages, and no
    # more as the outage went on, while the gateway kept publishing; the broker kept the rest in
    # the collector's session. (Mosquitto 2.0.11 was seen to overshoot the Receive Maximum by
    # up to half of it around the moment writes stop, hence the margin.)
    assert 0 < max(depths) <= 2 * service.receive_maximum
    later = depths[len(depths) // 2:]
    assert max(later) == min(later), later
    assert sent_during_outage > received_during_outage
    assert service.counters.dead_letters == 0


def test_broker_restarts_lose_nothing(own_influxd: InfluxdProcess,
                                      own_mosquitto: MosquittoProcess, influx: InfluxClient,
                                      tmp_path: Path) -> None:
    client_id = f"c-{uuid.uuid4().hex[:6]}"
    service = _collector(own_mosquitto, influx, tmp_path, client_id=client_id)
    gateway = Gateway(_broker(own_mosquitto, GATEWAY))
    sent = Sent(site=f"s{uuid.uuid4().hex[:8]}")
    try:
        # 1. The broker restarts while messages flow.
        publishing = threading.Thread(target=gateway.publish, args=(sent, 600),
                                      kwargs={"pause_s": 0.02}, daemon=True)
        publishing.start()
        wait_until(lambda: sent.messages >= 200, timeout_s=30, what="publishing under way")
        own_mosquitto.restart()
        publishing.join(timeout=120)
        assert not publishing.is_alive()
        _assert_all_stored_once(influx, sent, timeout_s=60)
        # 2. The collector is away, messages wait in its persistent session, the broker
        # restarts (the session and its queue are saved to disk), the collector comes back.
        service.stop()
        gateway.publish(sent, 300)
        own_mosquitto.restart()
        service = _collector(own_mosquitto, influx, tmp_path, client_id=client_id)
        _assert_all_stored_once(influx, sent, timeout_s=60)
    finally:
        gateway.close()
        service.stop()


def _spawn_collector(*, mosquitto: MosquittoProcess, influx: InfluxClient, client_id: str,
                     metrics_port: int, workdir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DYNAMO_MQTT_HOST": mosquitto.host,
           "DYNAMO_MQTT_PORT": str(mosquitto.port), "DYNAMO_MQTT_USERNAME": "collector",
           "DYNAMO_MQTT_PASSWORD": mosquitto.users["collector"],
           "DYNAMO_INFLUX_URL": influx.url, "DYNAMO_INFLUX_DB": influx.database}
    with (workdir / f"{client_id}.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "dynamo", "collector", "run", "--share-group", "g",
             "--client-id", client_id, "--dead-letters", str(workdir / f"{client_id}.sqlite"),
             "--receive-maximum", "50", "--batch-points", "500", "--flush-interval", "0.05",
             "--metrics-port", str(metrics_port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)


def _metric(port: int, name: str) -> float | None:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return None
    for row in text.splitlines():
        if row.startswith(f"{name} "):
            return float(row.split()[1])
    return None


def test_three_shared_collectors_one_killed_lose_and_duplicate_nothing(
        own_influxd: InfluxdProcess, own_mosquitto: MosquittoProcess, influx: InfluxClient,
        tmp_path: Path) -> None:
    ports = {f"shared-{i}-{uuid.uuid4().hex[:4]}": free_port() for i in range(3)}
    processes = {cid: _spawn_collector(mosquitto=own_mosquitto, influx=influx, client_id=cid,
                                       metrics_port=port, workdir=tmp_path)
                 for cid, port in ports.items()}
    gateway = Gateway(_broker(own_mosquitto, GATEWAY))
    sent = Sent(site=f"s{uuid.uuid4().hex[:8]}")
    victim, victim_port = next(iter(ports.items()))
    try:
        wait_until(lambda: all(_metric(p, "dynamo_collector_connected") == 1
                               for p in ports.values()),
                   timeout_s=60, what="three collectors connected")
        time.sleep(0.5)  # SUBACKs
        publishing = threading.Thread(target=gateway.publish, args=(sent, 900),
                                      kwargs={"pause_s": 0.02}, daemon=True)
        publishing.start()
        wait_until(lambda: (_metric(victim_port, "dynamo_collector_messages_total") or 0) >= 50,
                   timeout_s=60, what="the victim's share of the load")
        # With InfluxDB down, the victim surely holds received, unwritten messages when killed.
        own_influxd.stop()
        wait_until(lambda: (_metric(victim_port, "dynamo_collector_unacknowledged") or 0) >= 20,
                   timeout_s=60, what="messages held by the victim")
        processes[victim].send_signal(signal.SIGKILL)
        processes[victim].wait(timeout=10)
        own_influxd.start()
        # Messages in flight to the killed member wait in its session (MQTT 5 §4.8.2 lets
        # the broker keep them for that client): it comes back under its client id, as
        # systemd's Restart=always does.
        time.sleep(1.0)
        processes[victim] = _spawn_collector(mosquitto=own_mosquitto, influx=influx,
                                             client_id=victim, metrics_port=victim_port,
                                             workdir=tmp_path)
        publishing.join(timeout=120)
        assert not publishing.is_alive()
        _assert_all_stored_once(influx, sent, timeout_s=90)
        shares = [_metric(p, "dynamo_collector_messages_total") or 0 for p in ports.values()]
        assert all(share > 0 for share in shares[1:]), shares  # the load was shared
    finally:
        own_influxd.start()
        gateway.close()
        stop_processes(processes.values(), timeout_s=30)
