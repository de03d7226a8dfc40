"""Gateway figures, measured side by side in one run.

    .venv/bin/python bench/gateway/run.py [--cycles 40] [--hours 1]

1. Modbus requests per cycle: the coalesced plan against the naive one-request-per-point plan,
   for each device of the Ariège sites, then the time a poll cycle takes with each against the
   project's simulators (Modbus TCP on loopback: round trips are cheap here, on RS-485 at
   9600 baud each saved request is worth ~10-30 ms).
2. CPU time per 100 registers decoded and queued: decode, readings and JSON, then committed to
   the spool (synchronous NORMAL and FULL; FULL's cost is the flush, so wall time is shown too).
3. Replay: an hour of the dryer gateway's messages waiting in the spool (the uplink was down),
   forwarded to a real Mosquitto: how many times faster than real time (target ≥ 50×).
4. Memory: RSS after an hour of simulated polling of the dryer gateway at full speed
   (real pollers, simulators, spool, forwarder, Mosquitto), against RSS after the first tenth.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from pathlib import Path

from dynamo.devservices import MosquittoProcess, generated_acl
from gateway.forwarder import Forwarder
from gateway.plan import ReadRequest
from gateway.poller import DevicePoller
from gateway.publisher import Publisher
from gateway.reading import make_reading
from gateway.spool import Spool
from simulators import run_in_thread
from telemetry.datatypes import DataType, RegisterType
from telemetry.payload import Status, Telemetry, encode
from telemetry.registers import decode_registers, encode_value
from telemetry.site import Broker, GatewayConfig, Sensor, SpoolOptions
from telemetry.template import RegisterPoint
from telemetry.topics import telemetry_topic

REPO = Path(__file__).resolve().parents[2]
MACHINES = ("dryer", "freezer", "packaging")


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def naive(poller: DevicePoller) -> list[ReadRequest]:
    return [ReadRequest(p.register_type, p.address, p.count, (p,))
            for r in poller.requests for p in r.points]


async def plans(configs: dict[str, GatewayConfig], cycles: int) -> None:
    print("1. Modbus requests per cycle (coalesced vs one request per point)")
    total_naive = total_planned = 0
    timings = {"planned": 0.0, "naive": 0.0}
    for machine, config in configs.items():
        for device in config.devices:
            poller = DevicePoller(config=config, device=device)
            planned, one_each = list(poller.requests), naive(poller)
            total_planned += len(planned)
            total_naive += len(one_each)
            print(f"   {machine:9} {device.id:26} {len(one_each):3} point(s): "
                  f"{len(planned)} request(s) instead of {len(one_each)}")
            # Interleaved, so that both see the same machine load.
            for _ in range(cycles):
                for name, requests in (("planned", planned), ("naive", one_each)):
                    poller.requests = requests
                    start = time.perf_counter()
                    result = await poller.poll()
                    timings[name] += time.perf_counter() - start
                    if result.health != "ok":
                        raise RuntimeError(f"{device.id}: {result.health}")
            await poller.close()
    print(f"   all devices: {total_planned} request(s) per cycle instead of {total_naive}: "
          f"{total_naive / total_planned:.1f}x fewer")
    print(f"   poll time over {cycles} cycles: coalesced {timings['planned'] * 1000 / cycles:.1f} "
          f"ms/cycle, naive {timings['naive'] * 1000 / cycles:.1f} ms/cycle: "
          f"{timings['naive'] / timings['planned']:.1f}x faster")


def cpu_per_100_registers(workdir: Path, rounds: int) -> None:
    print("2. CPU time per 100 registers decoded and queued (50 float32 points per poll)")
    points = [RegisterPoint(key=f"p{i}", register_type=RegisterType.INPUT, address=2 * i,
                            data_type=DataType.FLOAT32, unit="W") for i in range(50)]
    sensors = [Sensor(id=f"rig.p{i}", point=f"p{i}", role="electric_power", valid_min=0)
               for i in range(50)]
    registers = [w for i in range(50) for w in encode_value(100.0 + i, data_type=DataType.FLOAT32)]
    topic = telemetry_topic("bench", "bench-gw", "rig")

    def poll_once(seq: int) -> bytes:
        raw: dict[str, float | str | bool] = {
            p.key: decode_registers(registers[p.address:p.address + 2], data_type=p.data_type)
            for p in points}
        readings = tuple(make_reading(s, p, raw, {}) for s, p in zip(sensors, points,
                                                                        strict=True))
        return encode(Telemetry(site="bench", gateway="bench-gw", equipment="rig", device="m",
                                seq=seq, ts=1_763_762_400_000 + seq, readings=readings))

    def measure(label: str, work: object) -> None:
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(rounds):
            work(i)  # type: ignore[operator]
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(f"   {label:40} {cpu / rounds * 1000:7.3f} ms CPU, "
              f"{wall / rounds * 1000:7.3f} ms wall per 100 registers")

    measure("decode only", lambda _i: [decode_registers(registers[p.address:p.address + 2],
                                                        data_type=p.data_type) for p in points])
    measure("decode + readings + JSON", poll_once)
    for mode in ("normal", "full"):
        spool = Spool(path=workdir / f"cpu-{mode}.sqlite",
                      options=SpoolOptions(synchronous=mode))  # type: ignore[arg-type]
        measure(f"... + spool commit (synchronous={mode.upper()})",
                lambda i, s=spool: s.append(topic=topic, device="m", ts=i, encode=poll_once))
        spool.close()


def _publisher(broker: Broker, forwarder_box: list[Forwarder]) -> Publisher:
    return Publisher(broker=broker, site="bench", gateway="bench-gw",
                     birth=lambda: Status(site="bench", gateway="bench-gw", state="online",
                                          ts=int(time.time() * 1000)),
                     on_acked=lambda mid: forwarder_box[0].acked(mid))


async def replay(broker: Broker, workdir: Path, config: GatewayConfig, hours: float) -> None:
    print(f"3. Replay of {hours:g} h of the dryer gateway's messages after an outage")
    per_hour = sum(3600 / d.poll_interval_s for d in config.devices)
    count = int(per_hour * hours)
    spool = Spool(path=workdir / "replay.sqlite", options=SpoolOptions(synchronous="normal"))
    payload = encode(Telemetry(site="bench", gateway="bench-gw", equipment="dryer", device="d",
                               seq=0, ts=1_763_762_400_000, readings=tuple(
                                   make_reading(Sensor(id=f"dryer.s{i}", point="p",
                                                       role="electric_power"),
                                                RegisterPoint(key="p", register_type="input",
                                                              address=0, unit="W"),
                                                {"p": 10.0 * i}, {}) for i in range(4))))
    topic = telemetry_topic("bench", "bench-gw", "dryer")
    for i in range(count):
        spool.append(topic=topic, device="d", ts=i, encode=lambda _seq: payload)
    box: list[Forwarder] = []
    publisher = _publisher(broker, box)
    forwarder = Forwarder(spool=spool, publisher=publisher, in_flight=100)
    box.append(forwarder)
    stop = asyncio.Event()
    task = asyncio.create_task(forwarder.run(stop))
    start = time.perf_counter()
    publisher.start()
    while forwarder.counters.depth > 0:
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - start
    stop.set()
    await task
    publisher.stop()
    print(f"   {count} message(s) ({len(payload)} bytes each) forwarded and acknowledged in "
          f"{elapsed:.2f} s (connection included): "
          f"{hours * 3600 / elapsed:.0f}x real time (target >= 50x)")


async def memory(broker: Broker, workdir: Path, config: GatewayConfig, hours: float) -> None:
    print(f"4. Memory over {hours:g} h of simulated polling of the dryer gateway, at full speed")
    pollers = [DevicePoller(config=config, device=d) for d in config.devices]
    polls = [(p, int(3600 * hours / p.device.poll_interval_s)) for p in pollers]
    total = sum(n for _, n in polls)
    spool = Spool(path=workdir / "memory.sqlite", options=SpoolOptions(synchronous="normal"))
    box: list[Forwarder] = []
    publisher = _publisher(broker, box)
    forwarder = Forwarder(spool=spool, publisher=publisher, in_flight=100)
    box.append(forwarder)
    stop = asyncio.Event()
    task = asyncio.create_task(forwarder.run(stop))
    publisher.start()
    start_rss = rss_kib()
    tenth_rss = 0
    done = 0
    started = time.perf_counter()
    for round_ in range(max(n for _, n in polls)):
        for poller, n in polls:
            if round_ >= n:
                continue
            result = await poller.poll()
            device = poller.device

            def make(seq: int, r: object = result, d: object = device) -> bytes:
                return encode(Telemetry(site="bench", gateway="bench-gw",
                                        equipment=d.equipment, device=d.id,  # type: ignore[attr-defined]
                                        seq=seq, ts=int(time.time() * 1000),
                                        readings=r.readings))  # type: ignore[attr-defined]

            await forwarder.commit(topic=telemetry_topic("bench", "bench-gw", "dryer"),
                                   device=device.id, ts=int(time.time() * 1000), encode=make)
            done += 1
            if done == total // 10:
                tenth_rss = rss_kib()
    elapsed = time.perf_counter() - started
    while forwarder.depth > 0 and time.perf_counter() - started < elapsed + 60:
        await asyncio.sleep(0.05)
    end_rss = rss_kib()
    stop.set()
    await task
    publisher.stop()
    for poller in pollers:
        await poller.close()
    print(f"   {total} poll(s) in {elapsed:.1f} s ({hours * 3600 / elapsed:.0f}x real time); "
          f"RSS {start_rss / 1024:.1f} MiB at start, {tenth_rss / 1024:.1f} MiB after a tenth, "
          f"{end_rss / 1024:.1f} MiB after all: growth after the first tenth "
          f"{(end_rss - tenth_rss) / 1024:+.1f} MiB ({end_rss / max(tenth_rss, 1):.2f}x)")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        users = {"bench-gw": secrets.token_urlsafe(12)}
        acl = generated_acl(workdir / "broker", sites=REPO / "firmware-config" / "sites",
                            development_gateways=("bench-gw",))
        broker_process = MosquittoProcess(workdir=workdir / "broker", users=users, acl_file=acl)
        broker_process.start()
        sims = run_in_thread(machines=MACHINES, speed=60.0, seed=3)
        try:
            configs = {m: sims.gateway_config(m) for m in MACHINES}
            broker = Broker(host=broker_process.host, port=broker_process.port,
                            username="bench-gw", password=users["bench-gw"])
            await plans(configs, args.cycles)
            cpu_per_100_registers(workdir, args.rounds)
            await replay(broker, workdir, configs["dryer"], args.hours)
            await memory(broker, workdir, configs["dryer"], args.hours)
        finally:
            sims.stop()
            broker_process.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=40, help="poll cycles per plan")
    parser.add_argument("--rounds", type=int, default=500, help="polls for the CPU figures")
    parser.add_argument("--hours", type=float, default=1.0, help="simulated hours")
    asyncio.run(main(parser.parse_args()))
