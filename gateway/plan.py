"""Request planning: read a device's points in the fewest Modbus requests.

Points of one register type whose addresses are close are coalesced into one read, as long as
the read stays within the protocol's limit (125 registers, 2000 bits) and the hole between two
points is at most `max_gap` registers (reading a few unused registers is cheaper than another
round trip, but some devices refuse reads that cross undefined addresses: lower `max_gap`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from telemetry.datatypes import RegisterType
from telemetry.template import DeviceTemplate, RegisterPoint

MAX_REGISTERS = 125
MAX_BITS = 2000


@dataclass(frozen=True, slots=True)
class ReadRequest:
    register_type: RegisterType
    address: int
    count: int
    points: tuple[RegisterPoint, ...]


def plan_reads(
    points: Iterable[RegisterPoint], *, max_gap: int = 10, max_count: int = MAX_REGISTERS
) -> list[ReadRequest]:
    """Group points into read requests, per register type, in address order."""
    requests: list[ReadRequest] = []
    by_type: dict[RegisterType, list[RegisterPoint]] = {}
    for point in points:
        by_type.setdefault(point.register_type, []).append(point)
    for register_type in RegisterType:
        group = sorted(by_type.get(register_type, []), key=lambda p: (p.address, p.count))
        limit = MAX_BITS if register_type.is_bit else max_count
        current: list[RegisterPoint] = []
        start = end = 0
        for point in group:
            p_end = point.address + point.count
            if current and point.address - end <= max_gap and max(end, p_end) - start <= limit:
                current.append(point)
                end = max(end, p_end)
                continue
            if current:
                requests.append(ReadRequest(register_type, start, end - start, tuple(current)))
            current, start, end = [point], point.address, p_end
        if current:
            requests.append(ReadRequest(register_type, start, end - start, tuple(current)))
    return requests


def with_scale_factors(points: Iterable[RegisterPoint],
                       template: DeviceTemplate) -> list[RegisterPoint]:
    """The points plus the scale-factor points they name (SunSpec `sunssf`), so that a poll
    reads each value's exponent too; a scale factor sits beside its values in the same model,
    so `plan_reads` normally reads both in one request."""
    wanted = {p.key: p for p in points}
    for point in list(wanted.values()):
        factor = template.point(point.scale_factor) if point.scale_factor else None
        if isinstance(factor, RegisterPoint):
            wanted.setdefault(factor.key, factor)
    return list(wanted.values())
