"""Where each kind of emission line goes: GHG Protocol scope and category, ISO 14064-1:2018
category, ADEME BEGES (v5) poste.

The table is data (`api/data/ghg_categories.yaml`, each row cited in docs/sources.md); the
computation only names a line's key (`fuel_combustion`, `energy_upstream`, …).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from telemetry.errors import ConfigError, ConfigIssue
from telemetry.loader import load_yaml_model

SHIPPED_CATEGORIES = Path(__file__).parents[1] / "data" / "ghg_categories.yaml"

LineKey = Literal["fuel_combustion", "refrigerant_leak", "electricity_location",
                  "electricity_market", "energy_upstream", "purchased_materials",
                  "biogenic_co2"]


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GhgProtocol(_Row):
    scope: Literal[1, 2, 3] | None = Field(default=None, description="none: outside the scopes")
    category: int | None = Field(default=None, ge=1, le=15, description="scope 3 category")


class IsoCategory(_Row):
    category: int | None = Field(default=None, ge=1, le=6)
    name_fr: str = ""
    name_en: str = ""


class BegesPoste(_Row):
    poste: str | None = None
    name_fr: str = ""
    name_en: str = ""


class Category(_Row):
    """One kind of emission line and where each framework puts it."""

    key: str
    ghg_protocol: GhgProtocol
    iso14064: IsoCategory
    beges: BegesPoste = BegesPoste()
    source_ref: str | None = None
    source: str | None = None
    note: str | None = None


class _CategoryFile(_Row):
    lines: list[Category]


class Categories:
    """The category table, by line key."""

    def __init__(self, rows: list[Category]) -> None:
        self.rows = {row.key: row for row in rows}

    @classmethod
    def load(cls, file: Path = SHIPPED_CATEGORIES) -> Categories:
        """The shipped table; a missing key the computation needs is an error at start-up."""
        table = cls(load_yaml_model(file, _CategoryFile).lines)
        missing = [k for k in get_args(LineKey) if k not in table.rows]
        if missing:
            raise ConfigError([ConfigIssue(str(file), "lines", f"no row for line key {k!r}")
                               for k in missing])
        return table

    def of(self, key: str) -> Category:
        return self.rows[key]


@functools.cache
def shipped_categories() -> Categories:
    """The shipped table, read once per process."""
    return Categories.load()
