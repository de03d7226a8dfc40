"""Admission: what the site configurations declare, checked on every message (defence in depth).

The broker's ACL confines a gateway to `dynamo/v1/{site}/{gateway}/#`, but the collector does
not take that on trust: a broker misconfigured, an ACL not regenerated, a gateway whose
configuration drifted from the server's copy would otherwise write junk series for good. A
message is admitted only when the configurations declare together its site and gateway, its
equipment (of that gateway), its device (of that equipment) and each reading's sensor (of
that device), in the sensor's configured unit, at a time not beyond `max_future_s` ahead of
the collector's clock. Anything else is a dead letter with its reason (`Refused.kind`):

- `undeclared`: site, gateway, equipment, device or sensor not declared together;
- `unit`: a reading's unit is not the sensor's and cannot be converted to it. One that can
  (e.g. a gateway sending kW for a sensor configured in W) is converted and counted
  (`units_converted`): the value is right, only its expression differed, and converting keeps
  the data where a dead letter would hold it until someone replays it;
- `future`: a timestamp more than `max_future_s` ahead (docs/collector.md says why 5 minutes).

The fast path (collector.fastpath) only ever learns series from admitted messages, so a
message it accepts whole is admitted too: it costs one timestamp comparison per message. A
new configuration gives the fast path a fresh start (collector.service).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from telemetry.acl import find_configs, load_gateways
from telemetry.errors import ConfigError, ConfigIssue, PayloadError
from telemetry.loader import load_gateway_config
from telemetry.payload import Reading, Status, Telemetry
from telemetry.site import GatewayConfig
from telemetry.units import UnitError, convert, same_dimension

log = logging.getLogger(__name__)

DEFAULT_MAX_FUTURE_S = 300.0
# Kinds of refusal, also the dead letters' reasons (collector metrics, `dead-letters purge`).
UNDECLARED, UNIT, FUTURE = "undeclared", "unit", "future"

# (site, gateway) -> equipment -> device -> sensor -> configured unit
_Declared = dict[tuple[str, str], dict[str, dict[str, dict[str, str]]]]


class Refused(PayloadError):
    """A well-formed message the configurations do not admit; `kind` is the short reason."""

    def __init__(self, kind: str, reason: str) -> None:
        self.kind = kind
        super().__init__(f"{kind}: {reason}")


class Admission:
    """The declared sources of messages, and the clock-skew bound. Immutable once built."""

    def __init__(self, configs: list[GatewayConfig], *,
                 max_future_s: float = DEFAULT_MAX_FUTURE_S) -> None:
        if max_future_s < 0:
            raise ValueError("max_future_s must be >= 0")
        self.max_future_ms = int(max_future_s * 1000)
        self._declared: _Declared = {}
        for config in configs:
            equipment = self._declared.setdefault((config.site, config.gateway), {})
            for device in config.devices:
                sensors = equipment.setdefault(device.equipment, {}).setdefault(device.id, {})
                for sensor in device.sensors:
                    unit = sensor.unit if sensor.unit is not None \
                        else config.point_of(device, sensor).unit
                    sensors[sensor.id] = unit

    @property
    def sources(self) -> list[tuple[str, str]]:
        """Every declared (site, gateway), sorted."""
        return sorted(self._declared)

    def check_time(self, ts: int | None, *, now_ms: int) -> None:
        """Refuse a timestamp beyond the clock-skew bound into the future."""
        if ts is not None and ts - now_ms > self.max_future_ms:
            ahead = (ts - now_ms) / 1000
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts / 1000))
            raise Refused(FUTURE, f"timestamp {when} is {ahead:.0f} s ahead of the collector's "
                                  f"clock (bound {self.max_future_ms / 1000:g} s)")

    def check_status(self, status: Status, *, now_ms: int) -> None:
        """A gateway's status: its (site, gateway) declared, its time not in the future."""
        if (status.site, status.gateway) not in self._declared:
            raise Refused(UNDECLARED, _unknown_source(status.site, status.gateway))
        self.check_time(status.ts, now_ms=now_ms)

    def admit(self, message: Telemetry, *, now_ms: int) -> tuple[Telemetry, int]:
        """The message as it is stored (readings converted to their sensors' units) and how
        many readings were converted; `Refused` says why not."""
        equipment = self._declared.get((message.site, message.gateway))
        if equipment is None:
            raise Refused(UNDECLARED, _unknown_source(message.site, message.gateway))
        devices = equipment.get(message.equipment)
        if devices is None:
            raise Refused(UNDECLARED, f"equipment {message.equipment!r} is not declared for "
                                      f"gateway {message.gateway!r} of site {message.site!r}")
        sensors = devices.get(message.device)
        if sensors is None:
            raise Refused(UNDECLARED, f"device {message.device!r} is not declared on equipment "
                                      f"{message.equipment!r} of gateway {message.gateway!r}")
        self.check_time(message.ts, now_ms=now_ms)
        readings: list[Reading] = []
        converted = 0
        for reading in message.readings:
            unit = sensors.get(reading.sensor)
            if unit is None:
                raise Refused(UNDECLARED, f"sensor {reading.sensor!r} is not declared on device "
                                          f"{message.device!r} of equipment {message.equipment!r}")
            if reading.unit != unit:
                reading = _converted(reading, unit)
                converted += 1
            readings.append(reading)
        if not converted:
            return message, 0
        return message.model_copy(update={"readings": tuple(readings)}), converted


