"""One RS-485 line, five slaves: the freezer's devices served by its simulator in Modbus RTU on
a serial pseudo-terminal pair, polled concurrently by the gateway through one shared line."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.poller import DevicePoller, ModbusLine, line_key
from simulators import PtyPair, run_in_thread
from telemetry.site import SerialConnection


def test_devices_sharing_a_serial_line_are_polled_in_turn_without_collisions(
        tmp_path: Path) -> None:
    with PtyPair(tmp_path / "tty") as pair:
        sims = run_in_thread(machines=("freezer",), serial_ports={"freezer": pair.server_end},
                             baudrate=19200, speed=60.0, seed=5)
        try:
            site = sims.gateway_config("freezer")
            line = SerialConnection(port=pair.client_end, baudrate=19200)
            devices = tuple(d.model_copy(update={"connection": line, "timeout_s": 1.0,
                                                 "pause_between_requests_s": 0.005})
                            for d in site.devices)
            config = site.model_copy(update={"devices": devices})
            assert len({line_key(d) for d in devices}) == 1
            assert len(devices) >= 4

            async def poll_rounds() -> list[list[str]]:
                shared = ModbusLine(device=devices[0])
                pollers = [DevicePoller(config=config, device=d, line=shared) for d in devices]
                healths = []
                for _ in range(3):
                    # Every device's task asks at once, as the agent's do.
                    results = await asyncio.gather(*(p.poll() for p in pollers))
                    healths.append([r.health for r in results])
                    readings = [r for result in results for r in result.readings]
                    assert all(r.quality != "bad" for r in readings), readings
                shared.close()
                return healths

            healths = asyncio.run(poll_rounds())
        finally:
            sims.stop()
    assert all(h == "ok" for round_ in healths for h in round_), healths
