"""Process references the equipment indicators compare against (`api/data/references.yaml`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from telemetry.loader import load_yaml_model
from telemetry.units import convert

REFERENCES = Path(__file__).parent / "data" / "references.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reference(_Strict):
    value: float
    unit: str
    source: str = Field(min_length=3)

    def to(self, unit: str) -> float:
        return convert(self.value, from_unit=self.unit, to_unit=unit)


class Band(_Strict):
    min: float
    max: float
    unit: str
    source: str = Field(min_length=3)


class References(_Strict):
    latent_heat_of_water: Reference
    frozen_core_temperature: Reference
    frozen_store_band: Band

    @classmethod
    def load(cls, file: Path = REFERENCES) -> References:
        return load_yaml_model(file, cls)