def _unknown_source(site: str, gateway: str) -> str:
    return (f"gateway {gateway!r} of site {site!r} is in no site configuration the collector "
            "loaded")


def _converted(reading: Reading, unit: str) -> Reading:
    """The reading in `unit`, or `Refused(UNIT)` when its own unit cannot be converted."""
    try:
        convertible = same_dimension(reading.unit, unit)
    except UnitError:
        convertible = False
    if not convertible:
        raise Refused(UNIT, f"sensor {reading.sensor!r} is configured in {unit!r}; the reading "
                            f"is in {reading.unit!r}, which cannot be converted to it")
    value = None if reading.value is None \
        else convert(reading.value, from_unit=reading.unit, to_unit=unit)
    return reading.model_copy(update={"value": value, "unit": unit})


def load_admission(directory: Path, *,
                   max_future_s: float = DEFAULT_MAX_FUTURE_S) -> Admission:
    """The admission of every gateway configuration below `directory`; `ConfigError` lists
    every problem with file:line (the ACL's checks included: a gateway id twice, a reserved
    id), so a configuration the broker could not have is refused here too."""
    load_gateways(directory)
    configs: list[GatewayConfig] = []
    issues: list[ConfigIssue] = []
    for file in find_configs(directory):
        try:
            configs.append(load_gateway_config(file))
        except ConfigError as exc:
            issues.extend(exc.issues)
    if issues:
        raise ConfigError(issues)
    return Admission(configs, max_future_s=max_future_s)


class SiteConfigs:
    """The configurations below a folder, reloaded on demand (SIGHUP) or when a file changes.

    A configuration that fails to load is refused with every issue logged (file:line, why)
    and the previous one stays in force: a typo saved in an editor must not stop collection
    or let everything through.
    """

    def __init__(self, directory: Path, *, on_change: Callable[[Admission], None],
                 max_future_s: float = DEFAULT_MAX_FUTURE_S) -> None:
        self.directory = directory
        self._max_future_s = max_future_s
        self._on_change = on_change
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self.reloads = 0  # successful reloads since start
        self.failed_reloads = 0
        self.last_error: str | None = None
        self._fingerprint = _fingerprint(directory)
        self.admission = load_admission(directory, max_future_s=max_future_s)  # may raise
        on_change(self.admission)

    def reload(self) -> bool:
        """Load the configurations again; True when the new ones are now in force."""
        with self._lock:
            self._fingerprint = _fingerprint(self.directory)
            try:
                admission = load_admission(self.directory, max_future_s=self._max_future_s)
            except ConfigError as exc:
                self.failed_reloads += 1
                self.last_error = str(exc)
                log.error("site configurations refused, the previous ones stay in force:\n%s",
                          exc, extra={"reason": "config_refused"})
                return False
            self.admission = admission
            self.reloads += 1
            self.last_error = None
            self._on_change(admission)
        log.info("site configurations reloaded: %d gateway(s)", len(admission.sources))
        return True

    def reload_if_changed(self) -> bool | None:
        """Reload when a file was added, removed or modified; None when nothing changed."""
        if _fingerprint(self.directory) == self._fingerprint:
            return None
        return self.reload()

    def watch(self, interval_s: float) -> Callable[[], None]:
        """From a daemon thread, reload when `request_reload` asks (SIGHUP) or a file changed
        (checked every `interval_s`); returns the function that stops it."""
        stop = threading.Event()

        def loop() -> None:
            while True:
                asked = self._wake.wait(interval_s)
                self._wake.clear()
                if stop.is_set():
                    return
                try:
                    self.reload() if asked else self.reload_if_changed()
                except OSError as exc:  # the folder itself vanished: keep what we have
                    log.error("cannot read the site configurations: %s", exc)

        def stop_watching() -> None:
            stop.set()
            self._wake.set()

        threading.Thread(target=loop, name="site-config-watch", daemon=True).start()
        return stop_watching

    def request_reload(self) -> None:
        """Ask the watcher to reload now (safe from a signal handler)."""
        self._wake.set()


def _fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """Each configuration file's name, modification time and size."""
    out = []
    for file in sorted(directory.rglob("*.yaml")):
        try:
            info = file.stat()
        except FileNotFoundError:  # removed while we looked: the next look sees it gone
            continue
        out.append((str(file), info.st_mtime_ns, info.st_size))
    return tuple(out)

