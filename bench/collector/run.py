"""Collector throughput against InfluxDB's own write rate, measured side by side in one run.

    .venv/bin/python bench/collector/run.py [--points 1000000] [--readings 1000,20] [--rounds 5]
                                            [--admission]
    .venv/bin/python bench/collector/run.py --ack-cost --readings 20 [--points 400000]

Starts a private influxd and mosquitto (dynamo.devservices) and, for each message size (readings
per message: 1000, the largest the schema allows; 20, one typical device poll), rounds of:
1. raw: posts the very points the collector would write, pre-encoded and pre-gzipped, straight
   to influxd's /write (same batch size, same number of concurrent writers): the database's rate;
2. end to end: starts `dynamo collector run` as its own process, publishes the messages (QoS 1)
   through mosquitto as three gateways would (mosquitto_pub, one per gateway user), and times
   from the first publish until InfluxDB has confirmed every point;
then prints both rates, their ratio, the loss count (points sent − points stored; must be 0) and
the CPU each process spent per point (all share the machine's cores).
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from collector.points import telemetry_lines
from dynamo.devservices import InfluxdProcess, MosquittoProcess, free_port, generated_acl
from telemetry.influx.client import InfluxClient
from telemetry.payload import Reading, Telemetry, encode
from telemetry.topics import telemetry_topic

REPO = Path(__file__).resolve().parents[2]
T0 = 1_763_700_000_000
GATEWAYS = ("dryer-gw", "freezer-gw", "packaging-gw")


def messages(count: int, readings: int) -> list[Telemetry]:
    """`count` messages spread over three gateways, each with `readings` distinct sensors."""
    out = []
    for i in range(count):
        gateway = GATEWAYS[i % len(GATEWAYS)]
        out.append(Telemetry(
            site="bench", gateway=gateway, equipment="dryer", device="meter", seq=i // 3,
            ts=T0 + i * 1000,
            readings=tuple(Reading(sensor=f"dryer.s{k}", value=i + k / 1000, unit="W")
                           for k in range(readings))))
    return out


def count_and_drop(influxd: InfluxdProcess, database: str) -> int:
    """Points stored in a run's database, which is then dropped and influxd left to settle: the
    next run must not share the cores with compactions of this one's data."""
    influx = InfluxClient(url=influxd.url, database=database)
    series = influx.query("SELECT count(value) FROM readings")
    stored = int(series[0].values[0][1]) if series else 0
    influx.query(f'DROP DATABASE "{database}"')
    pid = service_pid(influxd)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(0.5)
        if cpu_seconds(pid) - before < 0.05:  # under 10 % of a core
            break
    return stored


def raw_rate(influxd: InfluxdProcess, batch: list[Telemetry], *, database: str,
             batch_points: int, writers: int, use_gzip: bool) -> tuple[float, int, float]:
    """Points/s of influxd alone on the same points, how many it stored, its CPU time (s)."""
    lines = [line for message in batch for line in telemetry_lines(message)]
    bodies = [("\n".join(lines[i:i + batch_points]) + "\n").encode()
              for i in range(0, len(lines), batch_points)]
    if use_gzip:
        bodies = [gzip.compress(body, 1) for body in bodies]
    influx = InfluxClient(url=influxd.url, database=database)
    influx.create_database()
    http = httpx.Client(base_url=influxd.url, timeout=60)
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    if use_gzip:
        headers["Content-Encoding"] = "gzip"

    def post(body: bytes) -> None:
        http.post("/write", params={"db": database, "precision": "ms"}, content=body,
                  headers=headers).raise_for_status()

    pid = service_pid(influxd)
    cpu_before = cpu_seconds(pid)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=writers) as pool:
        list(pool.map(post, bodies))
    elapsed = time.perf_counter() - start
    cpu_s = cpu_seconds(pid) - cpu_before
    http.close()
    return len(lines) / elapsed, count_and_drop(influxd, database), cpu_s


def _children_cpu_seconds() -> float:
    """User + system CPU time of this process's children that were waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def service_pid(service: InfluxdProcess | MosquittoProcess) -> int:
    """The pid of our influxd or mosquitto, found by its configuration file on its command line."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if str(service.config_file).encode() in cmdline:
                return int(proc.name)
    raise RuntimeError(f"{service.config_file}'s process not found")


# One keep-alive client: `httpx.get` builds a client (and its SSL context) per call, some
# milliseconds of CPU, which polling every 20 ms would take from the cores under test.
_METRICS_HTTP = httpx.Client(timeout=2)


