"""Emission factors: data files, validated on load, extendable by users.

The api ships `api/data/emission_factors.yaml` (shape: docs/indicators.md, "Emission factors
are data"): carriers (density, PCI, PCS/PCI of each fuel), defaults (carrier → part → ordered
factor ids, the first whose activity unit converts from the measured unit is used) and factors
(one per id and version, each with its part — combustion, upstream, generation or life_cycle —
its uncertainty and source). The user's own files (settings `factor_files`) are loaded after it:
they may add ids, add NEW versions of shipped ids and re-point defaults, never redefine a shipped
id + version (refused at start-up with file:line and reason).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from telemetry.errors import ConfigError, ConfigIssue
from telemetry.loader import YamlDocument
from telemetry.units import UnitError, parse_unit, same_dimension

DATA = Path(__file__).parents[1] / "data"
SHIPPED_FACTORS = DATA / "emission_factors.yaml"

_FACTOR_ID = r"^[a-z0-9][a-z0-9._-]{0,79}$"
_UNIT = re.compile(r"^kgCO2e/(.+)$")
_YEAR = re.compile(r"(19|20|21)\d\d")

Part = Literal["combustion", "upstream", "generation", "life_cycle"]


class UnknownFactor(LookupError):
    """No factor with that id is valid on that date (or no GWP for that refrigerant)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Carrier(_Strict):
    """What ties the per-litre, per-kg and per-kWh figures of one fuel."""

    density_kg_per_l: float | None = Field(default=None, gt=0)
    pci_kwh_per_kg: float | None = Field(default=None, gt=0)
    pcs_over_pci: float | None = Field(default=None, ge=1)
    moisture_pct: float | None = Field(default=None, ge=0, lt=100)
    source_ref: str | None = None
    source: str | None = None
    note: str | None = None


class EmissionFactor(_Strict):
    """kgCO2e per unit of activity, with where it comes from, when it applies and which part
    of the life cycle it covers."""

    id: str = Field(pattern=_FACTOR_ID)
    version: str = Field(min_length=1, max_length=40)
    value: float = Field(ge=0)
    unit: str = Field(description="kgCO2e/<activity unit>, e.g. kgCO2e/kWh")
    carrier: str | None = Field(default=None, description="fuel or energy; none for materials")
    part: Part = "life_cycle"
    material: str | None = Field(default=None, description="packaging material it applies to")
    # Kept for older user files; the scope of a line comes from api/data/ghg_categories.yaml.
    scope: Literal[1, 2, 3] | None = None
    basis: str | None = Field(default=None, description="PCI or PCS, per-kWh fuel factors")
    uncertainty_pct: float | None = Field(default=None, ge=0,
                                          description="the source's stated uncertainty")
    biogenic_co2_per_unit: float = Field(
        default=0.0, ge=0, description="kg biogenic CO2 per activity unit, outside the scopes")
    source: str = Field(min_length=3)
    source_ref: str | None = Field(default=None, description="anchor in docs/sources.md")
    note: str | None = None
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

    @property
    def year(self) -> int:
        """The year the figure describes: from its version ("2023", "v23.6 (2023)"), else the
        year it took effect."""
        found = _YEAR.search(self.version)
        return int(found.group(0)) if found else self.valid_from.year

    def valid_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)

    def measures(self, unit: str) -> bool:
        """True when an activity measured in `unit` converts to this factor's unit."""
        try:
            return same_dimension(unit, self.activity_unit)
        except UnitError:
            return False


class _FactorFile(_Strict):
    carriers: dict[str, Carrier] = Field(default_factory=dict)
    defaults: dict[str, dict[Part, list[str]]] = Field(default_factory=dict)
    factors: list[EmissionFactor] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AgeNote:
    """A factor used for a year later than the one it describes: said, in both languages."""

    factor_year: int
    period_year: int

    @property
    def fr(self) -> str:
        return f"facteur {self.factor_year} appliqué à {self.period_year}"

    @property
    def en(self) -> str:
        return f"{self.factor_year} factor applied to {self.period_year}"


def age_note(factor: EmissionFactor, *, on: date) -> AgeNote | None:
    """The note a line carries when its factor describes an earlier year than the period."""
    return AgeNote(factor.year, on.year) if on.year > factor.year else None


