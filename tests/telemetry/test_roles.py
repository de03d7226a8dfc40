"""Roles are consistent with the units registry and documented."""

from __future__ import annotations

from pathlib import Path

from telemetry.roles import ROLES
from telemetry.units import parse_unit

DOC = Path(__file__).resolve().parents[2] / "docs" / "roles.md"


def test_every_reference_unit_parses() -> None:
    for role in ROLES.values():
        parse_unit(role.reference_unit)


def test_every_role_is_documented() -> None:
    text = DOC.read_text()
    missing = [name for name in ROLES if f"`{name}`" not in text]
    assert not missing
