"""Response models of the api (its public contract, shown in the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class Check(BaseModel):
    ok: bool
    detail: str


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    influxdb: Check
    broker: Check


class SensorOut(BaseModel):
    id: str
    role: str
    unit: str
    device: str


class EquipmentOut(BaseModel):
    site: str
    id: str
    kind: str
    name: str
    gateway: str
    sensors: list[SensorOut]


class ReadingOut(BaseModel):
    sensor: str
    role: str | None
    time: datetime
    value: float | None
    unit: str
    quality: str
    reason: str | None = None


class LatestOut(BaseModel):
    site: str
    equipment: str
    readings: list[ReadingOut]


class SensorEnergy(BaseModel):
    sensor: str
    role: str
    energy_kwh: float
    readings: int
    resets: int = Field(description="counter drops treated as resets or roll-overs")
    boundaries_interpolated: bool = Field(
        description="both ends of the period were interpolated between readings around them")
    largest_gap_s: float = Field(description="longest stretch without a reading in the period")


class EnergyOut(BaseModel):
    site: str
    equipment: str
    start: datetime
    end: datetime
    method: Literal["counter_difference"]
    energy_kwh: float | None = Field(description="energy consumed, from `consumption_role`")
    consumption_role: str | None
    by_role: dict[str, float]
    sensors: list[SensorEnergy]
    missing: list[str] = Field(description="counter sensors with no usable reading")
