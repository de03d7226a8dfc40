"""The gateway's SD-card writes: bytes written per hour, beside the readings' own size.

    .venv/bin/python bench/gateway/sdcard.py [--spool both|synced|write-behind]
        [--write-behind-s 120] [--interval 10] [--minutes 5] [--real-hour]

A real `python -m dynamo gateway run` polls three devices of the freezer simulator (energy
meter, compressor meter, refrigeration controller), with each spool mode (every cycle synced to
the card; write-behind: a RAM file on a tmpfs first, the card only for what is not acknowledged
in time, as the Ariège configurations do) in two cases:

- **acknowledged**: a real Mosquitto and a real collector (writing to a real influxd) that
  acknowledges end to end, so messages leave the spool as they are stored (the normal case);
- **broker down**: nothing listens on the broker's port, so everything stays spooled.

What is counted, over the measurement window (after a warm-up, so that start-up writes such as
the creation of the spool file are not):

- `write_bytes`: the kernel's count of the gateway process's writes to storage
  (/proc/PID/io): every 4 KiB page of the page cache it dirtied, i.e. what goes to the card,
  including the SQLite `-shm` file it writes through a memory map (synced mode). The file
  system's own journal (ext4's jbd2, a kernel thread) is not in it, nor the RAM file (tmpfs:
  nothing goes to storage).
- syscalls (strace, when available): the bytes passed to write/pwrite per file and the number of
  fsync/fdatasync: what SQLite asked for, before the page rounding above.
- file growth: the size of each file of the spool directory at the start and end of the window.
- logs: the bytes of the log lines the gateway printed on stdout (under systemd: journald's, see
  docs/gateway.md "SD-card writes"; the gateway itself writes no log file). The bench reads
  them through a pipe, so they are not in `write_bytes`.
- readings: the JSON payloads the gateway produced in the window (at a subscriber when
  acknowledged, in the spool when the broker is down): the raw size of the data.

The default run polls at the real 10 s interval for 5 minutes per case (30 cycles, ~25 minutes
in all) and scales the cost per poll cycle to an hour (360 cycles). `--interval 1` compresses
(many more messages in the same time: the cost per message), but under-counts what depends on
time rather than on commits: the kernel writes a dirty page back once it is ~30 s old, so the
`-shm` page dirtied at every commit is written once per 30 commits at 1 s, once per 3 at 10 s
(measured: 14.6 KiB a cycle at 1 s, 20.8 KiB at 10 s, acknowledged case, 1 KiB pages).
`--real-hour` measures one real hour per case (10 s interval, no scaling).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml

from dynamo.devservices import (
    InfluxdProcess,
    MosquittoProcess,
    free_port,
    generated_acl,
    wait_until,
)
from simulators import run_in_thread, site_config_path
from telemetry.mqtt import connect, make_client
from telemetry.site import Broker

REPO = Path(__file__).resolve().parents[2]
DEVICES = ("freezer-meter", "freezer-compressor-meter", "freezer-controller")
_ENV = re.compile(r"\$\{(\w+):-([^}]*)\}")
_STRACE_LINE = re.compile(r"^\d+\s+(\w+)\((\d+)<([^>]*)>.*=\s+(-?\d+)")


@dataclass
class Window:
    """What one case measured."""

    name: str
    seconds: float
    cycles: float
    write_bytes: int
    readings_bytes: int
    messages: int
    log_bytes: int
    sizes: dict[str, tuple[int, int]]
    syscall_bytes: dict[str, int] = field(default_factory=dict)
    syncs: int = -1

    def hourly(self, interval_s: float) -> float:
        """Bytes per hour at `interval_s`, from the cost per poll cycle."""
        return self.write_bytes / self.cycles * 3600 / interval_s


def gateway_config(path: Path, *, port: int, sim_port: int, password: str, spool: Path,
                   interval: float, write_behind_s: float, ram_dir: Path) -> Path:
    """The freezer gateway's configuration, cut to three devices at `interval`."""
    values = {"DYNAMO_SIM_HOST": "127.0.0.1", "DYNAMO_FREEZER_SIM_PORT": str(sim_port),
              "DYNAMO_MQTT_HOST": "127.0.0.1", "DYNAMO_MQTT_PORT": str(port),
              "DYNAMO_MQTT_PASSWORD_FREEZER_GW": password, "DYNAMO_SPOOL_DIR": str(spool)}
    source = site_config_path("freezer")
    text = _ENV.sub(lambda m: values.get(m.group(1), m.group(2)), source.read_text())
    document: dict[str, Any] = yaml.safe_load(text)
    document["template_dirs"] = [str((source.parent / d).resolve())
                                 for d in document["template_dirs"]]
    document["spool_dir"] = str(spool)
    document["broker"]["keepalive_s"] = 5
    document["spool"] = {**document.get("spool", {}), "write_behind_s": write_behind_s,
                         "ram_dir": str(ram_dir)}
    devices = [d for d in document["devices"] if d["id"] in DEVICES]
    for device in devices:
        device["poll_interval_s"] = interval
    document["devices"] = devices
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
    return path


