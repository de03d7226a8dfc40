"""Configuration pushed from the centre, signed, applied live and rolled back if it polls
nothing (docs/fleet.md).

The centre publishes one envelope per gateway, retained, on `dynamo/v1/{site}/fleet/config/
{gateway}` (telemetry/signing.py). This module subscribes to it with an MQTT client of its own
(the publisher keeps the telemetry's session to itself; the config channel needs no ordering
with it) and, for each envelope, in order:

1. checks the signature against the centre's public key the gateway holds, then the gateway and
   site it names, then that its version is above every one handled so far (a retained message
   comes back at each connection: the version it just handled is ignored quietly);
2. loads the text with the same loader as `dynamo config check`, as if it stood in place of the
   installed configuration (the gateway's own templates and certificates), and refuses what a
   live swap cannot change: site, gateway, brokers, spool, `fleet` itself. Those are installed
   on the gateway (install.sh), where a mistake can be seen and undone;
3. writes it to the state directory (`{spool_dir}/fleet/current.yaml`, the previous one kept
   as `previous.yaml`; /etc is read-only to the service) and hands it to the running agent,
   which swaps its pollers and keeps its spool, forwarder and publisher: sequence numbers go on,
   nothing waiting is lost, and unchanged devices skip no poll. A re-exec would work too (the
   spool is durable), but would skip a poll of every device and reconnect twice;
4. watches the agent's count of polls that read a value: if none comes within `rollback_cycles`
   poll intervals, it goes back to the previous configuration and says so in its status.

Refusals and rollbacks are logged and reported in the status (`config_refused`), never applied.
The state survives restarts (`state.json`): `dynamo gateway run` starts with the configuration
last applied, and an unfinished probation starts over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from gateway.agent import Gateway
from telemetry.errors import ConfigError
from telemetry.loader import load_gateway_config
from telemetry.mqtt import connect, make_client
from telemetry.payload import ConfigRefusal
from telemetry.signing import Envelope, SigningError, decode, load_public_key, text_sha256, verify
from telemetry.site import GatewayConfig
from telemetry.topics import fleet_config_topic

log = logging.getLogger(__name__)

# What a live swap keeps as it was: a pushed configuration that changes one is refused.
FIXED = ("site", "gateway", "broker", "local_broker", "spool_dir", "spool", "mirror_to_local",
         "fleet")
_CHECK_EVERY_S = 0.2


@dataclass
class FleetState:
    """What `state.json` remembers across restarts."""

    version: int | None = None  # the pushed configuration running (None: the installed one)
    sha256: str | None = None
    previous_version: int | None = None  # what a rollback returns to (None: the installed one)
    previous_sha256: str | None = None
    handled: int = -1  # the highest verified version applied, refused or rolled back
    probation: bool = False  # applied, no device has answered it yet
    refused: dict[str, Any] | None = field(default=None)
    # The installed file's SHA-256 when this was saved: a file installed on site since wins.
    base_sha256: str | None = None

    @classmethod
    def load(cls, path: Path) -> FleetState:
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, TypeError) as exc:
            log.error("fleet state %s unreadable (%s): starting from the installed "
                      "configuration", path, exc)
            return cls()

    def save(self, path: Path) -> None:
        _write_atomically(path, json.dumps(asdict(self), indent=1).encode())


class Feed:
    """Messages on a gateway's fleet topics (retained signed documents), handed one at a time
    to its event loop: paho calls back from its own thread. Made inside the running loop."""

    def __init__(self, config: GatewayConfig, topics: Sequence[str], name: str) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._client = make_client(broker=config.broker,
                                   client_id=f"gw-{config.site}-{config.gateway}-{name}")
        self._client.on_connect = lambda c, _u, _f, reason, _p: None if reason.is_failure \
            else c.subscribe([(topic, 1) for topic in topics])
        self._client.on_message = self._received
        connect(self._client, config.broker)

    def __enter__(self) -> Feed:
        return self

    def __exit__(self, *_: object) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _received(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        if not self._loop.is_closed() and message.payload:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, bytes(message.payload))

    async def next(self, stop: asyncio.Event) -> bytes | None:
        """The next payload, or None once `stop` is set."""
        if stop.is_set():
            return None
        getter = asyncio.ensure_future(self._queue.get())
        stopper = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if getter not in done:
            getter.cancel()
            return None
        return getter.result()


def _write_atomically(path: Path, data: bytes) -> None:
    """A reader (or a power cut) sees the old file or the new one, never half of one."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


