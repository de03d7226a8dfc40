"""Run the DYNAMO machine simulators: in a background thread (tests) or in the foreground.

Each machine gets its model, its simulation on a shared clock, and one Modbus TCP server
(optionally a Modbus RTU server on a serial device too) serving the devices of its gateway
configuration - by default the Ariège site's, `firmware-config/sites/ariege/<machine>.yaml`.
A periodic timer advances the physics between reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType

from simulators.clock import SimClock
from simulators.dryer import DryerModel
from simulators.freezer import FreezerModel
from simulators.model import MachineModel
from simulators.packaging import PackagingModel
from simulators.server import MachineServer
from simulators.simulation import Simulation
from simulators.truth import Truth
from telemetry.loader import load_gateway_config
from telemetry.site import GatewayConfig, TcpConnection

log = logging.getLogger(__name__)

MACHINES: tuple[str, ...] = ("dryer", "freezer", "packaging")
MODELS: dict[str, type[MachineModel]] = {
    "dryer": DryerModel,
    "freezer": FreezerModel,
    "packaging": PackagingModel,
}
SITE_DIR = Path(__file__).resolve().parents[1] / "firmware-config" / "sites" / "ariege"

ConfigSource = str | Path | GatewayConfig


def site_config_path(machine: str) -> Path:
    """The Ariège site's gateway configuration for `machine`."""
    _check_machine(machine)
    return SITE_DIR / f"{machine}.yaml"


def _check_machine(machine: str) -> None:
    if machine not in MODELS:
        raise ValueError(f"unknown machine {machine!r}; known: {', '.join(MACHINES)}")


def _load(machine: str, source: ConfigSource | None) -> GatewayConfig:
    if isinstance(source, GatewayConfig):
        return source
    return load_gateway_config(site_config_path(machine) if source is None else source)


def _config_port(config: GatewayConfig) -> int:
    """The one TCP port the configuration's devices use (they share one simulator)."""
    ports = {d.connection.port for d in config.devices if isinstance(d.connection, TcpConnection)}
    if len(ports) != 1:
        raise ValueError(f"gateway {config.gateway}: expected its Modbus TCP devices on one port, "
                         f"found {sorted(ports) or 'none'}; pass the port explicitly")
    return ports.pop()


