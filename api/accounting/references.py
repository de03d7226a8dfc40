"""Process references the equipment indicators compare against (`api/data/references.yaml`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from telemetry.loader import load_yaml_model
from telemetry.units import convert

REFERENCES = Path(__file__).parents[1] / "data" / "references.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reference(_Strict):
    value: float
    unit: str
    source: str = Field(min_length=3)

    def to(self, unit: str) -> float:
        return convert(self.value, from_unit=self.unit, to_unit=unit)


class Band(_Strict):
    """A range a gauge should stay within, bounds included."""

    min: float
    max: float
    unit: str
    source: str = Field(min_length=3)


class References(_Strict):
    latent_heat_of_water: Reference
    frozen_core_temperature: Reference
    frozen_store_band: Band

    def bands(self) -> dict[str, tuple[float, float]]:
        """(low, high) in °C of each role kept within a band: what the hourly rollups record
        time below, within and above, and what the indicators read back."""
        band = self.frozen_store_band
        low, high = (convert(v, from_unit=band.unit, to_unit="degC") for v in (band.min, band.max))
        return {"cabinet_air_temp": (low, high)}

    @classmethod
    def load(cls, file: Path = REFERENCES) -> References:
        return load_yaml_model(file, cls)


def band_label(low: float, high: float) -> str:
    """The `band` tag of `band_hourly` points: the bounds in °C, e.g. `-30..-18`."""
    return f"{low:g}..{high:g}"
