"""A simulator's cumulative meters can start where a recorded history ended (the demo's week)."""

from __future__ import annotations

import pytest

from simulators.runner import MODELS, site_config_path
from telemetry.loader import load_gateway_config
from telemetry.roles import ROLES, Kind


def _meter_names(machine: str, model: object) -> set[str]:
    """The variables the site's counter sensors read (as the demo continues them)."""
    config = load_gateway_config(site_config_path(machine))
    return {name for device in config.devices for sensor in device.sensors
            if ROLES[sensor.role].kind is Kind.COUNTER
            and (name := model.variable_for(role=sensor.role,  # type: ignore[attr-defined]
                                            attributes=sensor.attributes)) is not None}


@pytest.mark.parametrize("machine", sorted(MODELS))
def test_meters_continue_from_given_values_and_keep_their_type(machine: str) -> None:
    model = MODELS[machine](seed=3)
    meters = {name: model.values()[name] for name in _meter_names(machine, model)}
    assert meters, f"{machine} has no meter to continue"
    types = {name: type(getattr(model, name)) for name in meters}
    start = {name: value + 10_000 for name, value in meters.items()}
    model.continue_meters(start)
    assert {name: type(getattr(model, name)) for name in meters} == types  # a count stays int
    model.step(60.0)
    after = model.values()
    for name, value in start.items():
        # A meter never runs backwards: one minute later it is at or above where it started.
        assert after[name] >= value, name


def test_an_unknown_meter_is_refused() -> None:
    model = MODELS["freezer"](seed=0)
    with pytest.raises(ValueError, match="no variable 'odometer_km'"):
        model.continue_meters({"odometer_km": 1.0})
