"""The dryer's air and stored-hay roles: a probe without its place and an airflow that is not a
volume flow are refused where they are written; a volume flow in any unit is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from telemetry.errors import ConfigError
from telemetry.loader import load_gateway_config
from telemetry.units import convert

REPO = Path(__file__).resolve().parents[2]
DRYER = REPO / "firmware-config" / "sites" / "ariege" / "dryer.yaml"


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    text = DRYER.read_text(encoding="utf-8")
    assert old in text
    text = text.replace("template_dirs: [../../templates]",
                        f"template_dirs: [{REPO / 'firmware-config' / 'templates'}]")
    out = tmp_path / "dryer.yaml"
    out.write_text(text.replace(old, new), encoding="utf-8")
    return out


def test_the_shipped_probes_each_have_a_location() -> None:
    config = load_gateway_config(DRYER)
    probes = [s for d in config.devices for s in d.sensors if s.role == "forage_temperature"]
    assert len(probes) >= 3
    assert len({s.location for s in probes}) == len(probes)


def test_a_forage_probe_without_location_is_refused_at_its_line(tmp_path: Path) -> None:
    file = _variant(tmp_path, 'location: "travée 1, rang haut", ', "")
    with pytest.raises(ConfigError) as caught:
        load_gateway_config(file)
    text = str(caught.value)
    line = next(n for n, row in enumerate(file.read_text().splitlines(), 1)
                if "dryer.forage_t2" in row)
    assert f"dryer.yaml:{line}:" in text
    assert "forage_temperature probe needs its `location`" in text


@pytest.mark.parametrize("unit", ["kg/h", "W"])
def test_an_airflow_that_is_not_a_volume_flow_is_refused(tmp_path: Path, unit: str) -> None:
    file = _variant(tmp_path, 'unit: "m**3/h", valid_min: 0, valid_max: 60000',
                    f'unit: "{unit}", valid_min: 0, valid_max: 60000')
    with pytest.raises(ConfigError, match=f"role airflow measures 'm\\*\\*3/h' but sensor "
                                          f"dryer.airflow is in '{unit}'"):
        load_gateway_config(file)


def test_an_airflow_in_cubic_metres_per_second_is_accepted_and_converts(tmp_path: Path) -> None:
    file = _variant(tmp_path, 'scale: 3750, offset: -15000,\n         unit: "m**3/h"',
                    'scale: 1.0416666667, offset: -4.1666666667,\n         unit: "m³/s"')
    load_gateway_config(file)
    # 1 m³/s = 3600 m³/h
    assert convert(12.5, from_unit="m³/s", to_unit="m**3/h") == pytest.approx(45_000)
