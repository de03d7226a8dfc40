"""The systemd watchdog means it: a wedged poller stops the keep-alives and gets the gateway
restarted, the spool losing nothing; a slow, silent or dead device does not.

The supervisor here plays systemd's part (Type=notify, WatchdogSec, NotifyAccess=main,
Restart=always): it owns the NOTIFY_SOCKET, starts the real `dynamo gateway run` process with
NOTIFY_SOCKET and WATCHDOG_USEC, and when no WATCHDOG=1 comes from the main pid within
WatchdogSec, sends SIGABRT (systemd's WatchdogSignal), then SIGKILL, and starts it again.

How the hang is made. pymodbus' timeout and the poller's own `wait_for` bound every request, so
no device on the wire can wedge a poll (the half-frame device below shows it: a timeout, not a
hang). A real hang needs a fault inside the process: here a lock never released. The gateway
runs under a few lines of shim (`_SHIM`, run with `python -c`, then `dynamo`'s own `__main__`),
which, when the test creates a switch file, takes the device's line lock and leaks it (as a bug
or a deadlocked peer would) before calling the real poll, which then waits on the lock forever.
The production code carries no test hook; everything else (poll loop, heartbeats,
housekeeping, spool, publisher) is the real gateway.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from gwkit import (
    REPO,
    ModbusTestServer,
    Subscriber,
    broker_settings,
    float_words,
    meter_device,
    running,
    write_config,
)

from dynamo.devservices import MosquittoProcess, free_port, wait_until
from gateway.spool import Spool
from gateway.watchdog import Liveness, poll_loop_bound_s, poll_worst_s
from telemetry.loader import load_gateway_config
from telemetry.site import Device, SpoolOptions

WATCHDOG_S = 3.0  # the supervisor's WatchdogSec: the gateway pings every second
RESTART_S = 0.5  # RestartSec
ABORT_S = 5.0  # TimeoutAbortSec: SIGKILL if SIGABRT did not end it

# Both devices of the restart test: one request, interval 1 s, timeout 0.2 s, no retry, no
# pause. Bound, written out (docs/gateway.md "Under systemd"):
#   one attempt  = connection (0.2 + 1) + pause after connect 0 + read (2 × 0.2 + 1) = 2.6 s
#   one request  = (0 + 1) attempts × 2.6 + 0 retry sleeps + pause 0               = 2.6 s
#   one poll     = 1 request × 2.6 + final pause 0                                  = 2.6 s
#   loop bound   = interval 1 + line wait 0 + poll 2.6 + margin 5                   = 8.6 s
BOUND_S = 8.6

_SHIM = """
import os, runpy, sys
from pathlib import Path
from gateway.poller import DevicePoller

switch, device = Path(os.environ["WATCHDOG_TEST_SWITCH"]), os.environ["WATCHDOG_TEST_DEVICE"]
real_poll = DevicePoller.poll

async def poll(self):
    if self.device.id == device and switch.exists():
        await self.line.lock.acquire()  # and never released
        switch.unlink()
    return await real_poll(self)

DevicePoller.poll = poll
sys.argv[0] = "dynamo"
runpy.run_module("dynamo", run_name="__main__", alter_sys=True)
"""


@dataclass
class Run:
    """One start of the gateway under the supervisor."""

    process: subprocess.Popen[bytes]
    log: Path
    started: float
    ready: float | None = None
    pings: list[float] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    aborted: float | None = None  # when the watchdog fired (SIGABRT)

    def last_alive(self) -> float | None:
        return self.pings[-1] if self.pings else self.ready

    def health(self) -> dict[str, str]:
        """The devices' health in the last STATUS= line ("…; devices: a=ok, b=timeout")."""
        if not self.statuses:
            return {}
        _, _, devices = self.statuses[-1].partition("devices: ")
        return dict(d.split("=", 1) for d in devices.split(", ") if "=" in d)


