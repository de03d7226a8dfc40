"""Crash-test helpers: three gateways streaming through a broker and a collector that the tests
kill with SIGKILL at random moments, and the checks that nothing acknowledged was lost.

Every service is real: Debian's mosquitto and influxd, the gateway agent polling pymodbus
servers, the collector (in-process or as `dynamo collector run`). The broker is each test's own
(it is killed), with an ACL written here that grants exactly what docs/mqtt.md says: each
gateway its own prefix and the read of its own acknowledgement, the collector the write of
every acknowledgement.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import secrets
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import yaml
from gwkit import ModbusTestServer, float_words, in_loop_thread

from dynamo.devservices import MosquittoProcess
from gateway.agent import Gateway
from telemetry.influx.client import InfluxClient
from telemetry.loader import load_gateway_config
from telemetry.site import Broker, GatewayConfig

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "firmware-config" / "templates"
GATEWAYS = ("gw-a", "gw-b", "gw-c")
POLL_S = 0.1  # each gateway sends ten messages a second
SENSOR = "rig.meter.power"


def soak() -> bool:
    """DYNAMO_SOAK=1: the issue's full runs (2 minutes of streaming, 20 kills spread over it)."""
    return os.environ.get("DYNAMO_SOAK") == "1"


def kill_schedule(rng: random.Random, kills: int) -> list[float]:
    """Seconds to wait before each kill: 0.7–1.7 s in the suite (~25 s for 20 kills); spread
    over two minutes under DYNAMO_SOAK."""
    if soak():
        return [rng.uniform(3.0, 9.0) for _ in range(kills)]
    return [rng.uniform(0.7, 1.7) for _ in range(kills)]


def acl_text(gateways: tuple[str, ...] = GATEWAYS) -> str:
    """The rights of docs/mqtt.md for these gateways, under any site (each test has its own)."""
    out = []
    for gateway in gateways:
        out.append(f"user {gateway}\ntopic readwrite dynamo/v1/+/{gateway}/#\n"
                   f"topic read dynamo/v1/+/ack/{gateway}\n\n")
    out.append("user collector\ntopic read dynamo/v1/#\ntopic write dynamo/v1/+/ack/+\n")
    return "".join(out)


def make_broker(workdir: Path, gateways: tuple[str, ...] = GATEWAYS,
                acl: str | None = None) -> MosquittoProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    acl_file = workdir / "acl"
    acl_file.write_text(acl if acl is not None else acl_text(gateways))
    users = {u: secrets.token_urlsafe(12) for u in ("collector", *gateways)}
    return MosquittoProcess(workdir=workdir / "broker", users=users, acl_file=acl_file)


def broker_settings(broker: MosquittoProcess, user: str) -> Broker:
    return Broker(host=broker.host, port=broker.port, username=user,
                  password=broker.users[user], keepalive_s=5)


def gateway_config(directory: Path, *, site: str, gateway: str, broker: MosquittoProcess,
                   meter: ModbusTestServer, spool: dict[str, Any] | None = None,
                   extra_devices: list[dict[str, Any]] | None = None,
                   equipment: tuple[str, ...] = ("rig",)) -> GatewayConfig:
    """A gateway polling one Eastron SDM120 (`meter`, equipment `rig`) every POLL_S."""
    device = {
        "id": "meter", "template": "eastron-sdm120", "equipment": "rig",
        "connection": {"type": "tcp", "host": "127.0.0.1", "port": meter.port},
        "unit_id": meter.unit_id, "poll_interval_s": POLL_S, "timeout_s": 0.5, "retries": 0,
        "backoff_max_s": 1,
        "sensors": [{"id": SENSOR, "point": "total_power_w", "role": "electric_power"}],
    }
    config = {
        "template_dirs": [str(TEMPLATES)], "site": site, "gateway": gateway,
        "spool_dir": str(directory / gateway / "spool"),
        "broker": broker_settings(broker, gateway).model_dump(exclude_none=True),
        "equipment": [{"id": e, "kind": "other"} for e in equipment],
        "devices": [device, *(extra_devices or [])],
        "status_interval_s": 2,
        "spool": {"synchronous": "normal", "resend_after_s": 2, **(spool or {})},
    }
    path = directory / f"{gateway}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return load_gateway_config(path)