class Refused(Exception):
    """An envelope not applied; `version` as it claims, `reason` why."""

    def __init__(self, version: int, reason: str) -> None:
        self.version = version
        self.reason = reason
        super().__init__(reason)


class RemoteConfig:
    """The gateway's end of `dynamo fleet push`: one per gateway process.

    `base_file` is the installed configuration (`/etc/dynamo/gateway.yaml`): its folder and
    templates are those a pushed text is read against, and it is what a rollback of the first
    pushed configuration returns to.
    """

    def __init__(self, *, base_file: Path, base: GatewayConfig) -> None:
        if base.fleet is None:
            raise ValueError("the configuration has no `fleet` section")
        self.base_file = base_file
        self.base = base
        self.options = base.fleet
        self.directory = Path(base.spool_dir) / "fleet"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.state = FleetState.load(self.directory / "state.json")
        self.public_key_path = base_file.parent / self.options.public_key
        self.applied = asyncio.Event()  # set at each apply, refusal or rollback (for tests)

    # -- at start -------------------------------------------------------------------------------

    def initial(self) -> GatewayConfig:
        """The configuration to start with: the one last applied, or the installed one if
        none was, or if the installed file changed since (installed on site: it wins)."""
        base_sha256 = text_sha256(self.base_file.read_text(encoding="utf-8"))
        if self.state.version is not None and self.state.base_sha256 not in (None, base_sha256):
            log.warning("the installed configuration changed since pushed configuration %s "
                        "was applied: the installed one runs", self.state.version)
            self.state.version = self.state.sha256 = None
            self.state.previous_version = self.state.previous_sha256 = None
            self.state.probation = False
            (self.directory / "current.yaml").unlink(missing_ok=True)
        self.state.base_sha256 = base_sha256
        self._save()
        if self.state.version is None:
            return self.base
        try:
            return self._load(self.directory / "current.yaml")
        except (ConfigError, OSError) as exc:
            log.error("pushed configuration %s no longer loads (%s): back to the previous one",
                      self.state.version, exc)
            self._forget_current(f"no longer loads at start: {_first_line(exc)}")
            return self._previous_config()

    def attach(self, agent: Gateway) -> None:
        """Show the state in the agent's status (before it starts, so its birth has it)."""
        agent.config_version = self.state.version
        agent.config_refused = _refusal(self.state.refused)
        if self.state.sha256 is not None:
            agent.config_hash = self.state.sha256[:12]

    # -- running --------------------------------------------------------------------------------

    async def run(self, agent: Gateway, stop: asyncio.Event) -> None:
        """Follow the config topic until `stop`; apply, refuse, roll back."""
        while not agent.running and not stop.is_set():  # reconfigure needs its tasks
            await asyncio.sleep(0.05)
        base = self.base
        with Feed(base, [fleet_config_topic(base.site, base.gateway)], "fleet") as feed:
            if self.state.probation:
                await self._probation(agent, stop)
            while (payload := await feed.next(stop)) is not None:
                try:
                    await self.handle(agent, payload, stop)
                except Exception:  # a bug here must not stop the polling
                    log.exception("pushed configuration: internal error")

    async def handle(self, agent: Gateway, payload: bytes, stop: asyncio.Event) -> None:
        """One envelope: refused (logged, in the status) or applied then watched."""
        try:
            envelope = self._verified(payload)
            if envelope is None:
                return  # the one just handled, delivered again (retained)
            config = self._checked(envelope)
        except Refused as exc:
            self._refuse(agent, exc.version, exc.reason)
            return
        await self._apply(agent, envelope, config)
        await self._probation(agent, stop)

    def _verified(self, payload: bytes) -> Envelope | None:
        try:
            envelope = decode(payload)
        except SigningError as exc:
            raise Refused(0, str(exc)) from None
        try:
            verify(envelope, load_public_key(self.public_key_path))
        except SigningError as exc:
            raise Refused(envelope.version, str(exc)) from None
        if (envelope.site, envelope.gateway) != (self.base.site, self.base.gateway):
            raise Refused(envelope.version, f"for {envelope.site}/{envelope.gateway}, not "
                                            f"{self.base.site}/{self.base.gateway}")
        if envelope.version == self.state.handled:
            return None
        if envelope.version < self.state.handled:
            raise Refused(envelope.version, f"version {envelope.version} is not newer than "
                                            f"{self.state.handled}, handled already")
        return envelope

    def _checked(self, envelope: Envelope) -> GatewayConfig:
        incoming = self.directory / "incoming.yaml"
        _write_atomically(incoming, envelope.config.encode())
        try:
            config = self._load(incoming)
        except ConfigError as exc:
            self.state.handled = envelope.version
            raise Refused(envelope.version, "invalid: " + "; ".join(
                f"{i.path or '<root>'}: {i.message}" for i in exc.issues[:3])) from None
        changed = [name for name in FIXED if getattr(config, name) != getattr(self.base, name)]
        if changed:
            self.state.handled = envelope.version
            raise Refused(envelope.version, f"changes {', '.join(changed)}: a pushed "
                          "configuration may change equipment, devices and timings only; "
                          "install it on the gateway")
        return config

    def _load(self, file: Path) -> GatewayConfig:
        return load_gateway_config(file, as_if=self.base_file)

    async def _apply(self, agent: Gateway, envelope: Envelope, config: GatewayConfig) -> None:
        current, previous = self.directory / "current.yaml", self.directory / "previous.yaml"
        if self.state.version is not None and current.exists():
            os.replace(current, previous)
            self.state.previous_version, self.state.previous_sha256 = \
                self.state.version, self.state.sha256
        elif self.state.version is None:
            self.state.previous_version = self.state.previous_sha256 = None
        os.replace(self.directory / "incoming.yaml", current)
        self.state.version, self.state.sha256 = envelope.version, envelope.sha256
        self.state.handled, self.state.probation, self.state.refused = \
            envelope.version, True, None
        self._save()
        agent.config_version, agent.config_refused = envelope.version, None
        log.warning("pushed configuration %d applied (sha256 %s)", envelope.version,
                    envelope.sha256[:12])
        await agent.reconfigure(config, config_hash=envelope.sha256[:12])
        self.applied.set()

    async def _probation(self, agent: Gateway, stop: asyncio.Event) -> None:
        """Keep the configuration once a device answers; roll back if none does in time."""
        config, polled = agent.config, agent.polled
        interval = max(d.poll_interval_s for d in config.devices)
        slowest = max(d.timeout_s * (d.retries + 1) for d in config.devices)
        # Plus slack for a loaded Pi: a first poll that starts late is not a dead configuration.
        deadline = time.monotonic() + self.options.rollback_cycles * interval + slowest + 2.0
        while agent.polled == polled and time.monotonic() < deadline and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _CHECK_EVERY_S)
        if stop.is_set():
            return  # probation starts over at the next start
        if agent.polled > polled:
            self.state.probation = False
            self._save()
            log.info("pushed configuration %s confirmed: devices answer", self.state.version)
            return
        version = self.state.version or 0
        reason = (f"rolled back: no device answered within {self.options.rollback_cycles} "
                  "poll cycles")
        log.error("pushed configuration %d %s", version, reason)
        self._forget_current(reason)
        agent.config_version = self.state.version
        agent.config_refused = _refusal(self.state.refused)
        previous = self._previous_config()
        await agent.reconfigure(previous, config_hash=self.state.sha256[:12]
                                if self.state.sha256 else None)
        self.applied.set()

    def _forget_current(self, reason: str) -> None:
        """The current pushed configuration is dropped: the previous one becomes current."""
        current, previous = self.directory / "current.yaml", self.directory / "previous.yaml"
        self.state.refused = {"version": self.state.version or 0, "reason": reason}
        self.state.version, self.state.sha256 = \
            self.state.previous_version, self.state.previous_sha256
        self.state.previous_version = self.state.previous_sha256 = None
        self.state.probation = False
        if self.state.version is not None and previous.exists():
            os.replace(previous, current)
        else:
            current.unlink(missing_ok=True)
            self.state.version = self.state.sha256 = None
        self._save()

    def _previous_config(self) -> GatewayConfig:
        if self.state.version is None:
            return self.base
        try:
            return self._load(self.directory / "current.yaml")
        except (ConfigError, OSError) as exc:
            log.error("previous pushed configuration does not load either (%s): back to the "
                      "installed one", _first_line(exc))
            self.state.version = self.state.sha256 = None
            self._save()
            return self.base

    def _refuse(self, agent: Gateway, version: int, reason: str) -> None:
        log.error("pushed configuration %d refused: %s", version, reason)
        self.state.refused = {"version": version, "reason": reason[:500]}
        self._save()
        agent.config_refused = _refusal(self.state.refused)
        agent.publisher.publish_status()
        self.applied.set()

    def _save(self) -> None:
        self.state.save(self.directory / "state.json")


def _refusal(data: dict[str, Any] | None) -> ConfigRefusal | None:
    return ConfigRefusal(**data) if data else None


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