def metric(port: int, name: str) -> float:
    try:
        text = _METRICS_HTTP.get(f"http://127.0.0.1:{port}/metrics").text
    except httpx.HTTPError:
        return -1.0
    for row in text.splitlines():
        if row.startswith(f"{name} "):
            return float(row.split()[1])
    return -1.0


def _poll_delay(written: float, points: int, elapsed_s: float) -> float:
    """Until the next look at the collector's /metrics: a quarter of the time the rest should
    take at the rate so far, within 5..200 ms. Each scrape costs the collector CPU (~0.6 ms
    here), which polling at a fixed 50 Hz would add to what is measured; the end is still
    seen within a few ms."""
    if written <= 0:
        return 0.02
    remaining_s = (points - written) / (written / elapsed_s)
    return min(0.2, max(0.005, remaining_s / 4))


def end_to_end_rate(influxd: InfluxdProcess, mosquitto: MosquittoProcess,
                    batch: list[Telemetry], workdir: Path, *, database: str,
                    batch_points: int, writers: int, receive_maximum: int,
                    use_gzip: bool, site_configs: Path | None = None, acks: bool = True,
                    ) -> tuple[float, int, int, dict[str, float]]:
    """Points/s from first publish to last confirmed write, points stored, the collector's peak
    RSS (KiB), and the CPU time (s) meanwhile of each process: the collector, influxd, mosquitto
    and this one's publishing gateways (all share the machine's cores)."""
    points = sum(len(m.readings) for m in batch)
    port = free_port()
    env = {**os.environ, "DYNAMO_MQTT_HOST": mosquitto.host,
           "DYNAMO_MQTT_PORT": str(mosquitto.port), "DYNAMO_MQTT_USERNAME": "collector",
           "DYNAMO_MQTT_PASSWORD": mosquitto.users["collector"],
           "DYNAMO_INFLUX_URL": influxd.url, "DYNAMO_INFLUX_DB": database,
           "DYNAMO_INFLUX_GZIP": "true" if use_gzip else "false"}
    if site_configs is not None:  # --admission: every message judged by the configurations
        env["DYNAMO_SITE_CONFIGS"] = str(site_configs)
    with (workdir / "collector.log").open("ab") as log:
        collector = subprocess.Popen(
            [sys.executable, "-m", "dynamo", "collector", "run", "--client-id", database,
             "--dead-letters", str(workdir / "dead.sqlite"), "--metrics-port", str(port),
             "--batch-points", str(batch_points), "--writers", str(writers),
             "--receive-maximum", str(receive_maximum), "--acks" if acks else "--no-acks"],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while metric(port, "dynamo_collector_connected") != 1:
            if time.monotonic() > deadline or collector.poll() is not None:
                raise RuntimeError(f"collector did not start: see {workdir / 'collector.log'}")
            time.sleep(0.1)
        time.sleep(0.5)  # SUBACK
        # The gateways: one mosquitto_pub per gateway (its own user: the ACL lets each write
        # under its prefix only), each publishing its messages, a line each, at QoS 1. A C
        # client: gateways run on their own machines, their publishing should not take the
        # cores under test (paho would spend ~100 µs of CPU per message here).
        feeds = {}
        for gateway in GATEWAYS:
            feeds[gateway] = workdir / f"{database}-{gateway}.jsonl"
            feeds[gateway].write_bytes(b"".join(encode(m) + b"\n" for m in batch
                                                if m.gateway == gateway))
        rss_peak = [0]
        done = threading.Event()

        def watch_rss() -> None:
            status = Path(f"/proc/{collector.pid}/status")
            while not done.wait(0.1):
                for row in status.read_text().splitlines():
                    if row.startswith("VmRSS:"):
                        rss_peak[0] = max(rss_peak[0], int(row.split()[1]))

        watcher = threading.Thread(target=watch_rss, daemon=True)
        watcher.start()
        pids = {"collector": collector.pid, "influxd": service_pid(influxd),
                "mosquitto": service_pid(mosquitto)}
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        children_before = _children_cpu_seconds()
        start = time.perf_counter()
        publishers = []
        for gateway, feed in feeds.items():
            with feed.open("rb") as lines:
                publishers.append(subprocess.Popen(
                    ["mosquitto_pub", "-h", mosquitto.host, "-p", str(mosquitto.port),
                     "-u", gateway, "-P", mosquitto.users[gateway], "-i", f"{database}-{gateway}",
                     "-V", "5", "-q", "1", "-M", "1000", "-l",
                     "-t", telemetry_topic("bench", gateway, "dryer")], stdin=lines))
        for publisher in publishers:
            if publisher.wait(timeout=600) != 0:
                raise RuntimeError(f"mosquitto_pub exited with {publisher.returncode}")
        publisher_cpu = _children_cpu_seconds() - children_before
        deadline = time.monotonic() + 600
        while (written := metric(port, "dynamo_collector_points_written_total")) < points:
            if time.monotonic() > deadline:
                break
            time.sleep(_poll_delay(written, points, time.perf_counter() - start))
        elapsed = time.perf_counter() - start
        cpu_s = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
        cpu_s["publishers"] = publisher_cpu
        done.set()
    finally:
        collector.send_signal(signal.SIGTERM)
        collector.wait(timeout=60)
        # The collector's session outlives it (7 days): left there, it would collect a copy of
        # every later round's messages in the broker. A clean start under its id ends it.
        subprocess.run(["mosquitto_sub", "-h", mosquitto.host, "-p", str(mosquitto.port),
                        "-u", "collector", "-P", mosquitto.users["collector"], "-i", database,
                        "-V", "5", "-t", "dynamo/v1/none", "-E"], check=True, timeout=30)
    stored = count_and_drop(influxd, database)
    return points / elapsed, stored, rss_peak[0], cpu_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--readings", default="1000,20",
                        help="readings per message, one size or several (comma-separated)")
    parser.add_argument("--batch-points", type=int, default=10_000)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--receive-maximum", type=int, default=0,
                        help="the collector's flow-control window in messages (default: ten "
                             "batches' worth, as much memory for every message size)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-gzip", action="store_true", help="uncompressed writes (both runs)")
    parser.add_argument("--ack-cost", action="store_true",
                        help="end to end with the collector's end-to-end acknowledgements and "
                             "without (--no-acks), alternately, instead of raw vs end to end")
    parser.add_argument("--admission", action="store_true",
                        help="the collector checks every message against site configurations "
                             "declaring the benchmark's gateways and sensors (--site-configs)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.readings.split(",")]
    print(f"{args.points} points a run; batches of {args.batch_points}, {args.writers} writer(s), "
          f"gzip {'off' if args.no_gzip else 'on'}, cpus: {os.cpu_count()}")
    summary = []
    with tempfile.TemporaryDirectory(prefix="bench-collector-") as tmp:
        workdir = Path(tmp)
        users = {user: secrets.token_urlsafe(12) for user in ("collector", *GATEWAYS)}
        influxd = InfluxdProcess(workdir=workdir / "influxd")
        # The benchmark's gateways publish under the site "bench": development-only ACL lines.
        acl = generated_acl(workdir / "mosquitto", sites=REPO / "firmware-config" / "sites",
                            development_gateways=GATEWAYS)
        mosquitto = MosquittoProcess(workdir=workdir / "mosquitto", users=users, acl_file=acl)
        influxd.start()
        mosquitto.start()
        try:
            for size in sizes:
                summary.append(_measure(influxd, mosquitto, workdir, args, readings=size))
        finally:
            mosquitto.stop()
            influxd.stop()
    print()
    for size, raw, e2e, ratio, lost in summary:
        if args.ack_cost:
            print(f"{size:>5} readings/message: end to end without acks {raw:>9,.0f} points/s, "
                  f"with {e2e:>9,.0f} points/s (medians), ratio {ratio:.3f}, lost {lost}")
            continue
        print(f"{size:>5} readings/message: raw influxd write {raw:>9,.0f} points/s, end to end "
              f"{e2e:>9,.0f} points/s (medians), ratio {ratio:.2f}, lost {lost}")


def _measure(influxd: InfluxdProcess, mosquitto: MosquittoProcess, workdir: Path,
             args: argparse.Namespace, *, readings: int) -> tuple[int, float, float, float, int]:
    """Rounds of raw then end to end for one message size: (size, raw, e2e, ratio, lost)."""
    count = max(1, args.points // readings)
    batch = messages(count, readings)
    points = count * readings
    receive_maximum = args.receive_maximum \
        or min(65535, max(16, 10 * args.batch_points // readings))
    print(f"\n{points} points in {count} messages of {readings} readings "
          f"(collector's Receive Maximum {receive_maximum})")
    if args.ack_cost:
        return _ack_cost(influxd, mosquitto, workdir, args, batch=batch, readings=readings,
                         receive_maximum=receive_maximum)
    rows = []
    # Alternate the two, round after round: a machine's load drifts, both see it alike.
    for i in range(args.rounds):
        name = f"r{readings}x{i}"
        raw, raw_stored, raw_cpu = raw_rate(influxd, batch, database=f"raw{name}",
                                            batch_points=args.batch_points,
                                            writers=args.writers, use_gzip=not args.no_gzip)
        e2e, e2e_stored, rss_kib, cpu_s = end_to_end_rate(
            influxd, mosquitto, batch, workdir, database=f"e2e{name}",
            batch_points=args.batch_points, writers=args.writers,
            receive_maximum=receive_maximum, use_gzip=not args.no_gzip,
            site_configs=_site_configs(workdir, readings) if args.admission else None)
        rows.append((raw, e2e, points - e2e_stored))
        cpu = ", ".join(f"{who} {seconds * 1e6 / points:.2f}" for who, seconds in cpu_s.items())
        print(f"round {i + 1}: raw influxd write {raw:>9,.0f} points/s (stored {raw_stored}, "
              f"influxd CPU {raw_cpu * 1e6 / points:.2f} µs/point) | "
              f"end to end {e2e:>9,.0f} points/s (stored {e2e_stored}, collector peak RSS "
              f"{rss_kib / 1024:.0f} MiB; CPU µs/point: {cpu}) | "
              f"ratio {e2e / raw:.2f} | lost {points - e2e_stored}")
    raw_median = statistics.median(row[0] for row in rows)
    e2e_median = statistics.median(row[1] for row in rows)
    ratio = statistics.median(e2e / raw for raw, e2e, _lost in rows)
    return readings, raw_median, e2e_median, ratio, sum(row[2] for row in rows)


def _ack_cost(influxd: InfluxdProcess, mosquitto: MosquittoProcess, workdir: Path,
              args: argparse.Namespace, *, batch: list[Telemetry], readings: int,
              receive_maximum: int) -> tuple[int, float, float, float, int]:
    """Rounds of end to end with and without the end-to-end acknowledgements (collector/acks.py),
    the order swapped every round: (size, without, with, with/without, lost)."""
    points = len(batch) * readings
    rows = []
    for i in range(args.rounds):
        rates: dict[bool, float] = {}
        lost = 0
        for acks in ((True, False) if i % 2 == 0 else (False, True)):
            rate, stored, _rss, cpu_s = end_to_end_rate(
                influxd, mosquitto, batch, workdir, database=f"ack{int(acks)}r{readings}x{i}",
                batch_points=args.batch_points, writers=args.writers,
                receive_maximum=receive_maximum, use_gzip=not args.no_gzip, acks=acks)
            rates[acks] = rate
            lost += points - stored
            print(f"round {i + 1}, acks {'on ' if acks else 'off'}: {rate:>9,.0f} points/s "
                  f"(stored {stored}, collector CPU "
                  f"{cpu_s['collector'] * 1e6 / points:.2f} µs/point)")
        rows.append((rates[False], rates[True], lost))
        print(f"round {i + 1}: with acks / without = {rates[True] / rates[False]:.3f}")
    without = statistics.median(row[0] for row in rows)
    with_acks = statistics.median(row[1] for row in rows)
    ratio = statistics.median(row[1] / row[0] for row in rows)
    print(f"end-to-end acknowledgement: {with_acks:,.0f} points/s with, {without:,.0f} without "
          f"(medians), ratio {ratio:.3f}: costs {100 * (1 - ratio):.1f} % of the rate")
    return readings, without, with_acks, ratio, sum(row[2] for row in rows)


def _site_configs(workdir: Path, readings: int) -> Path:
    """Configurations declaring what `messages` sends: site bench, each gateway with equipment
    dryer, device meter and sensors dryer.s0… in W (all on one point of an SDM630)."""
    folder = workdir / f"sites-{readings}"
    (folder / "bench").mkdir(parents=True, exist_ok=True)
    sensors = "".join(f"      - {{id: dryer.s{k}, point: total_power_w, role: grid_power}}\n"
                      for k in range(readings))
    for gateway in GATEWAYS:
        (folder / "bench" / f"{gateway}.yaml").write_text(
            f"template_dirs: [{REPO / 'firmware-config' / 'templates'}]\n"
            f"site: bench\ngateway: {gateway}\nbroker: {{username: {gateway}}}\n"
            "equipment:\n  - {id: dryer, kind: dryer}\ndevices:\n  - id: meter\n"
            "    template: eastron-sdm630\n    equipment: dryer\n"
            "    connection: {type: tcp, host: 127.0.0.1, port: 1502}\n"
            f"    sensors:\n{sensors}")
    return folder


if __name__ == "__main__":
    main()
