"""The avoided-emission baselines shipped with the api (`api/data/baselines.yaml`), each with
its source and year, marked `historical` or `current`.

A shipped baseline has the fields of a stored one (the `baselines` table, written through the
api), so the same code computes avoided emissions against either; a stored baseline of the
same name takes precedence (a site's own documented scenario). Showing the avoided figure under
both the historical and the current baseline makes its sensitivity to the baseline visible.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from telemetry.loader import load_yaml_model

SHIPPED_BASELINES = Path(__file__).parents[1] / "data" / "baselines.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ShippedBaseline(_Strict):
    """A documented reference scenario: activity per unit of output × an emission factor."""

    name: str = Field(alias="id", pattern=r"^[a-z0-9][a-z0-9._-]{0,79}$")
    status: Literal["historical", "current"]
    equipment_kind: str
    output: str = Field(description="t_water_evaporated, t_dry_matter, kg_frozen, units_packed")
    activity_per_output: float = Field(gt=0)
    activity_unit: str
    factor_id: str
    description: str = Field(min_length=3)
    source: str = Field(min_length=3, description="publisher, document, year")
    source_ref: str = Field(description="anchor of the entry in docs/sources.md")
    year: int | None = Field(ge=1900, le=2200,
                             description="the year the scenario describes (None: not known)")
    note: str | None = None


class _BaselineFile(_Strict):
    baselines: list[ShippedBaseline]


@cache
def shipped_baselines(file: Path = SHIPPED_BASELINES) -> tuple[ShippedBaseline, ...]:
    """Every shipped baseline, historical first (none when the file is absent)."""
    if not file.is_file():
        return ()
    loaded = load_yaml_model(file, _BaselineFile)
    return tuple(sorted(loaded.baselines, key=lambda b: (b.status != "historical", b.name)))


def shipped_baseline(name: str) -> ShippedBaseline | None:
    """The shipped baseline called `name`, if any."""
    return next((b for b in shipped_baselines() if b.name == name), None)
