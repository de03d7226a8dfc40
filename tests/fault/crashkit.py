"""The crash scenario of issue 15 (tests/fault/test_fault_crash_*.py): three gateways stream
while the broker, the collector or both are killed with SIGKILL at random moments; then every
message each gateway committed is in InfluxDB exactly once.

The end-to-end acknowledgement is what makes this hold: a gateway forgets a message only when
the collector says it is stored, so neither the broker's unsaved queue (a crash between two
autosaves) nor a collector that dies between InfluxDB and its PUBACK can lose one.

In the suite each scenario runs ~30 s (a kill every 1–2 s); DYNAMO_SOAK=1 runs the issue's two
minutes. The seed of each run is printed: a failure replays with DYNAMO_FAULT_SEED=<seed>;
DYNAMO_FAULT_KILLS sets the number of kills (20).
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from multiprocessing.process import BaseProcess
from pathlib import Path

from faultkit import (
    GATEWAYS,
    Running,
    broker_settings,
    gateway_config,
    kill,
    kill_schedule,
    lost_events,
    make_broker,
    meter,
    new_site,
    running,
    soak,
    spawn_collector,
    stored_times,
    wait_for,
)
from gwkit import ModbusTestServer

from collector import Backoff, Collector, DeadLetterStore
from gateway.spool import Spool
from telemetry.influx.client import InfluxClient

KILLS = int(os.environ.get("DYNAMO_FAULT_KILLS", "20"))


def _seed() -> int:
    seed = int(os.environ.get("DYNAMO_FAULT_SEED", str(random.randrange(1 << 30))))
    print(f"DYNAMO_FAULT_SEED={seed}")
    return seed


class _Collector:
    """The collector under test: in-process when only the broker is killed, else a process."""

    def __init__(self, *, in_process: bool, spawn: Callable[[], BaseProcess],
                 make: Callable[[], Collector], log: Path) -> None:
        self._spawn, self._make, self._log = spawn, make, log
        self.process = spawn() if not in_process else None
        self.service = make() if in_process else None
        self.kills = 0
        self.starts = 1

    def wait_working(self) -> None:
        """Until the latest process has connected (its start-up takes seconds on a loaded
        machine: a kill during its imports would test nothing)."""
        def connected() -> int:
            text = self._log.read_text(errors="replace") if self._log.exists() else ""
            return text.count("collector connected and subscribed")

        deadline = time.monotonic() + 30
        while connected() < self.starts and time.monotonic() < deadline:
            if self.process is not None and self.process.exitcode is not None:
                tail = self._log.read_text(errors="replace")[-2000:]
                raise AssertionError(f"the collector exited by itself:\n{tail}")
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        kill(self.process)
        self.kills += 1

    def restart(self) -> None:
        self.process = self._spawn()
        self.starts += 1

    def stop(self) -> None:
        if self.process is not None:
            kill(self.process)
        if self.service is not None:
            self.service.stop()


def scenario(tmp_path: Path, influx: InfluxClient,
              modbus_server: Callable[..., ModbusTestServer], *, victims: str) -> None:
    rng = random.Random(_seed())
    site = new_site()
    broker = make_broker(tmp_path / "mqtt")
    broker.start()
    configs = [gateway_config(tmp_path / "gateways", site=site, gateway=g, broker=broker,
                              meter=meter(modbus_server, 1000.0 + i))
               for i, g in enumerate(GATEWAYS)]
    client_id = f"fault-{uuid.uuid4().hex[:6]}"

    def make() -> Collector:
        service = Collector(broker=broker_settings(broker, "collector"), influx=influx,
                            dead_letters=DeadLetterStore(tmp_path / "dead.sqlite"),
                            client_id=client_id, receive_maximum=200, batch_points=500,
                            flush_interval_s=0.05, backoff=Backoff(initial_s=0.1, max_s=0.5))
        service.start()
        return service

    collector = _Collector(
        in_process=victims == "broker", make=make, log=tmp_path / f"{client_id}.log",
        spawn=lambda: spawn_collector(broker=broker, influx=influx, client_id=client_id,
                                      workdir=tmp_path))
    runs: dict[str, Running] = {}
    ends: dict[str, int] = {}
    broker_kills = 0
    try:
        with ExitStack() as stack:
            for config in configs:
                runs[config.gateway] = stack.enter_context(running(config))
            wait_for(lambda: all((r.gateway.forwarder.stored_upto or -1) >= 5
                                 for r in runs.values()),
                     timeout_s=60, what="the first end-to-end acknowledgements")
            streaming_since = time.monotonic()
            for delay in kill_schedule(rng, KILLS):
                target = victims if victims != "both" else \
                    rng.choice(("broker", "collector", "both"))
                if target != "broker":  # a random moment of its work, not of its imports
                    collector.wait_working()
                    delay /= 2
                time.sleep(delay)
                if target in ("broker", "both"):
                    broker.stop(kill=True)
                    broker_kills += 1
                if target in ("collector", "both"):
                    collector.kill()
                time.sleep(rng.uniform(0.0, 0.3))
                if target in ("broker", "both"):
                    broker.start()
                if target in ("collector", "both"):
                    collector.restart()
            if soak():  # the two minutes of streaming, whatever the kills took
                time.sleep(max(0.0, 120 - (time.monotonic() - streaming_since)))
            ends = {g: r.gateway.spool.next_seq for g, r in runs.items()}
            # Everything committed while services were dying is acknowledged end to end.
            wait_for(lambda: all((runs[g].gateway.forwarder.stored_upto or -1) >= end - 1
                                 for g, end in ends.items()),
                     timeout_s=180, what=f"the watermarks to pass {ends}")
    finally:
        collector.stop()
        broker.stop()
    if victims != "collector":
        assert broker_kills > 0
    if victims != "broker":
        assert collector.kills > 0
    for gateway, run in runs.items():
        end = ends[gateway]
        assert sorted(run.commits) == list(range(len(run.commits))), "a commit went unrecorded"
        assert len(run.commits) >= end >= 50, (gateway, end)  # ~10 messages a second
        spool = Spool(path=Path(run.gateway.config.spool_dir) / "spool.sqlite")
        left = [m.seq for m in spool.read(start=0, end=None, limit=1_000_000)]
        spool.close()
        assert not [s for s in left if s < end], "acknowledged messages still in the spool"
        times = stored_times(influx, site, gateway)
        # Exactly once: one point per message (InfluxDB keeps one point per series and time,
        # so a second copy could only show as a point at a time no message had, or in a
        # series of other tags: a resent message gives the very same points)...
        assert len(times) == len(set(times))
        assert set(times) <= set(run.commits.values()), "a point no message carried"
        series = influx.query(f"SELECT count(value) FROM readings WHERE site = '{site}' "
                              f"AND gateway = '{gateway}' GROUP BY *")
        assert [int(one.values[0][1]) for one in series] == [len(times)], "tags differ"
        # ... and every message the watermark passed is there.
        missing = [s for s in range(end) if run.commits[s] not in set(times)]
        assert not missing, f"{gateway}: {len(missing)} acknowledged message(s) not stored"
    assert lost_events(influx, site) == 0


