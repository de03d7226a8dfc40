"""The shared package's typed errors."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One thing wrong in a configuration file: where, and why."""

    file: str
    path: str  # e.g. devices[1].sensors[0].role
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path or '<root>'}: {self.message}"


class ConfigError(Exception):
    """A configuration was refused; `issues` lists every problem found, not only the first."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


class PayloadError(ValueError):
    """A message that does not follow the telemetry contract; `reason` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def first_error(exc: ValidationError) -> str:
    """The first thing pydantic refused, as `where: why` (the payload's own path)."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "payload"
    return f"{where}: {first['msg']}"
