"""The gateway agent: polls every device on its own schedule, spools and forwards each poll."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from gateway.clock import clock_synced
from gateway.forwarder import Forwarder
from gateway.listener import LocalSensors
from gateway.mirror import LocalMirror
from gateway.poller import DevicePoller, ModbusLine, PollResult, line_key
from gateway.publisher import Publisher
from gateway.spool import Spool, SpoolError
from gateway.watchdog import SystemdNotifier
from telemetry.payload import Status, Telemetry, encode
from telemetry.site import Device, GatewayConfig
from telemetry.topics import telemetry_topic

log = logging.getLogger(__name__)

# 2000-01-01 in ms: the payload refuses older timestamps (a clock that reads 1970).
_OLDEST_TS_MS = 946_684_800_000


def software_version() -> str:
    try:
        return version("dynamo-monitoring")
    except PackageNotFoundError:
        return "unknown"


class Gateway:
    """One gateway process: a poller per Modbus device, one spool, one publisher."""

    def __init__(self, *, config: GatewayConfig,
                 clock: Callable[[], bool] = clock_synced,
                 now: Callable[[], float] = time.time) -> None:
        self.config = config
        self.config_hash = hashlib.sha256(
            config.model_dump_json().encode()).hexdigest()[:12]
        self._clock = clock
        self._now = now
        self.clock_synced = clock()
        # While the clock is unsynchronised: the first seq stamped, and the wall clock's
        # offset to the monotonic one (ms); the jump of that offset at synchronisation is the
        # correction owed to the messages it stamped that are still in the spool.
        self._unsynced: tuple[int, int] | None = None
        self.restamped = 0
        self.health: dict[str, str] = {d.id: "starting" for d in config.devices}
        self.skipped_bad_clock = 0
        self.spool = Spool(path=Path(config.spool_dir) / "spool.sqlite", options=config.spool)
        self.mirror = LocalMirror(broker=config.local_broker, site=config.site,
                                  gateway=config.gateway) \
            if config.mirror_to_local and config.local_broker is not None else None
        self.publisher = Publisher(broker=config.broker, site=config.site,
                                   gateway=config.gateway, birth=self._birth,
                                   on_acked=self._acked,
                                   on_uplink=self.mirror.uplink if self.mirror else None)
        self.forwarder = Forwarder(spool=self.spool, publisher=self.publisher,
                                   in_flight=config.spool.in_flight)
        lines: dict[str, ModbusLine] = {}
        self.pollers: list[DevicePoller] = []
        for device in config.devices:
            if config.templates[device.template].protocol != "modbus":
                continue
            line = lines.setdefault(line_key(device), ModbusLine(device=device))
            self.pollers.append(DevicePoller(config=config, device=device, line=line))
        self.local = LocalSensors(config=config, on_result=self._local_result)
        self.notifier = SystemdNotifier()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: set[asyncio.Task[None]] = set()

    def _acked(self, mid: int) -> None:
        self.forwarder.acked(mid)

    def _birth(self) -> Status:
        counters = self.forwarder.counters
        return Status(site=self.config.site, gateway=self.config.gateway, state="online",
                      ts=max(_OLDEST_TS_MS, int(self._now() * 1000)),
                      version=software_version(), config_hash=self.config_hash,
                      buffer_depth=self.forwarder.depth, buffer_thinned=counters.thinned,
                      buffer_dropped=counters.dropped, clock_synced=self.clock_synced,
                      uplink_lost_ts=self._lost_ts(), devices=dict(self.health))

    def _lost_ts(self) -> int | None:
        lost = self.publisher.lost_ms
        return lost if lost is not None and lost >= _OLDEST_TS_MS else None

    async def run(self, *, stop: asyncio.Event | None = None) -> None:
        """Poll until `stop` is set (or forever)."""
        stop = stop or asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if self.mirror is not None:
            self.mirror.start()
        self.publisher.start()
        self.local.start()
        forwarding = asyncio.create_task(self.forwarder.run(stop), name="forwarder")
        tasks = [asyncio.create_task(self._poll_loop(p, stop), name=p.device.id)
                 for p in self.pollers]
        tasks.append(asyncio.create_task(self._housekeeping(stop, forwarding, tasks),
                                         name="housekeeping"))
        self.notifier.ready()
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for poller in self.pollers:
                await poller.close()
            self.local.stop()
            self._loop = None
            if self._pending:
                await asyncio.wait(self._pending, timeout=10)
            stop.set()
            await forwarding  # removes what was acknowledged, closes the spool
            self.publisher.stop()
            if self.mirror is not None:
                self.mirror.stop()

    async def _housekeeping(self, stop: asyncio.Event, forwarding: asyncio.Task[None],
                            pollers: list[asyncio.Task[None]]) -> None:
        """Periodic status, clock check and systemd watchdog keep-alives."""
        interval = self.notifier.watchdog_interval_s or 5.0
        next_status = time.monotonic() + self.config.status_interval_s
        while not stop.is_set():
            await asyncio.sleep(min(interval, self.config.status_interval_s))
            synced = self._clock()
            if synced != self.clock_synced:
                log.warning("clock %s", "synchronised" if synced else "NOT synchronised")
                self.clock_synced = synced
                if synced:
                    await self._correct_timestamps()
                self.publisher.publish_status()
            if time.monotonic() >= next_status:
                next_status = time.monotonic() + self.config.status_interval_s
                self.publisher.publish_status()
            # Keep systemd's watchdog quiet only while the forwarder and every poller live: a
            # wedged or dead task gets the whole process restarted.
            if not forwarding.done() and not any(t.done() for t in pollers if t is not
                                                 asyncio.current_task()):
                self.notifier.alive()
                self.notifier.status(f"spool {self.forwarder.depth} message(s); devices: "
                                     + ", ".join(f"{k}={v}" for k, v in self.health.items()))

    async def _poll_loop(self, poller: DevicePoller, stop: asyncio.Event) -> None:
        device: Device = poller.device
        interval = device.poll_interval_s
        # Polls are aligned on the wall clock so that every gateway samples at the same instants.
        next_at = (self._now() // interval + 1) * interval
        while not stop.is_set():
            await asyncio.sleep(max(0.0, min(interval, next_at - self._now())))
            # The instant of the read, not of the schedule; with the monotonic clock's, which
            # tells later whether the wall clock was set since.
            ts, mono_ms = int(self._now() * 1000), int(time.monotonic() * 1000)
            await self._record(device, ts, mono_ms, await self._guarded(poller.poll))
            next_at += interval
            if not next_at - interval <= self._now() < next_at:
                # Fell behind (a slow device: skip, do not burst) or the clock jumped: realign.
                next_at = (self._now() // interval + 1) * interval

    async def _guarded(self, poll: Callable[[], Awaitable[PollResult]]) -> PollResult | str:
        try:
            return await poll()
        except Exception as exc:  # a bug must cost one poll of one device, not the gateway
            log.exception("poll failed")
            return f"internal error: {type(exc).__name__}"

    async def _record(self, device: Device, ts: int, mono_ms: int,
                      result: PollResult | str) -> None:
        """Commit one poll's message to the spool (the forwarder publishes it)."""
        if isinstance(result, str):
            return self._set_health(device.id, result)
        self._set_health(device.id, result.health)
        if ts < _OLDEST_TS_MS:
            self.skipped_bad_clock += 1
            return None
        config, synced = self.config, self.clock_synced

        def make(seq: int) -> bytes:
            return encode(Telemetry(site=config.site, gateway=config.gateway,
                                    equipment=device.equipment, device=device.id, seq=seq,
                                    ts=ts, clock_synced=synced, readings=result.readings))

        topic = telemetry_topic(config.site, config.gateway, device.equipment)
        try:
            seq = await self.forwarder.commit(topic=topic, device=device.id, ts=ts, encode=make,
                                              mono_ms=mono_ms)
            if self.mirror is not None:
                self.mirror.telemetry(topic, make(seq))
            if not synced:
                # The first unsynchronised stamp's offset is the wrong clock's; a message
                # stamped after the clock was set but before we noticed must not replace it.
                if self._unsynced is None:
                    self._unsynced = (seq, ts - mono_ms)
                else:
                    self._unsynced = (min(seq, self._unsynced[0]), self._unsynced[1])
        except SpoolError as exc:
            # Disk full or failing card: say so loudly; the watchdog restarts us if it lasts.
            log.error("%s", exc)
            self._set_health(device.id, "spool error")
        return None

    async def _correct_timestamps(self) -> None:
        """The clock was just set: move what was stamped before by the clock's jump."""
        if self._unsynced is None:
            return
        first_seq, offset_then_ms = self._unsynced
        self._unsynced = None
        jump_ms = int(self._now() * 1000) - int(time.monotonic() * 1000) - offset_then_ms
        if abs(jump_ms) < 2000:  # NTP's own slewing; not worth rewriting the card
            return
        self.restamped += await self.forwarder.restamp(first_seq=first_seq,
                                                       offset_ms=offset_then_ms,
                                                       delta_ms=jump_ms)
        log.warning("clock jumped %+.1f s at synchronisation: %d spooled message(s) re-stamped",
                    jump_ms / 1000, self.restamped)

    def _local_result(self, device: Device, result: PollResult) -> None:
        """A local MQTT sensor spoke (paho's thread): record it on the event loop."""
        ts, mono_ms = int(self._now() * 1000), int(time.monotonic() * 1000)
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        def schedule() -> None:
            task = asyncio.create_task(self._record(device, ts, mono_ms, result))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

        loop.call_soon_threadsafe(schedule)

    def _set_health(self, device_id: str, health: str) -> None:
        previous = self.health.get(device_id)
        self.health[device_id] = health
        if health != previous:
            log.info("device %s: %s", device_id, health)
            self.publisher.publish_status()
