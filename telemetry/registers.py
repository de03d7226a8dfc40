"""Register codec: raw 16-bit registers to values and back, for every data type and order.

Decoding goes through pymodbus' `convert_from_registers`, which only knows the word order;
byte-swapped layouts (BADC, DCBA) get their bytes swapped first, here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pymodbus.client.mixin import ModbusClientMixin

from telemetry.datatypes import ByteOrder, DataType


def _swap_bytes(registers: Sequence[int]) -> list[int]:
    return [((r & 0xFF) << 8) | (r >> 8) for r in registers]


def decode_registers(
    registers: Sequence[int],
    *,
    data_type: DataType,
    order: ByteOrder = ByteOrder.ABCD,
    bit: int | None = None,
) -> int | float | str | bool:
    """Decode the registers of one value (exactly its register count) into a Python value."""
    regs = _swap_bytes(registers) if order.bytes_swapped else list(registers)
    if data_type is DataType.BOOL:
        return bool((regs[0] >> (bit or 0)) & 1)
    word_order: Literal["big", "little"] = "little" if order.words_swapped else "big"
    value = ModbusClientMixin.convert_from_registers(
        regs, data_type.pymodbus, word_order=word_order
    )
    if isinstance(value, list):  # only BITS returns a list, and BOOL is handled above
        raise TypeError(f"unexpected list for {data_type}")
    return value


def encode_value(
    value: int | float | str | bool,
    *,
    data_type: DataType,
    order: ByteOrder = ByteOrder.ABCD,
    length: int = 0,
) -> list[int]:
    """Encode one value into registers; the inverse of `decode_registers` (used by simulators)."""
    if data_type is DataType.BOOL:
        return [1 if value else 0]
    if data_type is DataType.STRING:
        text = str(value).encode("utf-8")[: length * 2].ljust(length * 2, b"\0")
        regs = [int.from_bytes(text[i : i + 2], "big") for i in range(0, len(text), 2)]
    else:
        number: int | float = (
            float(value) if data_type in (DataType.FLOAT32, DataType.FLOAT64) else int(value)
        )
        word_order: Literal["big", "little"] = "little" if order.words_swapped else "big"
        regs = ModbusClientMixin.convert_to_registers(
            number, data_type.pymodbus, word_order=word_order
        )
    return _swap_bytes(regs) if order.bytes_swapped else regs