class RunningSimulators:
    """Simulators serving in a background thread. Use as a context manager, or call `stop()`."""

    def __init__(
        self,
        *,
        machines: Iterable[str],
        host: str,
        ports: Mapping[str, int],
        speed: float,
        seed: int,
        start: datetime | None,
        configs: Mapping[str, ConfigSource] | None,
        serial_ports: Mapping[str, str] | None,
        baudrate: int,
        tick_s: float,
    ) -> None:
        names = tuple(dict.fromkeys(machines))
        for machine in names:
            _check_machine(machine)
        if not names:
            raise ValueError("no machine to simulate")
        self.host = host
        self.configs = {m: _load(m, (configs or {}).get(m)) for m in names}
        self._wanted_ports = {m: ports.get(m, 0) for m in names}
        self.serial_ports: dict[str, str] = dict(serial_ports or {})
        self._baudrate = baudrate
        self._tick_s = tick_s
        clock = SimClock(speed=speed)
        self.simulations = {m: Simulation(MODELS[m](seed=seed, start=start), clock=clock)
                            for m in names}
        self.ports: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="dynamo-simulators", daemon=True)

    # ------------------------------------------------------------------------ public view

    @property
    def models(self) -> dict[str, MachineModel]:
        """The running models, by machine (their event methods may be called from any thread)."""
        return {m: s.model for m, s in self.simulations.items()}

    def truth(self, machine: str) -> Truth:
        """The ground truth of `machine`."""
        return self.simulations[machine].truth

    @property
    def truths(self) -> dict[str, Truth]:
        """The ground truths, by machine."""
        return {m: s.truth for m, s in self.simulations.items()}

    def env(self) -> dict[str, str]:
        """Environment variables that make the site configurations point at these simulators."""
        out = {"DYNAMO_SIM_HOST": self.host}
        for machine, port in self.ports.items():
            out[f"DYNAMO_{machine.upper()}_SIM_PORT"] = str(port)
        return out

    def gateway_config(self, machine: str) -> GatewayConfig:
        """`machine`'s gateway configuration with its TCP devices pointed at this simulator."""
        config = self.configs[machine]
        connection = TcpConnection(host=self.host, port=self.ports[machine])
        devices = tuple(d.model_copy(update={"connection": connection})
                        if isinstance(d.connection, TcpConnection) else d
                        for d in config.devices)
        return config.model_copy(update={"devices": devices})

    # --------------------------------------------------------------------------- lifecycle

    def start(self, *, timeout_s: float = 15.0) -> RunningSimulators:
        """Start serving; returns once every server listens (or raises why it could not)."""
        self._thread.start()
        if not self._ready.wait(timeout_s):
            self.stop()
            raise TimeoutError(f"simulators not listening after {timeout_s} s")
        if self._error is not None:
            self._thread.join(timeout_s)
            raise RuntimeError(f"simulators failed to start: {self._error}") from self._error
        return self

    def stop(self, *, timeout_s: float = 10.0) -> None:
        """Stop serving and wait for the thread to end."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may have just closed
                loop.call_soon_threadsafe(stop.set)
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def __enter__(self) -> RunningSimulators:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the starting thread, not lost in this one
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await serve(self.simulations, self.configs, host=self.host, ports=self._wanted_ports,
                    serial_ports=self.serial_ports, baudrate=self._baudrate,
                    tick_s=self._tick_s, stop=self._stop, on_started=self._started)

    def _started(self, ports: Mapping[str, int]) -> None:
        self.ports = dict(ports)
        self._ready.set()


async def serve(
    simulations: Mapping[str, Simulation],
    configs: Mapping[str, GatewayConfig],
    *,
    host: str,
    ports: Mapping[str, int],
    serial_ports: Mapping[str, str],
    baudrate: int,
    tick_s: float,
    stop: asyncio.Event,
    on_started: Callable[[Mapping[str, int]], None] | None = None,
    status_every_s: float | None = None,
) -> None:
    """Serve the simulations until `stop` is set (the loop both runners share)."""
    servers: list[MachineServer] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        bound: dict[str, int] = {}
        for machine, simulation in simulations.items():
            server = MachineServer(simulation, configs[machine])
            servers.append(server)
            bound[machine] = await server.start_tcp(host=host, port=ports[machine])
            if machine in serial_ports:
                await server.start_serial(port=serial_ports[machine], baudrate=baudrate)
        tasks = [asyncio.create_task(_tick(simulation, tick_s))
                 for simulation in simulations.values()]
        if status_every_s:
            tasks.append(asyncio.create_task(_status(simulations, status_every_s)))
        if on_started is not None:
            on_started(bound)
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for server in servers:
            await server.stop()


async def _tick(simulation: Simulation, tick_s: float) -> None:
    while True:
        simulation.advance()
        await asyncio.sleep(tick_s)


async def _status(simulations: Mapping[str, Simulation], every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        for machine, simulation in simulations.items():
            sample = simulation.truth.latest()
            shown = ", ".join(f"{k}={v:.6g}" for k, v in list(sample.values.items())[:6])
            log.info("%s at %s: %s", machine, sample.sim_time.strftime("%Y-%m-%d %H:%M"), shown)


def run_in_thread(
    *,
    machines: Iterable[str] = MACHINES,
    host: str = "127.0.0.1",
    ports: Mapping[str, int] | None = None,
    speed: float = 60.0,
    seed: int = 0,
    start: datetime | None = None,
    configs: Mapping[str, ConfigSource] | None = None,
    serial_ports: Mapping[str, str] | None = None,
    baudrate: int = 9600,
    tick_s: float = 0.2,
    ready_timeout_s: float = 15.0,
) -> RunningSimulators:
    """Start simulators in a background thread and return once they listen.

    Ports default to 0 (the system picks free ones, see `.ports` and `.env()`), so that tests
    running in parallel never collide. `configs` maps a machine to a gateway configuration
    (file or loaded) to serve instead of the Ariège site's; `serial_ports` maps a machine to a
    serial device on which its devices are also served in Modbus RTU.
    """
    running = RunningSimulators(machines=machines, host=host, ports=ports or {}, speed=speed,
                                seed=seed, start=start, configs=configs,
                                serial_ports=serial_ports, baudrate=baudrate, tick_s=tick_s)
    return running.start(timeout_s=ready_timeout_s)


def run(
    *,
    machines: Iterable[str] = MACHINES,
    machine: str | None = None,
    host: str = "127.0.0.1",
    ports: Mapping[str, int] | None = None,
    port_base: int | None = None,
    speed: float = 60.0,
    seed: int = 0,
    start: datetime | None = None,
    configs: Mapping[str, ConfigSource] | None = None,
    serial_ports: Mapping[str, str] | None = None,
    baudrate: int = 9600,
    tick_s: float = 0.2,
    duration_s: float | None = None,
    status_every_s: float | None = 60.0,
    on_started: Callable[[Mapping[str, int]], None] | None = None,
    meters: Mapping[str, Mapping[str, float]] | None = None,
) -> None:
    """Serve in the foreground until interrupted (Ctrl-C, SIGTERM) or `duration_s` has passed.

    Ports: `ports[machine]` if given, else `port_base` + the machine's index in MACHINES
    (`port_base=0`: free ports), else the port in the machine's gateway configuration (15020,
    15021, 15022 unless DYNAMO_<MACHINE>_SIM_PORT says otherwise). `machine` ("dryer",
    "freezer", "packaging" or "all") is a shorthand for `machines`, as a command line gives it.
    `meters[machine]` gives the values its cumulative meters start from
    (`MachineModel.continue_meters`).
    """
    if machine is not None:
        machines = MACHINES if machine == "all" else (machine,)
    names = tuple(dict.fromkeys(machines))
    for machine in names:
        _check_machine(machine)
    loaded = {m: _load(m, (configs or {}).get(m)) for m in names}
    chosen: dict[str, int] = {}
    for machine in names:
        if ports and machine in ports:
            chosen[machine] = ports[machine]
        elif port_base is not None:
            chosen[machine] = 0 if port_base == 0 else port_base + MACHINES.index(machine)
        else:
            chosen[machine] = _config_port(loaded[machine])
    clock = SimClock(speed=speed)
    models = {m: MODELS[m](seed=seed, start=start) for m in names}
    for m, values in (meters or {}).items():
        if m in models:
            models[m].continue_meters(values)
    simulations = {m: Simulation(model, clock=clock) for m, model in models.items()}

    def started(bound: Mapping[str, int]) -> None:
        for machine, port in bound.items():
            log.info("%s simulator listening on %s:%d (speed x%g, seed %d)", machine, host, port,
                     speed, seed)
        if on_started is not None:
            on_started(bound)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
        if duration_s is not None:
            loop.call_later(duration_s, stop.set)
        await serve(simulations, loaded, host=host, ports=chosen,
                    serial_ports=dict(serial_ports or {}), baudrate=baudrate, tick_s=tick_s,
                    stop=stop, on_started=started, status_every_s=status_every_s)

    began = time.monotonic()
    asyncio.run(main())
    log.info("simulators stopped after %.1f s", time.monotonic() - began)
