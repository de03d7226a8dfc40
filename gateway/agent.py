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
from gateway.metrics import GatewayMetrics
from gateway.mirror import LocalMirror
from gateway.poller import DevicePoller, ModbusLine, PollResult, line_key
from gateway.publisher import Publisher
from gateway.spool import Spool, SpoolError
from gateway.watchdog import (
    FORWARDER_BOUND_S,
    Liveness,
    SystemdNotifier,
    poll_loop_bound_s,
    poll_worst_s,
)
from telemetry.logs import fields
from telemetry.payload import Ack, ConfigRefusal, Status, Telemetry, UpgradeReport, encode
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


def _mqtt_devices(config: GatewayConfig) -> list[tuple[Device, object]]:
    return [(d, config.templates[d.template]) for d in config.devices
            if config.templates[d.template].protocol == "mqtt"]


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
                                   on_acked=self._acked, on_refused=self._refused,
                                   on_stored=self._stored,
                                   on_uplink=self.mirror.uplink if self.mirror else None)
        self.forwarder = Forwarder(spool=self.spool, publisher=self.publisher,
                                   in_flight=config.spool.in_flight,
                                   refused_retry_s=config.spool.refused_retry_s,
                                   resend_after_s=config.spool.resend_after_s,
                                   end_to_end=config.spool.acknowledgement == "end-to-end")
        lines: dict[str, ModbusLine] = {}
        self.pollers: list[DevicePoller] = []
        for device in config.devices:
            if config.templates[device.template].protocol != "modbus":
                continue
            line = lines.setdefault(line_key(device), ModbusLine(device=device))
            self.pollers.append(DevicePoller(config=config, device=device, line=line))
        self.local = LocalSensors(config=config, on_result=self._local_result)
        # Polls that read at least one value (gateway/remote.py rolls a pushed configuration
        # back when this stops growing), and what the status says of pushed configurations.
        self.polled = 0
        self.config_version: int | None = None
        self.config_refused: ConfigRefusal | None = None
        self.upgrade: UpgradeReport | None = None  # gateway/upgrade.py: the last upgrade
        self._running: tuple[asyncio.Event, list[asyncio.Task[None]]] | None = None
        self.notifier = SystemdNotifier()
        self.liveness = Liveness()  # heartbeats of the poll loops and the forwarder
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self.metrics = GatewayMetrics.create(self)  # served by `dynamo gateway run`

    def _acked(self, mid: int) -> None:
        self.forwarder.acked(mid)

    def _refused(self, mid: int, reason: str) -> None:
        self.forwarder.refused(mid, reason)

    def _stored(self, ack: Ack) -> None:
        self.forwarder.stored(ack)
        # Every seq up to the watermark is in InfluxDB (paho's thread; a gauge is thread-safe).
        self.metrics.last_ack_seq.set(ack.upto)

    def _birth(self) -> Status:
        counters = self.forwarder.counters
        return Status(site=self.config.site, gateway=self.config.gateway, state="online",
                      ts=max(_OLDEST_TS_MS, int(self._now() * 1000)),
                      version=software_version(), config_hash=self.config_hash,
                      buffer_depth=self.forwarder.depth, buffer_thinned=counters.thinned,
                      buffer_dropped=counters.dropped, buffer_floor=counters.floor,
                      buffer_refused=self.forwarder.refused_by_reason() or None,
                      buffer_void=counters.void,
                      clock_synced=self.clock_synced,
                      uplink_lost_ts=self._lost_ts(), devices=dict(self.health),
                      cert_expires_ts=self._cert_expires_ts(),
                      config_version=self.config_version, config_refused=self.config_refused,
                      upgrade=self.upgrade)

    def _cert_expires_ts(self) -> int | None:
        """The end of the client certificate's validity, read at each birth: a renewed
        certificate shows from the next status on. None without one, or if unreadable."""
        tls = self.config.broker.tls
        if tls is None or tls.cert is None:
            return None
        from telemetry.pki import PkiError, certificate_expiry  # cryptography: TLS gateways only

        try:
            return int(certificate_expiry(tls.cert).timestamp() * 1000)
        except PkiError as exc:
            log.warning("client certificate: %s", exc)
            return None

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
        tasks = [asyncio.create_task(self._poll_loop(p, stop), name=f"poll:{p.device.id}")
                 for p in self.pollers]
        tasks.append(asyncio.create_task(self._housekeeping(stop, forwarding, tasks),
                                         name="housekeeping"))
        self._running = (stop, tasks)
        self.notifier.ready()
        try:
            await stop.wait()
        finally:
            self._running = None
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

    @property
    def running(self) -> bool:
        return self._running is not None

    async def reconfigure(self, config: GatewayConfig, *, config_hash: str | None = None) -> None:
        """Run `config`'s devices from now on (gateway/remote.py, docs/fleet.md).

        The spool, forwarder and publisher stay: seq numbers continue and nothing waiting is
        lost. A device whose definition (and template) did not change keeps its poller, so it
        skips no poll; the others stop (a poll in progress is abandoned) and the new ones start.
        What a live swap cannot change (site, gateway, brokers, spool) the caller refuses.
        """
        if self._running is None:
            raise RuntimeError("the gateway is not running")
        stop, tasks = self._running
        old = self.config
        kept = [p for p in self.pollers if p.device in config.devices
                and config.templates.get(p.device.template) == old.templates[p.device.template]]
        for poller in self.pollers:
            if poller in kept:
                continue
            task = next(t for t in tasks if t.get_name() == f"poll:{poller.device.id}")
            tasks.remove(task)  # first: the watchdog's check must not see it cancelled
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.liveness.forget(f"poll:{poller.device.id}")  # stopped on purpose
            if all(k.line is not poller.line for k in kept):
                await poller.close()
        lines = {line_key(p.device): p.line for p in kept}
        kept_ids = {p.device.id for p in kept}
        self.pollers = list(kept)
        self.config = config
        self.config_hash = config_hash or hashlib.sha256(
            config.model_dump_json().encode()).hexdigest()[:12]
        self.health = {d.id: self.health.get(d.id, "starting") if d.id in kept_ids
                       else "starting" for d in config.devices}
        for device in config.devices:
            if device.id in kept_ids or config.templates[device.template].protocol != "modbus":
                continue
            line = lines.setdefault(line_key(device), ModbusLine(device=device))
            poller = DevicePoller(config=config, device=device, line=line)
            self.pollers.append(poller)
            tasks.insert(0, asyncio.create_task(self._poll_loop(poller, stop),
                                                name=f"poll:{device.id}"))
        if _mqtt_devices(config) != _mqtt_devices(old):
            self.local.stop()
            self.local = LocalSensors(config=config, on_result=self._local_result)
            self.local.start()
        log.warning("configuration replaced: %d device(s), %d kept polling",
                    len(config.devices), len(kept))
        self.publisher.publish_status()

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
            # Keep systemd's watchdog quiet only while the forwarder and every poller live and
            # progress (each heartbeat within its bound): a wedged or dead task gets the whole
            # process restarted. A blocked event loop stops the keep-alives by itself.
            self.liveness.beat("forwarder", FORWARDER_BOUND_S, at=self.forwarder.heartbeat)
            progressing = self.liveness.fresh()
            if progressing and not forwarding.done() and not any(
                    t.done() for t in pollers if t is not asyncio.current_task()):
                self.notifier.alive()
                self.notifier.status(f"spool {self.forwarder.depth} message(s); devices: "
                                     + ", ".join(f"{k}={v}" for k, v in self.health.items()))

    async def _poll_loop(self, poller: DevicePoller, stop: asyncio.Event) -> None:
        device: Device = poller.device
        interval = device.poll_interval_s
        # Polls are aligned on the wall clock so that every gateway samples at the same instants.
        next_at = (self._now() // interval + 1) * interval
        self._beat(poller)
        while not stop.is_set():
            await asyncio.sleep(max(0.0, min(interval, next_at - self._now())))
            # The instant of the read, not of the schedule; with the monotonic clock's, which
            # tells later whether the wall clock was set since.
            ts, mono_ms = int(self._now() * 1000), int(time.monotonic() * 1000)
            await self._record(device, ts, mono_ms, await self._guarded(poller.poll))
            self._beat(poller)  # whatever the result: a dead device's poll completes too
            next_at += interval
            if not next_at - interval <= self._now() < next_at:
                # Fell behind (a slow device: skip, do not burst) or the clock jumped: realign.
                next_at = (self._now() // interval + 1) * interval

    def _beat(self, poller: DevicePoller) -> None:
        """The device's poll loop made progress; its next is due within its bound, which counts
        a poll of each other device on its line (gateway/watchdog.py)."""
        line_wait = sum(poll_worst_s(p.device, len(p.requests)) for p in self.pollers
                        if p.line is poller.line and p is not poller)
        self.liveness.beat(f"poll:{poller.device.id}",
                           poll_loop_bound_s(poller.device, len(poller.requests), line_wait))

    async def _guarded(self, poll: Callable[[], Awaitable[PollResult]]) -> PollResult | str:
        try:
            return await poll()
        except Exception as exc:  # a bug must cost one poll of one device, not the gateway
            log.exception("poll failed", extra={"reason": type(exc).__name__})
            return f"internal error: {type(exc).__name__}"

    async def _record(self, device: Device, ts: int, mono_ms: int,
                      result: PollResult | str) -> None:
        """Commit one poll's message to the spool (the forwarder publishes it)."""
        if isinstance(result, str):
            self.metrics.poll(device.id, ok=False)
            return self._set_health(device.id, result)
        self.metrics.poll(device.id, ok=result.health == "ok")
        self._set_health(device.id, result.health)
        if any(r.value is not None for r in result.readings):
            self.polled += 1
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
            log.error("%s", exc, extra=fields(equipment=device.equipment, device=device.id))
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
            log.log(logging.INFO if health == "ok" else logging.WARNING, "device %s: %s",
                    device_id, health, extra={"device": device_id, "health": health})
            self.publisher.publish_status()