class Supervisor:
    """systemd's part: notify socket, watchdog timer, SIGABRT then SIGKILL, restart."""

    def __init__(self, *, argv: list[str], env: dict[str, str], workdir: Path) -> None:
        self.argv, self.workdir = argv, workdir
        self.address = str(workdir / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.address)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)  # sender's pid
        self.sock.settimeout(0.05)
        self.env = {**env, "NOTIFY_SOCKET": self.address,
                    "WATCHDOG_USEC": str(int(WATCHDOG_S * 1e6))}
        self.runs: list[Run] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._start()
        self._thread = threading.Thread(target=self._supervise, daemon=True)
        self._thread.start()

    def _start(self) -> None:
        log = self.workdir / f"gateway-{len(self.runs)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(self.argv, env=self.env, stdout=out,
                                       stderr=subprocess.STDOUT, cwd=REPO)
        with self._lock:
            self.runs.append(Run(process=process, log=log, started=time.monotonic()))

    def _receive(self) -> tuple[int, str] | None:
        try:
            data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except TimeoutError:
            return None
        pid = next((struct.unpack("iII", d[:12])[0] for level, kind, d in ancillary
                    if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS), -1)
        return pid, data.decode()

    def _supervise(self) -> None:
        while not self._closing.is_set():
            received = self._receive()
            now = time.monotonic()
            run = self.runs[-1]
            if received is not None and received[0] == run.process.pid:  # NotifyAccess=main
                with self._lock:
                    if received[1] == "READY=1":
                        run.ready = now
                    elif received[1] == "WATCHDOG=1":
                        run.pings.append(now)
                    elif received[1].startswith("STATUS="):
                        run.statuses.append(received[1][len("STATUS="):])
            alive = run.last_alive()
            if alive is not None and run.aborted is None and now - alive > WATCHDOG_S:
                run.aborted = now
                run.process.send_signal(signal.SIGABRT)
                try:
                    run.process.wait(ABORT_S)
                except subprocess.TimeoutExpired:
                    run.process.kill()
                    run.process.wait(15)
            if run.process.poll() is not None and not self._closing.is_set():
                time.sleep(RESTART_S)  # Restart=always
                self._start()

    def current(self) -> Run:
        with self._lock:
            return self.runs[-1]

    def close(self) -> int | None:
        """Stop supervising, then stop the gateway as `systemctl stop` does; its exit code."""
        self._closing.set()
        self._thread.join(30)
        process = self.runs[-1].process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(15)
        self.sock.close()
        return process.returncode


