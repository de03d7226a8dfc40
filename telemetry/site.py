"""Gateway configuration: a site, its equipment, its devices and the sensors they feed."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from telemetry.shifts import ShiftCalendar
from telemetry.template import DeviceTemplate, MqttField, RegisterPoint, UnitSymbol

Ident = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
SensorId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EquipmentKind(StrEnum):
    DRYER = "dryer"
    FREEZER = "freezer"
    PACKAGING = "packaging"
    OTHER = "other"


class RefrigerantCharge(_Strict):
    """The refrigerant a system holds: the F-gas Regulation states a charge in tCO2e."""

    fluid: str = Field(min_length=1, max_length=20, description="e.g. R290, R452A")
    charge_kg: float = Field(gt=0, description="the system's nameplate charge")


class Equipment(_Strict):
    id: Ident
    kind: EquipmentKind
    name: str = ""
    refrigerant: RefrigerantCharge | None = None
    # A line's planned production time (OEE availability); an admin may override it in the api.
    calendar: ShiftCalendar | None = None


class TcpConnection(_Strict):
    type: Literal["tcp", "rtu_over_tcp"] = "tcp"
    host: str
    port: int = Field(default=502, ge=1, le=65535)


class SerialConnection(_Strict):
    type: Literal["rtu"] = "rtu"
    port: str = Field(min_length=1, description="serial device, e.g. /dev/ttyUSB0")
    baudrate: int = Field(default=9600, gt=0)
    parity: Literal["N", "E", "O"] = "N"
    bytesize: Literal[7, 8] = 8
    stopbits: Literal[1, 2] = 1


class Sensor(_Strict):
    """A device point given a project-wide meaning: sensor id, role, optional valid range."""

    id: SensorId
    point: str = Field(description="key of the point in the device's template")
    role: str = Field(description="one of telemetry.roles.ROLES")
    # Site-specific conversion after the template's, e.g. the span of a 4-20 mA transmitter
    # wired to an analog input: value = template value x scale + offset, in `unit`.
    scale: float = 1.0
    offset: float = 0.0
    unit: UnitSymbol | None = None
    valid_min: float | None = None
    valid_max: float | None = None
    # Where the sensor is, in words an operator finds it by ("travée 2, rang haut"): a probe
    # in a stack of bales is told apart from its neighbours by its place, not by its id.
    location: str = Field(default="", max_length=80)
    attributes: dict[str, str] = Field(default_factory=dict)


class Device(_Strict):
    id: Ident
    template: str
    equipment: Ident
    connection: TcpConnection | SerialConnection | None = Field(
        default=None, discriminator="type"
    )
    unit_id: int = Field(default=1, ge=0, le=247)
    name: str = Field(default="", description="instance name, fills `{name}` in MQTT topics")
    poll_interval_s: float = Field(default=10.0, gt=0, le=86400)
    timeout_s: float = Field(default=2.0, gt=0, le=60)
    retries: int = Field(default=1, ge=0, le=10)
    # Serial RS-485 converters and slow controllers need breathing room: a silence after the
    # connection opens and between two requests (many slaves miss a request sent too soon).
    pause_after_connect_s: float = Field(default=0.0, ge=0, le=10)
    pause_between_requests_s: float = Field(default=0.0, ge=0, le=10)
    # After a failed poll, reconnection attempts back off exponentially up to this delay.
    backoff_max_s: float = Field(default=60.0, ge=0, le=3600)
    max_gap: int = Field(default=10, ge=0, le=124,
                         description="unused registers a coalesced read may span")
    max_registers: int = Field(default=125, ge=1, le=125,
                               description="largest read, for devices that refuse 125")
    sensors: tuple[Sensor, ...] = Field(min_length=1)


class TlsFiles(_Strict):
    """TLS to the broker (docs/pki.md). `ca`: the CA that signed the broker's certificate
    (absent: the system's trusted CAs); `cert` and `key`: this client's certificate and key,
    for a listener with `require_certificate` (the certificate's CN is then the user name).
    Relative paths are relative to the configuration file."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    @model_validator(mode="after")
    def _pair(self) -> TlsFiles:
        if (self.cert is None) != (self.key is None):
            raise ValueError("`cert` and `key` go together")
        return self


class Broker(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    # `tls: true` (server certificate checked against the system's CAs), or a `TlsFiles` block.
    tls: TlsFiles | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)

    @model_validator(mode="before")
    @classmethod
    def _tls_forms(cls, data: object) -> object:
        """Earlier configurations said `tls: true` and `ca_file: …`: both still read."""
        if not isinstance(data, dict) or ("tls" not in data and "ca_file" not in data):
            return data
        data = dict(data)
        tls, ca_file = data.pop("tls", None), data.pop("ca_file", None)
        if tls is True:  # `ca_file` alone never turned TLS on, and still does not
            tls = {}
        if isinstance(tls, dict) and ca_file is not None:
            tls = {"ca": ca_file, **tls}
        data["tls"] = None if tls is False else tls
        return data


class SpoolOptions(_Strict):
    """The on-disk store-and-forward buffer (docs/gateway.md)."""

    max_messages: int = Field(default=500_000, ge=100,
                              description="bound; beyond it the oldest messages are thinned")
    # Thinning steps, in seconds: first keep one message per device per minute among the
    # oldest, then one per 10 minutes, then per hour; only then drop the oldest whole.
    thin_steps_s: tuple[int, ...] = (60, 600, 3600)
    # FULL: a message is on the card before it is published, even across a power cut.
    # NORMAL: fewer flushes, but a power cut may lose the last second of messages.
    synchronous: Literal["full", "normal"] = "full"
    in_flight: int = Field(default=100, ge=1, le=1000,
                           description="messages handed to MQTT and not yet acknowledged")
    # Write-behind (docs/gateway.md "SD-card writes"): 0 commits every poll cycle to the card
    # (synced, per `synchronous`); N > 0 commits to a file in `ram_dir` (a tmpfs such as
    # systemd's RuntimeDirectory, which outlives the process but not a power cut) and moves to
    # the card only what the collector has not acknowledged within N/2 to N seconds. A crash of
    # the process loses nothing; a power cut loses at most the last N seconds of readings not
    # yet stored centrally, and the gateway says which numbers it can no longer account for.
    write_behind_s: float = Field(default=0, ge=0, le=3600)
    ram_dir: str = "/run/dynamo-gateway"

    @field_validator("write_behind_s")
    @classmethod
    def _write_behind_bound(cls, value: float) -> float:
        # Below ~10 s the collector's acknowledgement (sent every second or so) would not
        # arrive before a message is moved to the card: write-behind would save nothing.
        if 0 < value < 10:
            raise ValueError("0 (off) or at least 10 seconds")
        return value
    # end-to-end: a message leaves the spool once the collector says it is stored in InfluxDB
    # (its retained ack); broker: on the broker's PUBACK, for collectors sharing the load
    # ($share), which publish no ack; a broker crash may then lose what it had not saved.
    acknowledgement: Literal["end-to-end", "broker"] = "end-to-end"
    refused_retry_s: float = Field(default=30.0, gt=0,
                                   description="resend messages the broker refused after this")
    resend_after_s: float = Field(
        default=30.0, gt=0, description="resend what the broker accepted and the collector "
        "never stored (e.g. published before its session existed), once later ones were")


class FleetOptions(_Strict):
    """Configuration pushed from the centre, signed (docs/fleet.md). `public_key`: the centre's
    Ed25519 public key (PEM), relative to the configuration file; `rollback_cycles`: a pushed
    configuration that has not read a value from any device within this many poll cycles is
    rolled back to the previous one."""

    public_key: str = "/etc/dynamo/fleet.pub"
    rollback_cycles: int = Field(default=3, ge=1, le=100)


class GatewayConfig(_Strict):
    """What one gateway runs. Templates are resolved by the loader into `templates`."""

    site: Ident
    gateway: Ident
    timezone: str = "Europe/Paris"
    broker: Broker = Broker()
    equipment: tuple[Equipment, ...] = Field(min_length=1)
    devices: tuple[Device, ...] = Field(min_length=1)
    templates: dict[str, DeviceTemplate] = Field(default_factory=dict, exclude=True)
    spool_dir: str = "/var/lib/dynamo-gateway"
    spool: SpoolOptions = SpoolOptions()
    # The broker local sensors (Zigbee2MQTT, Shelly, Tasmota) publish to; None: no MQTT devices.
    local_broker: Broker | None = None
    # Also publish every poll and the uplink state (up/down) to `local_broker`, for the edge
    # alerting process beside the gateway (`dynamo alerts edge`, docs/alerting.md).
    mirror_to_local: bool = False
    status_interval_s: float = Field(default=60.0, ge=1, le=3600)
    # Accept configurations pushed from the centre (docs/fleet.md); None: only the local file.
    fleet: FleetOptions | None = None

    @model_validator(mode="after")
    def _unique_ids(self) -> GatewayConfig:
        for what, ids in (
            ("equipment", [e.id for e in self.equipment]),
            ("device", [d.id for d in self.devices]),
            ("sensor", [s.id for d in self.devices for s in d.sensors]),
        ):
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            if duplicates:
                raise ValueError(f"duplicate {what} ids: {', '.join(duplicates)}")
        if self.mirror_to_local and self.local_broker is None:
            raise ValueError("`mirror_to_local` needs a `local_broker`")
        return self

    def equipment_by_id(self, equipment_id: str) -> Equipment:
        return next(e for e in self.equipment if e.id == equipment_id)

    def point_of(self, device: Device, sensor: Sensor) -> RegisterPoint | MqttField:
        point = self.templates[device.template].point(sensor.point)
        if point is None:  # the loader has checked this; reaching here is a programming error
            raise KeyError(f"{device.template} has no point {sensor.point}")
        return point