class FactorTable:
    """Every factor known, by id, with the defaults that say which factors an activity uses."""

    def __init__(self, *, factors: Sequence[EmissionFactor],
                 defaults: dict[str, dict[Part, list[str]]],
                 carriers: dict[str, Carrier] | None = None) -> None:
        self.factors = tuple(factors)
        self.defaults = {carrier: dict(parts) for carrier, parts in defaults.items()}
        self.carriers = dict(carriers or {})

    @classmethod
    def load(cls, *, user_files: Sequence[Path] = (),
             shipped: Path = SHIPPED_FACTORS) -> FactorTable:
        """The shipped factors, then each user file in order; every error listed at once."""
        by_key: dict[tuple[str, str], EmissionFactor] = {}
        defaults: dict[str, dict[Part, list[str]]] = {}
        carriers: dict[str, Carrier] = {}
        where: dict[tuple[str, str], tuple[Path, tuple[int | str, ...]]] = {}
        issues: list[ConfigIssue] = []
        for file in (shipped, *user_files):
            try:
                document = YamlDocument(file)
                loaded = document.validate(_FactorFile)
            except ConfigError as exc:
                issues.extend(exc.issues)
                continue
            for i, factor in enumerate(loaded.factors):
                key = (factor.id, factor.version)
                if key in by_key:
                    first, _ = where[key]
                    issues.append(document.issue(
                        ("factors", i), f"factor {factor.id!r} version {factor.version!r} is "
                        f"already defined in {first.name}: a correction is a new version "
                        "(another `version`, with its own validity), never a redefinition"))
                    continue
                by_key[key] = factor.model_copy(update={"origin": file.name})
                where[key] = (file, ("factors", i))
            for carrier, parts in loaded.defaults.items():
                defaults.setdefault(carrier, {}).update(parts)
                known = {fid for fid, _ in by_key}
                for part, ids in parts.items():
                    issues.extend(document.issue(("defaults", carrier, part),
                                                 f"unknown factor {fid!r}")
                                  for fid in ids if fid not in known)
            carriers.update(loaded.carriers)
        if issues:
            raise ConfigError(issues)
        return cls(factors=sorted(by_key.values(), key=lambda f: (f.id, f.valid_from)),
                   defaults=defaults, carriers=carriers)

    def versions(self, factor_id: str) -> list[EmissionFactor]:
        return [f for f in self.factors if f.id == factor_id]

    def get(self, factor_id: str, *, on: date) -> EmissionFactor:
        """The factor `factor_id` valid on `on`; among several, the latest to take effect."""
        valid = [f for f in self.factors if f.id == factor_id and f.valid_on(on)]
        if not valid:
            raise UnknownFactor(f"no emission factor {factor_id!r} valid on {on.isoformat()}")
        return max(valid, key=lambda f: (f.valid_from, f.version))

    def default_id(self, carrier: str, part: Part, *, unit: str) -> str:
        """The first default factor id of `carrier` and `part` whose activity unit converts
        from `unit` (a litre meter takes the per-litre factor before the per-kWh one)."""
        ids = self.defaults.get(carrier, {}).get(part)
        if not ids:
            raise UnknownFactor(f"no default {part} emission factor for {carrier!r}")
        for fid in ids:
            versions = self.versions(fid)
            if versions and versions[-1].measures(unit):
                return fid
        raise UnknownFactor(f"no default {part} emission factor for {carrier!r} in {unit} "
                            f"(defaults: {', '.join(ids)})")

    def parts(self, carrier: str) -> list[Part]:
        """The parts a carrier has defaults for, combustion/generation first."""
        order: list[Part] = ["combustion", "generation", "life_cycle", "upstream"]
        # An empty list says "no such part" (a user file may remove a shipped part so).
        known = self.defaults.get(carrier, {})
        return [p for p in order if known.get(p)]

    def for_activity(self, activity: str, *, on: date, unit: str = "kWh",
                     part: Part | None = None) -> EmissionFactor:
        """The default factor of a carrier (`electricity`, `fuel_oil`…) on a date: its first
        part (combustion or generation) unless `part` is named."""
        chosen = part or next(iter(self.parts(activity)), None)
        if chosen is None:
            raise UnknownFactor(f"no default emission factor for {activity!r}")
        return self.get(self.default_id(activity, chosen, unit=unit), on=on)