class Readings:
    """Sums the telemetry payloads a subscriber receives, by the poll's timestamp."""

    def __init__(self, broker: Broker, topic: str) -> None:
        self.payloads: list[tuple[int, int]] = []  # (ts, bytes)
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self._client = make_client(broker=broker, client_id=f"sdcard-{secrets.token_hex(4)}")
        self._client.on_connect = lambda c, _u, _f, _r, _p: c.subscribe(topic, qos=1)
        self._client.on_subscribe = lambda *_: self.subscribed.set()
        self._client.on_message = self._received
        connect(self._client, broker)

    def _received(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        ts = json.loads(message.payload)["ts"]
        with self._lock:
            self.payloads.append((int(ts), len(message.payload)))

    def between(self, start_ms: int, end_ms: int) -> tuple[int, int]:
        """(messages, bytes) stamped in [start_ms, end_ms), each seq once."""
        with self._lock:
            unique = {(ts, size) for ts, size in self.payloads}
        inside = [size for ts, size in unique if start_ms <= ts < end_ms]
        return len(inside), sum(inside)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def spooled_between(files: list[Path], start_ms: int, end_ms: int) -> tuple[int, int]:
    """(messages, bytes) held in the spool's files (the card's, and the RAM one with
    write-behind), stamped in [start_ms, end_ms), each seq once."""
    held: dict[int, int] = {}
    for path in files:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            held.update(db.execute("SELECT seq, length(payload) FROM messages"
                                   " WHERE ts >= ? AND ts < ?", (start_ms, end_ms)).fetchall())
        finally:
            db.close()
    return len(held), sum(held.values())


def write_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/io has no write_bytes")


def sizes(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(directory.glob("*")) if p.is_file()}


def parse_strace(trace: Path) -> tuple[dict[str, int], int]:
    """Bytes written per file (basename) and the number of fsync/fdatasync."""
    written: dict[str, int] = {}
    syncs = 0
    for line in trace.read_text(errors="replace").splitlines():
        match = _STRACE_LINE.match(line)
        if match is None:
            continue
        call, _fd, path, result = match.groups()
        if call in ("fsync", "fdatasync"):
            syncs += 1
        elif int(result) > 0 and "/" in path:
            name = Path(path).name
            written[name] = written.get(name, 0) + int(result)
    return written, syncs


class Logs:
    """Reads the gateway's stdout (its log lines), counting bytes after `mark()`."""

    def __init__(self, stream: Any, copy: Path) -> None:
        self.total = 0
        self._stream = stream
        self._copy = copy
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        with self._copy.open("ab") as out:
            for line in iter(self._stream.readline, b""):
                self.total += len(line)
                out.write(line)


def measure(name: str, *, workdir: Path, config: Path, spool: Path, ram_dir: Path,
            env: dict[str, str], interval: float, seconds: float,
            readings: Readings | None) -> Window:
    """Run the gateway, warm it up, and measure one window of `seconds`."""
    process = subprocess.Popen(
        [sys.executable, "-m", "dynamo", "gateway", "run", "--config", str(config),
         "--metrics-port", "0"], env=env, cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    logs = Logs(process.stdout, workdir / f"{name}.log")
    tracer: subprocess.Popen[bytes] | None = None
    trace = workdir / f"{name}.strace"
    try:
        wait_until(lambda: (spool / "spool.sqlite").exists(), timeout_s=60,
                   what="the spool file")
        # Warm-up: imports, connection, first checkpoints, and (write-behind) a first flush.
        time.sleep(max(3 * interval, 5.0, _write_behind_s(config) / 2 + 2))
        if process.poll() is not None:
            raise RuntimeError((workdir / f"{name}.log").read_text()[-3000:])
        if shutil.which("strace"):
            tracer = subprocess.Popen(
                ["strace", "-f", "-qq", "-y", "-s", "0", "-o", str(trace), "-p",
                 str(process.pid), "-e",
                 "trace=write,pwrite64,writev,pwritev,pwritev2,fsync,fdatasync"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)  # attached to every thread
        start_ms, log_start = int(time.time() * 1000), logs.total
        start_bytes, start_sizes = write_bytes(process.pid), sizes(spool)
        time.sleep(seconds)
        end_ms, log_end = int(time.time() * 1000), logs.total
        end_bytes, end_sizes = write_bytes(process.pid), sizes(spool)
        if tracer is not None:
            tracer.send_signal(signal.SIGINT)  # detaches
            tracer.wait(timeout=30)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if readings is not None:
        # Everything stamped in the window reaches the subscriber within a few seconds.
        time.sleep(2.0)
        count, size = readings.between(start_ms, end_ms)
    else:
        count, size = spooled_between([spool / "spool.sqlite", *ram_dir.glob("*.sqlite")],
                                      start_ms, end_ms)
    names = sorted(set(start_sizes) | set(end_sizes))
    window = Window(name=name, seconds=(end_ms - start_ms) / 1000,
                    cycles=count / len(DEVICES), write_bytes=end_bytes - start_bytes,
                    readings_bytes=size, messages=count, log_bytes=log_end - log_start,
                    sizes={n: (start_sizes.get(n, 0), end_sizes.get(n, 0)) for n in names})
    if tracer is not None and trace.exists():
        window.syscall_bytes, window.syncs = parse_strace(trace)
    return window


def _write_behind_s(config: Path) -> float:
    return float(yaml.safe_load(config.read_text())["spool"]["write_behind_s"])


def report(window: Window, interval: float, target_interval: float, real: bool) -> None:
    kib = 1024
    ratio = window.write_bytes / max(window.readings_bytes, 1)
    print(f"-- {window.name}: {window.seconds:.0f} s at a {interval:g} s interval, "
          f"{window.messages} message(s) in {window.cycles:.0f} cycle(s) of "
          f"{len(DEVICES)} device(s)")
    print(f"   readings (JSON payloads):     {window.readings_bytes:>10} B "
          f"({window.readings_bytes / max(window.messages, 1):.0f} B a message)")
    print(f"   written to storage (write_bytes, 4 KiB pages): {window.write_bytes:>10} B "
          f"({window.write_bytes / max(window.cycles, 1) / kib:.1f} KiB a cycle, "
          f"{window.write_bytes / max(window.messages, 1):.0f} B a message)")
    print(f"   ratio written / readings:     {ratio:.2f}x  (target <= 3x)")
    if window.syncs >= 0:
        files = ", ".join(f"{n} {b} B" for n, b in sorted(window.syscall_bytes.items()))
        print(f"   syscalls (strace): {files or 'no write'}; {window.syncs} fsync/fdatasync "
              f"({window.syncs / max(window.cycles, 1):.1f} a cycle)")
    growth = ", ".join(f"{n} {a}->{b} B" for n, (a, b) in window.sizes.items())
    print(f"   spool files (size at start->end): {growth}")
    print(f"   log lines on stdout (journald's): {window.log_bytes} B "
          f"({window.log_bytes * 3600 / max(window.seconds, 1) / kib:.1f} KiB/h)")
    if real:
        per_hour = window.write_bytes * 3600 / window.seconds
        readings_hour = window.readings_bytes * 3600 / window.seconds
        basis = "measured over the window, scaled to one hour"
    else:
        per_hour = window.hourly(target_interval)
        readings_hour = window.readings_bytes / max(window.cycles, 1) * 3600 / target_interval
        basis = (f"cost per cycle x {3600 / target_interval:.0f} cycles "
                 f"(a {target_interval:g} s interval for one hour)")
        if interval != target_interval:
            basis += f", measured at {interval:g} s: time-driven writes under-counted"
    print(f"   per hour at {target_interval:g} s: {per_hour / kib:.0f} KiB written for "
          f"{readings_hour / kib:.0f} KiB of readings ({basis})")


def main(args: argparse.Namespace) -> None:
    interval = 10.0 if args.real_hour else args.interval
    seconds = 3600.0 if args.real_hour else args.minutes * 60
    # On real storage (not tmpfs, where nothing is written back): a Pi's card is ext4 too.
    base = Path(args.workdir) if args.workdir else Path("/var/tmp")
    # The write-behind RAM files: a tmpfs, as systemd's RuntimeDirectory on a Pi (/run).
    ram_root = Path(args.ram_dir)
    with tempfile.TemporaryDirectory(prefix="dynamo-sdcard-", dir=base) as tmp, \
            tempfile.TemporaryDirectory(prefix="dynamo-sdcard-ram-", dir=ram_root) as ram_tmp:
        workdir, ram_base = Path(tmp), Path(ram_tmp)
        users = {"freezer-gw": secrets.token_urlsafe(12),
                 "collector": secrets.token_urlsafe(12)}
        acl = generated_acl(workdir / "broker", sites=REPO / "firmware-config" / "sites")
        broker = MosquittoProcess(workdir=workdir / "broker", users=users, acl_file=acl)
        influxd = InfluxdProcess(workdir=workdir / "influxd")
        sims = run_in_thread(machines=("freezer",), speed=60.0, seed=5)
        broker.start()
        influxd.start()
        env = {**os.environ, "DYNAMO_MQTT_HOST": broker.host,
               "DYNAMO_MQTT_PORT": str(broker.port), "DYNAMO_MQTT_USERNAME": "collector",
               "DYNAMO_MQTT_PASSWORD": users["collector"], "DYNAMO_INFLUX_URL": influxd.url,
               "DYNAMO_INFLUX_DB": "sdcard"}
        collector = subprocess.Popen(
            [sys.executable, "-m", "dynamo", "collector", "run", "--client-id", "sdcard",
             "--dead-letters", str(workdir / "dead.sqlite")], env=env, cwd=REPO,
            stdout=(workdir / "collector.log").open("ab"), stderr=subprocess.STDOUT)
        readings = Readings(Broker(host=broker.host, port=broker.port, username="collector",
                                   password=users["collector"]),
                            "dynamo/v1/ariege/freezer-gw/telemetry/#")
        print(f"SD-card writes of `dynamo gateway run`: {len(DEVICES)} devices "
              f"({', '.join(DEVICES)}), spool on {base} (ext4)")
        try:
            wait_until(readings.subscribed.is_set, timeout_s=30, what="the subscription")
            windows = []
            modes = {"synced": 0.0, "write-behind": args.write_behind_s}
            for mode in (modes if args.spool == "both" else [args.spool]):
                for case, port in (("acknowledged", broker.port), ("broker down", free_port())):
                    name = f"{mode}, {case}"
                    slug = f"{mode}-{case.replace(' ', '-')}"
                    spool, ram_dir = workdir / slug / "spool", ram_base / slug
                    config = gateway_config(workdir / f"{slug}.yaml", port=port,
                                            sim_port=sims.ports["freezer"],
                                            password=users["freezer-gw"], spool=spool,
                                            interval=interval, write_behind_s=modes[mode],
                                            ram_dir=ram_dir)
                    windows.append(measure(name, workdir=workdir, config=config, spool=spool,
                                           ram_dir=ram_dir, env=env, interval=interval,
                                           seconds=seconds,
                                           readings=readings if port == broker.port else None))
                    report(windows[-1], interval, 10.0, args.real_hour)
            print("\n-- side by side: written / readings")
            for window in windows:
                print(f"   {window.name:<28} "
                      f"{window.write_bytes / max(window.readings_bytes, 1):6.2f}x "
                      f"({window.write_bytes / max(window.cycles, 1) / 1024:.1f} KiB a cycle)")
        finally:
            readings.close()
            collector.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                collector.wait(timeout=30)
            if collector.poll() is None:
                collector.kill()
            sims.stop()
            influxd.stop()
            broker.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=10.0,
                        help="poll interval (s); 1 compresses, see above")
    parser.add_argument("--minutes", type=float, default=5.0,
                        help="measurement window per case")
    parser.add_argument("--real-hour", action="store_true",
                        help="10 s interval, one real hour per case (no extrapolation)")
    parser.add_argument("--workdir", default=None,
                        help="where the spool goes (default /var/tmp; must not be tmpfs)")
    parser.add_argument("--spool", choices=("both", "synced", "write-behind"), default="both",
                        help="spool mode(s) measured: every cycle synced to the card, or "
                        "write-behind (RAM first, on the card if not acknowledged in time)")
    parser.add_argument("--write-behind-s", type=float, default=120.0,
                        help="spool.write_behind_s of the write-behind mode (default 120, as "
                        "in the Ariège configurations)")
    parser.add_argument("--ram-dir", default="/dev/shm",
                        help="a tmpfs for the write-behind RAM files (default /dev/shm)")
    main(parser.parse_args())
