"""Emission factors and refrigerant GWPs: data files, validated on load, supersedable by users.

The api ships `api/data/emission_factors.yaml` and `api/data/refrigerants.yaml`; the user's own
files (settings `factor_files`) are loaded after them. A user entry with the same id and version
as a shipped one replaces it; a new version of an id is chosen at the dates it is valid.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from telemetry.errors import ConfigError, ConfigIssue
from telemetry.loader import load_yaml_model
from telemetry.units import UnitError, parse_unit

DATA = Path(__file__).parents[1] / "data"
SHIPPED_FACTORS = DATA / "emission_factors.yaml"
SHIPPED_REFRIGERANTS = DATA / "refrigerants.yaml"

_FACTOR_ID = r"^[a-z0-9][a-z0-9._-]{0,79}$"
_UNIT = re.compile(r"^kgCO2e/(.+)$")


class UnknownFactor(LookupError):
    """No factor with that id is valid on that date (or no GWP for that refrigerant)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmissionFactor(_Strict):
    """kgCO2e per unit of activity, with where it comes from and when it applies."""

    id: str = Field(pattern=_FACTOR_ID)
    version: str = Field(min_length=1, max_length=40)
    value: float = Field(ge=0)
    unit: str = Field(description="kgCO2e/<activity unit>, e.g. kgCO2e/kWh")
    scope: Literal[1, 2, 3] | None = None
    basis: str | None = Field(default=None, description="e.g. PCI or PCS for fuels")
    source: str = Field(min_length=3)
    valid_from: date
    valid_to: date | None = None
    origin: str = Field(default="", description="file the factor was loaded from")

    @field_validator("unit")
    @classmethod
    def _unit(cls, unit: str) -> str:
        match = _UNIT.match(unit)
        if not match:
            raise ValueError("must read kgCO2e/<activity unit>, e.g. kgCO2e/kWh")
        try:
            parse_unit(match.group(1))
        except UnitError as exc:
            raise ValueError(f"activity unit: {exc}") from None
        return unit

    @model_validator(mode="after")
    def _period(self) -> EmissionFactor:
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        return self

    @property
    def activity_unit(self) -> str:
        match = _UNIT.match(self.unit)
        assert match is not None  # checked on load
        return match.group(1)

    def valid_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)


class _FactorFile(_Strict):
    defaults: dict[str, str] = Field(default_factory=dict)
    factors: list[EmissionFactor] = Field(default_factory=list)


class _GwpReport(_Strict):
    source: str = Field(min_length=3)
    gwp: dict[str, float]


class _RefrigerantFile(_Strict):
    reports: dict[str, _GwpReport]


class FactorTable:
    """Every factor known, by id, with the defaults that say which factor an activity uses."""

    def __init__(self, *, factors: Sequence[EmissionFactor], defaults: dict[str, str]) -> None:
        self.factors = tuple(factors)
        self.defaults = dict(defaults)

    @classmethod
    def load(cls, *, user_files: Sequence[Path] = ()) -> FactorTable:
        """The shipped factors, then each user file in order; every error listed at once."""
        by_key: dict[tuple[str, str], EmissionFactor] = {}
        defaults: dict[str, str] = {}
        defined_in: dict[str, Path] = {}
        issues: list[ConfigIssue] = []
        for file in (SHIPPED_FACTORS, *user_files):
            try:
                loaded = load_yaml_model(file, _FactorFile)
            except ConfigError as exc:
                issues.extend(exc.issues)
                continue
            for factor in loaded.factors:
                by_key[(factor.id, factor.version)] = factor.model_copy(
                    update={"origin": file.name})
            defaults.update(loaded.defaults)
            defined_in.update(dict.fromkeys(loaded.defaults, file))
        known = {fid for fid, _ in by_key}
        issues.extend(ConfigIssue(str(defined_in[activity]), f"defaults.{activity}",
                                  f"unknown factor {fid!r}")
                      for activity, fid in defaults.items() if fid not in known)
        if issues:
            raise ConfigError(issues)
        return cls(factors=sorted(by_key.values(), key=lambda f: (f.id, f.valid_from)),
                   defaults=defaults)

    def get(self, factor_id: str, *, on: date) -> EmissionFactor:
        """The factor `factor_id` valid on `on`; among several, the latest to take effect."""
        valid = [f for f in self.factors if f.id == factor_id and f.valid_on(on)]
        if not valid:
            raise UnknownFactor(f"no emission factor {factor_id!r} valid on {on.isoformat()}")
        return max(valid, key=lambda f: (f.valid_from, f.version))

    def for_activity(self, activity: str, *, on: date) -> EmissionFactor:
        """The default factor of an activity (`electricity`, `fuel_energy`…) on a date."""
        factor_id = self.defaults.get(activity)
        if factor_id is None:
            raise UnknownFactor(f"no default emission factor for {activity!r}")
        return self.get(factor_id, on=on)


class GwpTable:
    """Refrigerant GWP-100 per named IPCC assessment report."""

    def __init__(self, reports: dict[str, tuple[str, dict[str, float]]]) -> None:
        self.reports = reports

    @classmethod
    def load(cls, *, user_files: Sequence[Path] = ()) -> GwpTable:
        reports: dict[str, tuple[str, dict[str, float]]] = {}
        issues: list[ConfigIssue] = []
        for file in (SHIPPED_REFRIGERANTS, *user_files):
            try:
                loaded = load_yaml_model(file, _RefrigerantFile)
            except ConfigError as exc:
                issues.extend(exc.issues)
                continue
            for name, report in loaded.reports.items():
                _, known = reports.get(name, ("", {}))
                reports[name] = (report.source, {**known, **report.gwp})
        if issues:
            raise ConfigError(issues)
        return cls(reports)

    def gwp(self, refrigerant: str, *, report: str) -> tuple[float, str]:
        """(GWP-100, source) of a refrigerant in an assessment report."""
        if report not in self.reports:
            raise UnknownFactor(f"no GWP assessment report {report!r}; "
                                f"known: {', '.join(sorted(self.reports))}")
        source, table = self.reports[report]
        if refrigerant not in table:
            raise UnknownFactor(f"no {report} GWP for refrigerant {refrigerant!r}")
        return table[refrigerant], source
