"""Refrigerant GWP-100 per IPCC assessment report: pure gases cited, blends from composition.

The api ships `api/data/refrigerants.yaml` (each value cites its table in docs/sources.md); the
user's own files (settings `api_refrigerant_files`) may add reports, gases and blends but never
redefine a value already loaded (a report, a gas's GWP in a report, a blend): a figure an
auditor can check must not change silently. A redefinition is refused at start-up with the
file, line and reason, like a redefined factor version (`api.accounting.factors`).
A blend's GWP is the mass-weighted sum of its components' GWPs (the F-gas Regulation's method).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.accounting.factors import UnknownFactor
from telemetry.errors import ConfigError, ConfigIssue
from telemetry.loader import YamlDocument

SHIPPED_REFRIGERANTS = Path(__file__).parents[1] / "data" / "refrigerants.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Report(_Strict):
    source: str = Field(min_length=3)
    source_ref: str = Field(min_length=1)


class _Value(_Strict):
    value: float = Field(ge=0)
    source_ref: str = Field(min_length=1)
    note: str = ""


class _Blend(_Strict):
    composition: dict[str, float]
    source_ref: str = Field(min_length=1)

    @model_validator(mode="after")
    def _sums_to_100(self) -> _Blend:
        total = sum(self.composition.values())
        if abs(total - 100) > 0.01:
            raise ValueError(f"composition must sum to 100 mass-%, not {total:g}")
        return self


class _RefrigerantFile(_Strict):
    reports: dict[str, _Report] = Field(default_factory=dict)
    gases: dict[str, dict[str, _Value]] = Field(default_factory=dict)
    blends: dict[str, _Blend] = Field(default_factory=dict)


class GwpTable:
    """GWP-100 of refrigerants per named IPCC assessment report (AR4, AR5, AR6…)."""

    def __init__(self, *, reports: dict[str, _Report], gases: dict[str, dict[str, _Value]],
                 blends: dict[str, _Blend]) -> None:
        self._reports = reports
        self._gases = gases
        self._blends = blends

    @classmethod
    def load(cls, *, user_files: Sequence[Path] = ()) -> GwpTable:
        """The shipped table, then each user file; every error listed at once."""
        reports: dict[str, _Report] = {}
        gases: dict[str, dict[str, _Value]] = {}
        blends: dict[str, _Blend] = {}
        blend_file: dict[str, Path] = {}
        # Where each report, value and blend was first defined: a refusal names that file.
        origin: dict[tuple[str, ...], Path] = {}
        issues: list[ConfigIssue] = []
        for file in (SHIPPED_REFRIGERANTS, *user_files):
            try:
                document = YamlDocument(file)
                loaded = document.validate(_RefrigerantFile)
            except ConfigError as exc:
                issues.extend(exc.issues)
                continue

            def refused(loc: tuple[str, ...], what: str, first: Path,
                        document: YamlDocument = document) -> ConfigIssue:
                return document.issue(loc, f"redefines {what} already defined in "
                                           f"{first.name}: a figure an auditor checked never "
                                           "changes in place; a correction is a new name "
                                           "(gas, blend or assessment report)")

            for name, report in loaded.reports.items():
                if ("reports", name) in origin:
                    issues.append(refused(("reports", name), f"the assessment report {name}",
                                          origin[("reports", name)]))
                    continue
                reports[name] = report
                origin[("reports", name)] = file
            for gas, values in loaded.gases.items():
                known = gases.setdefault(gas, {})
                for report_name, value in values.items():
                    loc = ("gases", gas, report_name)
                    if loc in origin:
                        issues.append(refused(loc, f"the {report_name} GWP of {gas} "
                                                   f"({known[report_name].value:g})",
                                              origin[loc]))
                        continue
                    known[report_name] = value
                    origin[loc] = file
            for blend, definition in loaded.blends.items():
                if blend in blends or blend in gases:
                    first = origin.get(("blends", blend)) or next(
                        (path for loc, path in origin.items() if loc[:2] == ("gases", blend)),
                        file)
                    issues.append(refused(("blends", blend), f"the refrigerant {blend}", first))
                    continue
                blends[blend] = definition
                blend_file[blend] = file
                origin[("blends", blend)] = file
        for blend, definition in blends.items():
            issues.extend(ConfigIssue(str(blend_file[blend]), f"blends.{blend}.composition",
                                      f"unknown component {part!r}")
                          for part in definition.composition if part not in gases)
        if issues:
            raise ConfigError(issues)
        return cls(reports=reports, gases=gases, blends=blends)

    @property
    def reports(self) -> list[str]:
        """The assessment reports known, sorted."""
        return sorted(self._reports)

    def source(self, report: str) -> str:
        """The citation of an assessment report's table."""
        return self._report(report).source

    def refrigerants(self) -> list[str]:
        """Every pure gas and blend known, sorted."""
        return sorted({*self._gases, *self._blends})

    def table(self, report: str) -> dict[str, float]:
        """Every refrigerant with a GWP in `report`, sorted by name."""
        out: dict[str, float] = {}
        for name in self.refrigerants():
            try:
                out[name] = self.gwp(name, report=report)[0]
            except UnknownFactor:
                continue
        return out

    def gwp(self, refrigerant: str, *, report: str) -> tuple[float, str]:
        """(GWP-100, source) of a refrigerant in an assessment report."""
        source = self._report(report).source
        if refrigerant in self._blends:
            blend = self._blends[refrigerant]
            value = sum(share / 100 * self._pure(part, report).value
                        for part, share in blend.composition.items())
            parts = " + ".join(f"{share:g} % {part}" for part, share in blend.composition.items())
            return value, f"{source}; {refrigerant} = {parts} by mass (docs/sources.md)"
        pure = self._pure(refrigerant, report)
        note = f"; {pure.note}" if pure.note else ""
        return pure.value, f"{source}{note}"

    def _report(self, report: str) -> _Report:
        if report not in self._reports:
            raise UnknownFactor(f"no GWP assessment report {report!r}; "
                                f"known: {', '.join(self.reports)}")
        return self._reports[report]

    def _pure(self, gas: str, report: str) -> _Value:
        values = self._gases.get(gas)
        if values is None:
            raise UnknownFactor(f"no {report} GWP for refrigerant {gas!r}")
        if report not in values:
            raise UnknownFactor(f"no {report} GWP for refrigerant {gas!r}")
        return values[report]
