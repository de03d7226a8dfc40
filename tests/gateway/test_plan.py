"""Request coalescing: the fewest reads that cover every point, within protocol limits."""

from __future__ import annotations

from gateway.plan import plan_reads
from telemetry.datatypes import DataType, RegisterType
from telemetry.template import RegisterPoint


def _p(key: str, address: int, data_type: DataType = DataType.FLOAT32,
       register_type: RegisterType = RegisterType.INPUT) -> RegisterPoint:
    if register_type.is_bit:
        data_type = DataType.BOOL
    return RegisterPoint(key=key, register_type=register_type, address=address,
                         data_type=data_type)


def test_adjacent_points_make_one_request() -> None:
    plan = plan_reads([_p("a", 0), _p("b", 2), _p("c", 4)])
    assert [(r.address, r.count) for r in plan] == [(0, 6)]


def test_gap_limit_splits() -> None:
    points = [_p("v", 0), _p("f", 70), _p("e", 72)]
    assert [(r.address, r.count) for r in plan_reads(points, max_gap=10)] == [(0, 2), (70, 4)]
    assert [(r.address, r.count) for r in plan_reads(points, max_gap=100)] == [(0, 74)]


def test_never_more_than_125_registers() -> None:
    points = [_p(f"p{i}", i * 2) for i in range(100)]  # 200 contiguous registers
    plan = plan_reads(points, max_gap=0)
    assert [r.count for r in plan] == [124, 76]
    assert sum(len(r.points) for r in plan) == 100


def test_register_types_are_never_mixed() -> None:
    plan = plan_reads([_p("a", 0), _p("b", 0, register_type=RegisterType.HOLDING),
                       _p("c", 1, register_type=RegisterType.COIL)])
    assert sorted(r.register_type.value for r in plan) == ["coil", "holding", "input"]


def test_overlapping_points_share_registers() -> None:
    plan = plan_reads([_p("word", 10, DataType.UINT16), _p("pair", 10, DataType.UINT32)])
    assert [(r.address, r.count, len(r.points)) for r in plan] == [(10, 2, 2)]
