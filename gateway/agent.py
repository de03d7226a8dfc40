"""The gateway agent: polls every device on its own schedule and publishes each poll."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import time
from importlib.metadata import PackageNotFoundError, version

from gateway.poller import DevicePoller
from gateway.publisher import Publisher
from telemetry.payload import Status, Telemetry
from telemetry.site import Device, GatewayConfig

log = logging.getLogger(__name__)


def software_version() -> str:
    try:
        return version("dynamo-monitoring")
    except PackageNotFoundError:
        return "unknown"


class Gateway:
    """One gateway process: a poller per Modbus device, one publisher."""

    def __init__(self, *, config: GatewayConfig) -> None:
        self.config = config
        self.config_hash = hashlib.sha256(
            config.model_dump_json().encode()).hexdigest()[:12]
        # Restarts from 0 for now: the on-disk spool (issue #3) will persist it.
        self._seq = itertools.count(0)
        self.health: dict[str, str] = {d.id: "starting" for d in config.devices}
        self.publisher = Publisher(broker=config.broker, site=config.site,
                                   gateway=config.gateway, birth=self._birth)
        self.pollers = [DevicePoller(config=config, device=d) for d in config.devices
                        if config.templates[d.template].protocol == "modbus"]

    def _birth(self) -> Status:
        return Status(site=self.config.site, gateway=self.config.gateway, state="online",
                      ts=int(time.time() * 1000), version=software_version(),
                      config_hash=self.config_hash, buffer_depth=0, clock_synced=True,
                      devices=dict(self.health))

    async def run(self, *, stop: asyncio.Event | None = None) -> None:
        """Poll until `stop` is set (or forever)."""
        stop = stop or asyncio.Event()
        self.publisher.start()
        tasks = [asyncio.create_task(self._poll_loop(p, stop), name=p.device.id)
                 for p in self.pollers]
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
            self.publisher.stop()

    async def _poll_loop(self, poller: DevicePoller, stop: asyncio.Event) -> None:
        device: Device = poller.device
        interval = device.poll_interval_s
        # Polls are aligned on the wall clock so that every gateway samples at the same instants.
        next_at = (time.time() // interval + 1) * interval
        while not stop.is_set():
            await asyncio.sleep(max(0.0, next_at - time.time()))
            ts = int(time.time() * 1000)  # the instant of the read, not of the schedule
            result = await poller.poll()
            previous = self.health.get(device.id)
            self.health[device.id] = result.health
            if result.health != previous:
                log.info("device %s: %s", device.id, result.health)
                self.publisher.publish_status()
            message = Telemetry(site=self.config.site, gateway=self.config.gateway,
                                equipment=device.equipment, device=device.id,
                                seq=next(self._seq), ts=ts, readings=result.readings)
            self.publisher.publish_telemetry(message)
            next_at += interval
            if next_at < time.time():  # we fell behind (a slow device): skip, do not burst
                next_at = (time.time() // interval + 1) * interval
