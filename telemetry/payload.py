"""Telemetry and status payloads (JSON) and their codec.

A telemetry message is one device poll: the gateway's timestamp (ms, UTC), a per-gateway
sequence number (gaps show loss, repeats show redelivery) and the readings of that poll.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from telemetry.errors import PayloadError, first_error

SCHEMA_VERSION = 1
M = TypeVar("M", bound=BaseModel)
Ident = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
SensorId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
# 2000-01-01 .. 2100-01-01 in ms: anything outside is a broken clock or a unit mistake.
Millis = Annotated[int, Field(ge=946_684_800_000, lt=4_102_444_800_000)]
# The register data type a counter's value was read from (telemetry.datatypes.DataType's numeric
# members): an integer register of N bits wraps at 2^N, a float never does (docs/indicators.md).
NumberType = Literal["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32",
                     "float64"]


class Quality(StrEnum):
    GOOD = "good"
    UNCERTAIN = "uncertain"  # e.g. out of the sensor's declared range, clock not synchronised
    BAD = "bad"  # no value: timeout, Modbus exception, decode error


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reading(_Frozen):
    sensor: SensorId
    value: float | None = None  # absent or null only when quality is bad
    unit: str = Field(default="", max_length=32)
    quality: Quality = Quality.GOOD
    reason: str | None = Field(default=None, max_length=200)
    # Counters only, absent when unknown (older gateways, MQTT sensors without a declared type).
    type: NumberType | None = None

    @model_validator(mode="after")
    def _coherent(self) -> Reading:
        if self.value is None and self.quality is not Quality.BAD:
            raise ValueError("a reading without value must have quality 'bad'")
        if self.value is not None and not math.isfinite(self.value):
            raise ValueError("value must be finite")
        if self.quality is Quality.BAD and not self.reason:
            raise ValueError("a 'bad' reading needs a reason")
        return self


class Telemetry(_Frozen):
    v: Literal[1] = 1
    site: Ident
    gateway: Ident
    equipment: Ident
    device: Ident
    seq: int = Field(ge=0)
    ts: Millis
    clock_synced: bool = True
    readings: tuple[Reading, ...] = Field(min_length=1, max_length=1000)


class ConfigRefusal(_Frozen):
    """A configuration pushed from the centre that the gateway did not keep (docs/fleet.md):
    refused (bad signature, another gateway, not newer, invalid) or rolled back."""

    version: int = Field(ge=0)
    reason: str = Field(max_length=500)


class UpgradeReport(_Frozen):
    """The last remote upgrade of the gateway's software (docs/fleet.md, "Remote upgrade"):
    `installing` (downloading and installing beside the running release), `probation`
    (switched, not yet healthy), `done`, `rolled-back`, `refused` (bad signature, another
    target, tampered archive: nothing switched) or `failed` (could not install: nothing
    switched)."""

    version: str = Field(max_length=64)
    state: Literal["installing", "probation", "done", "rolled-back", "refused", "failed"]
    reason: str | None = Field(default=None, max_length=500)


class Status(_Frozen):
    v: Literal[1] = 1
    site: Ident
    gateway: Ident
    state: Literal["online", "offline"]
    ts: Millis | None = None  # absent in the last will, whose time the broker alone knows
    version: str | None = None
    config_hash: str | None = None
    buffer_depth: int | None = Field(default=None, ge=0)
    # Messages the gateway's full spool thinned or dropped since it was installed (never reset).
    buffer_thinned: int | None = Field(default=None, ge=0)
    buffer_dropped: int | None = Field(default=None, ge=0)
    clock_synced: bool | None = None
    # When the gateway last lost the broker (its clock), absent if never since it started: a
    # new value in a birth tells the central alerting that edge alerts may be handed over.
    uplink_lost_ts: Millis | None = None
    devices: dict[str, str] = Field(default_factory=dict, description="device id -> health")
    # The lowest seq the spool still holds (its next seq when empty): every lower number is
    # acknowledged end to end or was thinned/dropped, so the collector's watermark may pass it.
    buffer_floor: int | None = Field(default=None, ge=0)
    # Messages in the spool the broker refused (MQTT 5 reason code >= 0x80), by reason
    # ("0x87 Not authorized"): kept, retried, and shown here until delivered.
    buffer_refused: dict[str, int] | None = None
    # Numbers a power cut left unaccounted for (a write-behind spool, docs/gateway.md "SD-card
    # writes"): after the cut the gateway resumed its numbering above them and holds none of
    # them; each was either a reading lost with the cut or a number never used. [first, last],
    # the last such range, repeated in every status since.
    buffer_void: tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]] | None = None
    # When the client certificate the gateway connects with stops being valid (docs/pki.md):
    # the central alerting warns 30 days ahead.
    cert_expires_ts: Millis | None = None
    # The configuration pushed from the centre that runs (docs/fleet.md), absent while the
    # installed one does; and the last one refused or rolled back, with why.
    config_version: int | None = Field(default=None, ge=0)
    config_refused: ConfigRefusal | None = None
    upgrade: UpgradeReport | None = None

    @model_validator(mode="after")
    def _void_ordered(self) -> Status:
        if self.buffer_void is not None and self.buffer_void[0] > self.buffer_void[1]:
            raise ValueError("buffer_void: [first, last] with first <= last")
        return self


class Uplink(_Frozen):
    """The gateway's link to the central broker, as it tells its local broker (retained).

    `unknown`: the gateway process is gone (its last will on the local broker).
    """

    v: Literal[1] = 1
    site: Ident
    gateway: Ident
    state: Literal["up", "down", "unknown"]
    ts: Millis | None = None


class Ack(_Frozen):
    """The collector's end-to-end acknowledgement of one gateway's messages (retained).

    Every seq <= `upto` is stored in InfluxDB or no longer held by the gateway (its status's
    `buffer_floor`); each [first, last] of `stored` (above `upto`, at most a few hundred) is
    stored too. The gateway removes those from its spool, and nothing else.
    """

    v: Literal[1] = 1
    site: Ident
    gateway: Ident
    upto: int = Field(ge=-1)
    stored: tuple[tuple[int, int], ...] = Field(default=(), max_length=10_000)
    ts: Millis | None = None


def encode(message: Telemetry | Status | Uplink | Ack) -> bytes:
    """Serialise a message as compact JSON, leaving out unset optional fields."""
    return message.model_dump_json(exclude_none=True).encode()


def decode_telemetry(payload: bytes) -> Telemetry:
    """Parse and validate a telemetry payload; `PayloadError` says what is wrong."""
    return _decode(Telemetry, payload)


def decode_status(payload: bytes) -> Status:
    """Parse and validate a status payload; `PayloadError` says what is wrong."""
    return _decode(Status, payload)


def decode_ack(payload: bytes) -> Ack:
    """Parse and validate an end-to-end acknowledgement; `PayloadError` says what is wrong."""
    return _decode(Ack, payload)


def decode_uplink(payload: bytes) -> Uplink:
    """Parse and validate an uplink state; `PayloadError` says what is wrong."""
    return _decode(Uplink, payload)


def _decode(model: type[M], payload: bytes) -> M:
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        raise PayloadError(f"{first_error(exc)} ({exc.error_count()} error(s))") from None
