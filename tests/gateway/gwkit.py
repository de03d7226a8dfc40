"""Gateway test helpers: a pymodbus server of the tests' own, a subscriber, config files.

`ModbusTestServer` is a real pymodbus TCP (or RTU) server whose register image the test sets,
and which can be stopped, restarted on the same port, made busy (exception 6) or made silent
(accepts requests and never answers, like a hung converter).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
import pytest
import yaml
from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType as SimDataType
from pymodbus.simulator import SimData, SimDevice

from dynamo.devservices import MosquittoProcess, free_port, wait_until
from gateway.agent import Gateway
from gateway.metrics import scrape
from telemetry.influx.client import InfluxClient
from telemetry.mqtt import connect, make_client
from telemetry.site import Broker, GatewayConfig

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "firmware-config" / "templates"
_SIZE = 200  # registers (and bits) per table
_FUNCTION_TABLE = {1: "coil", 2: "discrete_input", 3: "holding", 4: "input"}


class ModbusTestServer:
    """One Modbus device (unit `unit_id`) served from a background thread."""

    def __init__(self, *, unit_id: int = 1, port: int | None = None,
                 serial_port: str | None = None, rtu_over_tcp: bool = False) -> None:
        self.unit_id = unit_id
        self.rtu_over_tcp = rtu_over_tcp
        self.port = port or free_port()
        self.serial_port = serial_port
        self.tables: dict[str, list[int]] = {t: [0] * _SIZE for t in _FUNCTION_TABLE.values()}
        self.busy_answers = 0  # the next N requests get exception 6 (device busy)
        self.silent = False  # accept requests, never answer
        self.requests = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def set_registers(self, table: str, address: int, words: list[int]) -> None:
        self.tables[table][address:address + len(words)] = words

    async def _action(self, function_code: int, start_address: int, _address: int, _count: int,
                      registers: list[int], set_values: Any) -> ExcCodes | None:
        self.requests += 1
        if self.silent:
            await asyncio.sleep(3600)
        if self.busy_answers > 0:
            self.busy_answers -= 1
            return ExcCodes.DEVICE_BUSY
        table = _FUNCTION_TABLE.get(function_code)
        if table is None or set_values is not None:
            return ExcCodes.ILLEGAL_FUNCTION
        # `registers` is the whole block, which starts at `start_address`.
        if table in ("coil", "discrete_input"):
            for i in range(min(len(registers), _SIZE // 16)):  # 16 bits a register, bit 0 first
                bits = self.tables[table][(start_address + i) * 16:(start_address + i + 1) * 16]
                registers[i] = sum(1 << b for b, v in enumerate(bits) if v)
        else:
            for i in range(min(len(registers), _SIZE - start_address)):
                registers[i] = self.tables[table][start_address + i]
        return None

    def _device(self) -> SimDevice:
        blocks = (
            [SimData(address=0, values=[False] * _SIZE, datatype=SimDataType.BITS)],
            [SimData(address=0, values=[False] * _SIZE, datatype=SimDataType.BITS)],
            [SimData(address=0, count=_SIZE, values=0, datatype=SimDataType.REGISTERS)],
            [SimData(address=0, count=_SIZE, values=0, datatype=SimDataType.REGISTERS)],
        )
        return SimDevice(id=self.unit_id, simdata=blocks, action=self._action)

    def start(self) -> ModbusTestServer:
        ready = threading.Event()
        failure: list[BaseException] = []
        self._stopped.clear()

        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            server: ModbusTcpServer | ModbusSerialServer
            if self.serial_port:
                server = ModbusSerialServer([self._device()], port=self.serial_port,
                                            baudrate=19200)
            else:
                server = ModbusTcpServer(
                    [self._device()], address=("127.0.0.1", self.port),
                    framer=FramerType.RTU if self.rtu_over_tcp else FramerType.SOCKET)
            await server.serve_forever(background=True)
            ready.set()
            while not self._stopped.is_set():
                await asyncio.sleep(0.05)
            await server.shutdown()  # type: ignore[no-untyped-call]

        def main() -> None:
            try:
                asyncio.run(serve())
            except BaseException as exc:
                failure.append(exc)
                ready.set()

        self._thread = threading.Thread(target=main, daemon=True)
        self._thread.start()
        if not ready.wait(15) or failure:
            raise RuntimeError(f"test Modbus server did not start: {failure}")
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(15)
            self._thread = None


def broker_settings(broker: MosquittoProcess, user: str) -> Broker:
    return Broker(host=broker.host, port=broker.port, username=user,
                  password=broker.users[user], keepalive_s=5)


class Subscriber:
    """Collects every message below a topic filter (QoS 1, persistent session)."""

    def __init__(self, *, broker: Broker, topic: str = "dynamo/v1/#",
                 client_id: str | None = None) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._client = make_client(broker=broker,
                                   client_id=client_id or f"sub-{secrets.token_hex(4)}")
        self.subscribed = threading.Event()
        self._client.on_connect = lambda c, _u, _f, _r, _p: c.subscribe(topic, qos=1)
        self._client.on_subscribe = lambda *_: self.subscribed.set()
        self._client.on_message = self._received
        connect(self._client, broker, clean_start=False, session_expiry_s=3600)

    def _received(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, json.loads(message.payload)))

    def telemetry(self) -> list[dict[str, Any]]:
        with self._lock:
            return [m for t, m in self.messages if "/telemetry/" in t]

    def statuses(self) -> list[dict[str, Any]]:
        with self._lock:
            return [m for t, m in self.messages if t.endswith("/status")]

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def write_config(path: Path, *, broker: Broker, spool_dir: Path,
                 devices: list[dict[str, Any]], templates: Path = TEMPLATES, site: str = "test",
                 extra: dict[str, Any] | None = None) -> Path:
    """A gateway configuration file (gateway `test-gw`, equipment `rig`)."""
    config = {
        "template_dirs": [str(templates)],
        "site": site, "gateway": "test-gw",
        "spool_dir": str(spool_dir),
        "broker": broker.model_dump(exclude_none=True),
        "equipment": [{"id": "rig", "kind": "other"}],
        "devices": devices,
        **(extra or {}),
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def float_words(value: float) -> list[int]:
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return [high, low]


def meter_device(server: ModbusTestServer, *, device_id: str = "meter", interval: float = 0.2,
                 **options: object) -> dict[str, object]:
    """An Eastron SDM120 on the test server, read every `interval` seconds."""
    return {
        "id": device_id, "template": "eastron-sdm120", "equipment": "rig",
        "connection": {"type": "tcp", "host": "127.0.0.1", "port": server.port},
        "unit_id": server.unit_id, "poll_interval_s": interval, "timeout_s": 0.5,
        "retries": 0, "backoff_max_s": 1,
        "sensors": [
            {"id": f"rig.{device_id}.energy", "point": "import_energy_kwh",
             "role": "electric_energy"},
            {"id": f"rig.{device_id}.power", "point": "total_power_w", "role": "electric_power"},
        ],
        **options,
    }


@contextmanager
def in_loop_thread(make: Callable[[], T],
                   run: Callable[[T, asyncio.Event], Awaitable[Any]]) -> Iterator[T]:
    """`make()` then `run(made, stop)` in a background thread with its own event loop (made
    inside the loop: pymodbus needs a running one), stopped and checked on exit."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    made: list[T] = []
    started = threading.Event()
    failure: list[BaseException] = []

    async def main() -> None:
        made.append(make())
        started.set()
        await run(made[0], stop)

    def thread_main() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as exc:
            failure.append(exc)
            started.set()
        finally:
            loop.close()

    thread = threading.Thread(target=thread_main, daemon=True)
    thread.start()
    assert started.wait(30) and made, failure
    try:
        yield made[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        assert not thread.is_alive(), "the gateway did not stop"
        assert not failure, failure


@contextmanager
def running(config: GatewayConfig, **options: Any) -> Iterator[Gateway]:
    """The gateway in a background thread with its own event loop, stopped on exit."""
    with in_loop_thread(lambda: Gateway(config=config, **options),
                        lambda gateway, stop: gateway.run(stop=stop)) as gateway:
        yield gateway


@pytest.fixture
def modbus_server() -> Iterator[Callable[..., ModbusTestServer]]:
    """Pymodbus servers made on demand (`modbus_server(**kwargs)`), stopped after the test;
    the gateway and crash tests' conftests take it from here."""
    servers: list[ModbusTestServer] = []

    def make(**kwargs: Any) -> ModbusTestServer:
        server = ModbusTestServer(**kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def spooled_seqs(path: Path) -> list[int]:
    """The sequence numbers a spool file (the card's, or a write-behind RAM one) holds, read on
    a connection of the test's own; none while the file or its table does not exist yet."""
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [int(row[0]) for row in db.execute("SELECT seq FROM messages ORDER BY seq")]
    except sqlite3.OperationalError:  # created, not yet given its tables
        return []
    finally:
        db.close()


class Chain:
    """The central side of a gateway test, for real: a subscriber to the site's topics
    (subscribed before anything is published), a `dynamo collector run` writing to a fresh
    InfluxDB database, a client of that database; and `python -m dynamo …` processes, each
    logging to `logs/{name}.log`. `close()` stops it all."""

    def __init__(self, tmp_path: Path, *, site: str, mosquitto: MosquittoProcess,
                 influx_url: str) -> None:
        database = f"t_{secrets.token_hex(6)}"
        self.env = {**os.environ, "DYNAMO_MQTT_HOST": mosquitto.host,
                    "DYNAMO_MQTT_PORT": str(mosquitto.port), "DYNAMO_MQTT_USERNAME": "collector",
                    "DYNAMO_MQTT_PASSWORD": mosquitto.users["collector"],
                    "DYNAMO_INFLUX_URL": influx_url, "DYNAMO_INFLUX_DB": database}
        self.logs = tmp_path / "logs"
        self.logs.mkdir(exist_ok=True)
        self.subscriber = Subscriber(broker=broker_settings(mosquitto, "collector"),
                                     topic=f"dynamo/v1/{site}/#")
        self.influx = InfluxClient(url=influx_url, database=database)
        self._collector = self.spawn("collector", "collector", "run", "--client-id",
                                     f"collector-{site}", "--dead-letters",
                                     str(tmp_path / "dead.sqlite"))
        # What the broker receives before the subscription is nobody's.
        wait_until(self.subscriber.subscribed.is_set, timeout_s=30, what="the subscription")

    def close(self) -> None:
        self.subscriber.close()
        self.influx.close()
        self.stop(self._collector)

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as log:
            return subprocess.Popen([sys.executable, "-m", "dynamo", *args], env=self.env,
                                    stdout=log, stderr=subprocess.STDOUT, cwd=REPO)

    def gateway(self, config: Path, *, metrics_port: int = 0) -> subprocess.Popen[bytes]:
        """`dynamo gateway run`; its metrics on `metrics_port` (0: none)."""
        return self.spawn("gateway", "gateway", "run", "--config", str(config),
                          "--metrics-port", str(metrics_port))

    def log(self, name: str) -> str:
        """The end of a process's log, for an assertion's message."""
        return (self.logs / f"{name}.log").read_text()[-3000:]

    @staticmethod
    def stop(process: subprocess.Popen[bytes]) -> None:
        """SIGTERM, and SIGKILL if it has not stopped within 30 s."""
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def gateway_metric(port: int, name: str) -> float | None:
    """One sample of a running gateway's metrics (`dynamo gateway run --metrics-port`); None
    while it does not answer yet."""
    try:
        return scrape(f"http://127.0.0.1:{port}/metrics", timeout_s=2).get(name)
    except OSError:
        return None
