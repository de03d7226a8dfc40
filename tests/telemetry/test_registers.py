"""Register decoding against known encodings (cases as data), and encode/decode round trips."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from telemetry.datatypes import ByteOrder, DataType
from telemetry.registers import decode_registers, encode_value

CASES = sorted((Path(__file__).parent / "cases" / "decoding").glob("*/case.yaml"))


@pytest.mark.parametrize("case_file", CASES, ids=[c.parent.name for c in CASES])
def test_decoding_case(case_file: Path) -> None:
    case = yaml.safe_load(case_file.read_text())
    value = decode_registers(case["registers"], data_type=DataType(case["data_type"]),
                             order=ByteOrder(case["order"]), bit=case.get("bit"))
    assert value == case["expected"]


def test_there_are_cases_for_every_order_and_type() -> None:
    cases = [yaml.safe_load(c.read_text()) for c in CASES]
    assert {c["order"] for c in cases} == {o.value for o in ByteOrder}
    assert {c["data_type"] for c in cases} == {t.value for t in DataType}


@pytest.mark.parametrize("order", list(ByteOrder))
@pytest.mark.parametrize("data_type,values", [
    (DataType.INT16, st.integers(-(2**15), 2**15 - 1)),
    (DataType.UINT16, st.integers(0, 2**16 - 1)),
    (DataType.INT32, st.integers(-(2**31), 2**31 - 1)),
    (DataType.UINT32, st.integers(0, 2**32 - 1)),
    (DataType.INT64, st.integers(-(2**63), 2**63 - 1)),
    (DataType.UINT64, st.integers(0, 2**64 - 1)),
    (DataType.FLOAT64, st.floats(allow_nan=False, allow_infinity=False)),
])
def test_round_trip(order: ByteOrder, data_type: DataType, values: st.SearchStrategy) -> None:
    @given(values)
    def check(value: float) -> None:
        registers = encode_value(value, data_type=data_type, order=order)
        assert len(registers) == data_type.registers
        assert all(0 <= r <= 0xFFFF for r in registers)
        assert decode_registers(registers, data_type=data_type, order=order) == value

    check()


@given(st.floats(width=32, allow_nan=False, allow_infinity=False), st.sampled_from(ByteOrder))
def test_float32_round_trip(value: float, order: ByteOrder) -> None:
    registers = encode_value(value, data_type=DataType.FLOAT32, order=order)
    decoded = decode_registers(registers, data_type=DataType.FLOAT32, order=order)
    assert isinstance(decoded, float)
    assert decoded == value or (math.isclose(decoded, value, rel_tol=1e-7))


def test_orders_really_differ() -> None:
    layouts = {o: tuple(encode_value(123.456, data_type=DataType.FLOAT32, order=o))
               for o in ByteOrder}
    assert len(set(layouts.values())) == 4
