"""Counter differences against hand-computed cases (one folder per case)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from api.accounting.energy import counter_delta

CASES = sorted((Path(__file__).parent / "cases" / "counter").glob("*/case.yaml"))


@pytest.mark.parametrize("case_file", CASES, ids=[c.parent.name for c in CASES])
def test_counter_case(case_file: Path) -> None:
    case = yaml.safe_load(case_file.read_text())
    samples = [(int(t), float(v)) for t, v in case["samples"]]
    result = counter_delta(samples, start_ms=case["start_ms"], end_ms=case["end_ms"])
    expected = case["expected"]
    if expected is None:
        assert result is None
        return
    assert result is not None
    assert result.delta == pytest.approx(expected["delta"], abs=1e-9)
    for key in ("readings", "resets", "start_exact", "end_exact", "largest_gap_ms"):
        if key in expected:
            assert getattr(result, key) == expected[key], key