def meter(make: Callable[..., ModbusTestServer], watts: float = 1500.0) -> ModbusTestServer:
    server = make()
    server.set_registers("input", 12, float_words(watts))
    return server


@dataclass
class Running:
    """A gateway agent in its own thread and event loop, and the (seq, ts) of every commit."""

    gateway: Gateway
    commits: dict[int, int] = field(default_factory=dict)


@contextmanager
def running(config: GatewayConfig) -> Iterator[Running]:
    """Like gwkit.running, and records each commit's seq and timestamp before the first poll."""

    def make() -> Running:
        gateway = Gateway(config=config)
        record = Running(gateway)
        commit = gateway.forwarder.commit

        async def recording(**kwargs: Any) -> int:
            # Recorded when the commit is done, even if the poll awaiting it is cancelled by a
            # stop meanwhile: the message is on disk and a clean stop still sends it.
            task = asyncio.ensure_future(commit(**kwargs))

            def note(done: asyncio.Future[int]) -> None:
                if not done.cancelled() and done.exception() is None:
                    record.commits[done.result()] = kwargs["ts"]

            task.add_done_callback(note)
            return await asyncio.shield(task)

        gateway.forwarder.commit = recording  # type: ignore[method-assign]
        return record

    with in_loop_thread(make, lambda record, stop: record.gateway.run(stop=stop)) as record:
        yield record


# Collector processes fork from a server that imported the collector once: a kill every second
# or two then hits a working collector, not an interpreter still importing (seconds on a
# loaded machine). Each is still a process of its own, killed with SIGKILL.
_FORKS = multiprocessing.get_context("forkserver")
_FORKS.set_forkserver_preload(["dynamo.cli", "collector.service", "collector.points",
                               "telemetry.influx.client"])


def _collector_main(argv: list[str], env: dict[str, str], log_path: str) -> None:
    os.environ.update(env)
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    from dynamo.cli import main

    main(argv)


def spawn_collector(*, broker: MosquittoProcess, influx: InfluxClient, client_id: str,
                    workdir: Path, extra: tuple[str, ...] = ()) -> BaseProcess:
    """`dynamo collector run` as its own process (the one a test kills -9)."""
    env = {"DYNAMO_MQTT_HOST": broker.host, "DYNAMO_MQTT_PORT": str(broker.port),
           "DYNAMO_MQTT_USERNAME": "collector", "DYNAMO_MQTT_PASSWORD": broker.users["collector"],
           "DYNAMO_INFLUX_URL": influx.url, "DYNAMO_INFLUX_DB": influx.database}
    argv = ["collector", "run", "--client-id", client_id,
            "--dead-letters", str(workdir / f"{client_id}.sqlite"), "--receive-maximum", "200",
            "--batch-points", "500", "--flush-interval", "0.05", *extra]
    process = _FORKS.Process(target=_collector_main,
                             args=(argv, env, str(workdir / f"{client_id}.log")), daemon=True)
    process.start()
    return process


def kill(process: BaseProcess) -> None:
    """SIGKILL one process this test started, and reap it."""
    if process.is_alive():
        process.kill()
    process.join(timeout=10)


def stored_times(influx: InfluxClient, site: str, gateway: str) -> list[int]:
    """Timestamps (ms) of the gateway's points of SENSOR, one per point stored."""
    series = influx.query(f"SELECT value FROM readings WHERE site = '{site}' AND "
                          f"gateway = '{gateway}' AND sensor = '{SENSOR}'")
    return [int(row[0]) for row in series[0].values] if series else []


def lost_events(influx: InfluxClient, site: str) -> int:
    series = influx.query(f"SELECT count(seq) FROM sequence_events WHERE site = '{site}' "
                          "AND kind = 'lost'")
    return int(series[0].values[0][1]) if series else 0


def new_site() -> str:
    return f"f{uuid.uuid4().hex[:10]}"


def wait_for(predicate: Callable[[], bool], *, timeout_s: float, what: str,
             interval_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)