class HalfFrameDevice:
    """A Modbus TCP device on raw sockets: answers reads with zero registers until `half` is
    set; from then on, it reads each request, sends the header, function code and byte count
    of its answer (the registers never come) and says nothing more on that connection."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.1)
        self.port = self.server.getsockname()[1]
        self.half = threading.Event()
        self.half_frames = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.1)
        buffer = b""
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                if not data:
                    return
                buffer += data
                while len(buffer) >= 12 and len(buffer) >= 6 + struct.unpack(">H", buffer[4:6])[0]:
                    size = 6 + struct.unpack(">H", buffer[4:6])[0]
                    frame, buffer = buffer[:size], buffer[size:]
                    tid, _, _, unit, function = struct.unpack(">HHHBB", frame[:8])
                    count = struct.unpack(">H", frame[10:12])[0]
                    pdu = bytes([function, 2 * count]) + bytes(2 * count)
                    answer = struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu
                    if self.half.is_set():
                        conn.sendall(answer[:9])  # MBAP header (7), function, byte count
                        self.half_frames += 1
                    else:
                        conn.sendall(answer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.server.close()


def _device(device_id: str, port: int) -> dict[str, object]:
    """One SDM120 power reading, polled every second, quick to give up (see BOUND_S)."""
    return {
        "id": device_id, "template": "eastron-sdm120", "equipment": "rig",
        "connection": {"type": "tcp", "host": "127.0.0.1", "port": port}, "unit_id": 1,
        "poll_interval_s": 1.0, "timeout_s": 0.2, "retries": 0, "backoff_max_s": 1,
        "sensors": [{"id": f"rig.{device_id}.power", "point": "total_power_w",
                     "role": "electric_power"}],
    }


@pytest.fixture
def half_frame_device() -> Iterator[HalfFrameDevice]:
    device = HalfFrameDevice()
    yield device
    device.close()


def _log_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
    return lines


@pytest.mark.parametrize("write_behind_s", [0, 120], ids=["synced", "write-behind"])
def test_a_wedged_poller_gets_the_gateway_restarted_and_the_spool_loses_nothing(
        tmp_path: Path, own_broker: MosquittoProcess, half_frame_device: HalfFrameDevice,
        modbus_server: Callable[..., ModbusTestServer], write_behind_s: int) -> None:
    site = f"w{uuid.uuid4().hex[:10]}"
    wedged = modbus_server()
    wedged.set_registers("input", 12, float_words(250.0))
    spool_dir = tmp_path / "spool"
    # With write-behind everything stays in the RAM file: the abort must not lose it.
    options = SpoolOptions(write_behind_s=write_behind_s, ram_dir=str(tmp_path / "ram"))
    config = write_config(tmp_path / "gw.yaml", site=site,
                          broker=broker_settings(own_broker, "test-gw"), spool_dir=spool_dir,
                          devices=[_device("half", half_frame_device.port),
                                   _device("wedged", wedged.port)],
                          extra={"spool": options.model_dump(include={"write_behind_s",
                                                                      "ram_dir"})})
    subscriber = Subscriber(broker=broker_settings(own_broker, "collector"),
                            topic=f"dynamo/v1/{site}/#")
    wait_until(subscriber.subscribed.is_set, timeout_s=30, what="the subscription")
    switch = tmp_path / "hang-now"
    env = {**os.environ, "WATCHDOG_TEST_SWITCH": str(switch), "WATCHDOG_TEST_DEVICE": "wedged",
           "PYTHONFAULTHANDLER": "1"}
    supervisor = Supervisor(argv=[sys.executable, "-c", _SHIM, "gateway", "run", "--config",
                                  str(config), "--metrics-port", "0"], env=env, workdir=tmp_path)
    first = supervisor.current()
    try:
        def devices_seen() -> set[str]:
            return {m["device"] for m in subscriber.telemetry()}

        wait_until(lambda: len(first.pings) >= 2 and devices_seen() == {"half", "wedged"},
                   timeout_s=60, what="the first keep-alives and both devices' telemetry")

        # 1. The device answers half a frame and then nothing: pymodbus times out, each poll
        # completes, the keep-alives go on for longer than the device's bound.
        half_frame_device.half.set()
        wait_until(lambda: first.health().get("half") == "timeout", timeout_s=30,
                   what="the half-frame device's polls to time out")
        silent_from = time.monotonic()
        time.sleep(BOUND_S + 1.5)
        assert first.aborted is None and first.process.poll() is None, \
            first.log.read_text()[-3000:]
        pings = [t for t in first.pings if t >= silent_from]
        gaps = [b - a for a, b in zip([silent_from, *pings], [*pings, time.monotonic()],
                                      strict=True)]
        assert max(gaps) < WATCHDOG_S, gaps
        assert half_frame_device.half_frames >= 3

        # 2. The other poller wedges on a lock never released: the keep-alives stop within
        # its bound, the supervisor aborts the process and starts it again.
        switch.touch()
        wait_until(lambda: not switch.exists(), timeout_s=30, what="the poller to wedge")
        wedged_at = time.monotonic()
        wait_until(lambda: first.aborted is not None, timeout_s=BOUND_S + WATCHDOG_S + 15,
                   what="the watchdog to fire")
        produced = {m["seq"] for m in subscriber.telemetry()}  # delivered before the kill
        last_ping = first.pings[-1]
        # The wedged loop's last heartbeat came at most one interval (+ a poll) before the
        # switch was taken; the keep-alives stop once it is older than the bound.
        assert wedged_at - 1.0 - 3.0 <= last_ping - BOUND_S <= wedged_at + 0.5, \
            (last_ping - wedged_at, BOUND_S)
        aborted = first.aborted
        assert aborted is not None and WATCHDOG_S <= aborted - last_ping <= WATCHDOG_S + 1.0
        wait_until(lambda: len(supervisor.runs) == 2, timeout_s=30, what="the restart")
        second = supervisor.current()
        wait_until(lambda: len(second.pings) >= 2 and second.health().get("wedged") == "ok",
                   timeout_s=60, what="the restarted gateway to poll and ping")
        assert supervisor.close() == 0, second.log.read_text()[-3000:]
    finally:
        supervisor.close()
        subscriber.close()

    # The stall is logged once, naming the device; SIGABRT left a traceback (faulthandler).
    first_log = first.log.read_text(errors="replace")
    stalls = [line for line in _log_lines(first.log) if line.get("task") == "poll"
              and "no progress" in line.get("event", "")]
    assert [line["device"] for line in stalls] == ["wedged"], first_log[-3000:]
    assert stalls[0]["bound_s"] == BOUND_S
    assert "Fatal Python error: Aborted" in first_log
    # Nothing was lost: no collector acknowledged anything, so every seq ever produced —
    # those delivered before the kill among them — is still in the spool, without a gap.
    spool = Spool(path=spool_dir / "spool.sqlite", options=options)
    try:
        assert spool.void is None  # aborted, not powered off
        held = [m.seq for m in spool.read(start=0, end=None, limit=100_000)]
        next_seq = spool.next_seq
    finally:
        spool.close()
    assert produced and produced <= set(held)
    assert held == list(range(next_seq))
    assert next_seq > max(produced) + 1, "the restarted gateway went on numbering"


def test_a_healthy_gateway_with_a_dead_device_keeps_pinging(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mosquitto: MosquittoProcess,
        modbus_server: Callable[..., ModbusTestServer]) -> None:
    meter = modbus_server()
    meter.set_registers("input", 12, float_words(100.0))
    dead = {**_device("dead", free_port()), "poll_interval_s": 0.5}  # connection refused
    config = load_gateway_config(write_config(
        tmp_path / "gw.yaml", site=f"d{uuid.uuid4().hex[:10]}",
        broker=broker_settings(mosquitto, "test-gw"), spool_dir=tmp_path / "spool",
        devices=[meter_device(meter, interval=0.5), dead]))
    # The dead device's bound: interval 0.5 + one poll 2.6 (as BOUND_S) + margin 5 = 8.1 s.
    dead_bound_s = 8.1
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify.sock"))
        sock.settimeout(0.1)
        monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
        monkeypatch.setenv("WATCHDOG_USEC", "1500000")  # WatchdogSec 1.5 s: a ping each 0.5 s
        pings: list[float] = []
        statuses: list[str] = []
        with running(config) as gateway:
            start = time.monotonic()
            while time.monotonic() - start < dead_bound_s + 2:
                with_message = _recv(sock)
                if with_message == "WATCHDOG=1":
                    pings.append(time.monotonic())
                elif with_message and with_message.startswith("STATUS="):
                    statuses.append(with_message)
            ages = gateway.liveness.ages()
            registry = gateway.metrics.registry
            dead_polls = registry.get_sample_value("dynamo_gateway_polls_total",
                                                   {"device": "dead", "result": "error"})
            bound_gauge = registry.get_sample_value(
                "dynamo_gateway_poll_heartbeat_bound_seconds", {"device": "dead"})
            age_gauge = registry.get_sample_value("dynamo_gateway_poll_heartbeat_age_seconds",
                                                  {"device": "dead"})
    gaps = [b - a for a, b in zip([start, *pings], [*pings, time.monotonic()], strict=True)]
    assert max(gaps) < 1.5, gaps  # never silent for a WatchdogSec
    assert "dead=no connection" in statuses[-1] and "meter=ok" in statuses[-1]
    assert dead_polls is not None and dead_polls >= 4  # its polls complete (backing off ≤ 1 s)
    assert bound_gauge == pytest.approx(dead_bound_s)
    assert ages["poll:dead"][1] == pytest.approx(dead_bound_s)
    assert age_gauge is not None and age_gauge < dead_bound_s / 2  # fresh, not merely alive
    assert ages["forwarder"][0] < 5.0


def test_a_shared_line_counts_its_neighbours_and_a_removed_device_is_forgotten(
        tmp_path: Path, mosquitto: MosquittoProcess) -> None:
    """Two devices behind one RTU-over-TCP converter (which is down: their polls complete at
    once), each as BOUND_S's device: one poll 2.6 s. Each waits for at most one poll of the other:
      bound = interval 1 + line wait 2.6 + poll 2.6 + margin 5 = 11.2 s."""
    port = free_port()
    devices = [{**_device(name, port), "unit_id": unit,
                "connection": {"type": "rtu_over_tcp", "host": "127.0.0.1", "port": port}}
               for name, unit in (("first", 1), ("second", 2))]
    path = write_config(tmp_path / "gw.yaml", site=f"l{uuid.uuid4().hex[:10]}",
                        broker=broker_settings(mosquitto, "test-gw"),
                        spool_dir=tmp_path / "spool", devices=devices)
    config = load_gateway_config(path)
    with running(config) as gateway:
        wait_until(lambda: {"poll:first", "poll:second"} <= gateway.liveness.ages().keys(),
                   timeout_s=30, what="both poll loops' heartbeats")
        bounds = {name: bound for name, (_, bound) in gateway.liveness.ages().items()}
        assert bounds["poll:first"] == pytest.approx(11.2)
        assert bounds["poll:second"] == pytest.approx(11.2)
        # A new configuration without `second`: its loop stops, and is no longer watched.
        write_config(path, site=config.site, broker=config.broker, spool_dir=tmp_path / "spool",
                     devices=devices[:1])
        loop = gateway._loop
        assert loop is not None
        asyncio.run_coroutine_threadsafe(gateway.reconfigure(load_gateway_config(path)),
                                         loop).result(30)
        ages = gateway.liveness.ages()
        assert "poll:second" not in ages and "poll:first" in ages
        # Alone on its line now: interval 1 + poll 2.6 + margin 5 = 8.6 s, from its next poll.
        wait_until(lambda: gateway.liveness.ages()["poll:first"][1] == pytest.approx(8.6),
                   timeout_s=30, what="the bound without the removed neighbour")
        assert gateway.liveness.fresh()


def _recv(sock: socket.socket) -> str | None:
    try:
        return sock.recv(4096).decode()
    except TimeoutError:
        return None


def test_the_bound_of_a_poll_loop_counts_every_wait(tmp_path: Path) -> None:
    """An RS-485 device: 3 requests, timeout 1 s, 2 retries, 0.5 s after connecting, 0.1 s
    between requests, every 10 s, behind 12 s of other devices' polls on its line:
      one attempt = (1 + 1) + 0.5 + (2 × 1 + 1)         = 5.5 s
      one request = 3 attempts × 5.5 + 2 × 1 + 0.1      = 18.6 s
      one poll    = 3 requests × 18.6 + 0.1             = 55.9 s
      loop bound  = 10 + 12 + 55.9 + 5 (margin)         = 82.9 s"""
    device = Device.model_validate({
        "id": "rs485", "template": "eastron-sdm120", "equipment": "rig",
        "connection": {"type": "rtu", "port": "/dev/ttyUSB0"},
        "poll_interval_s": 10, "timeout_s": 1, "retries": 2, "pause_after_connect_s": 0.5,
        "pause_between_requests_s": 0.1,
        "sensors": [{"id": "rig.rs485.power", "point": "total_power_w",
                     "role": "electric_power"}]})
    assert poll_worst_s(device, 3) == pytest.approx(55.9)
    assert poll_loop_bound_s(device, 3, line_wait_s=12) == pytest.approx(82.9)


def test_a_stall_is_logged_once_with_its_device_and_its_recovery(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    liveness = Liveness(clock=lambda: now[0])
    liveness.beat("poll:meter", 8.6)
    liveness.beat("forwarder", 120.0)
    now[0] = 108.5
    assert liveness.fresh()
    now[0] = 108.7  # 8.7 s > 8.6 s
    with caplog.at_level("WARNING", logger="gateway.watchdog"):
        assert not liveness.fresh()
        now[0] = 130.0
        assert not liveness.fresh()  # still stale: not logged again
        liveness.beat("poll:meter", 8.6)
        assert liveness.fresh()
        liveness.forget("poll:meter")  # a device removed: no longer watched
        now[0] = 219.9  # the forwarder's 120 s bound: 219.9 - 100 = 119.9 s
        assert liveness.fresh()
        now[0] = 220.1
        assert not liveness.fresh()
    records = [(r.levelname, getattr(r, "device", None), getattr(r, "task", None))
               for r in caplog.records]
    assert records == [("ERROR", "meter", "poll"), ("WARNING", "meter", "poll"),
                       ("ERROR", None, "forwarder")]
    assert liveness.ages().keys() == {"forwarder"}
