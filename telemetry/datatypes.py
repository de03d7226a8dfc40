"""Modbus register vocabulary: register types, data types and byte/word orders."""

from __future__ import annotations

from enum import StrEnum

from pymodbus.client.mixin import ModbusClientMixin

_PM = ModbusClientMixin.DATATYPE


class RegisterType(StrEnum):
    """The four Modbus tables, named as makers' documentation names them."""

    COIL = "coil"  # FC 01, read/write bits
    DISCRETE_INPUT = "discrete_input"  # FC 02, read-only bits
    HOLDING = "holding"  # FC 03, read/write 16-bit registers
    INPUT = "input"  # FC 04, read-only 16-bit registers

    @property
    def is_bit(self) -> bool:
        return self in (RegisterType.COIL, RegisterType.DISCRETE_INPUT)


class DataType(StrEnum):
    """How a value is laid out in registers.

    Each member knows its pymodbus codec type and its register count (0 = set by `length`).
    """

    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"
    BOOL = "bool"  # a coil or discrete input, or bit `bit` of a register

    @property
    def pymodbus(self) -> ModbusClientMixin.DATATYPE:
        return _PYMODBUS[self]

    @property
    def registers(self) -> int:
        """Register count of one value; 0 for strings, whose length is configured."""
        return {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "int64": 4, "uint64": 4,
                "float32": 2, "float64": 4, "string": 0, "bool": 1}[self.value]

    @property
    def integer_range(self) -> tuple[int, int] | None:
        """Lowest and highest value of an integer type; None for floats, strings and bools."""
        return _INTEGER_RANGES.get(self)


_INTEGER_RANGES = {
    DataType.INT16: (-(2 ** 15), 2 ** 15 - 1), DataType.UINT16: (0, 2 ** 16 - 1),
    DataType.INT32: (-(2 ** 31), 2 ** 31 - 1), DataType.UINT32: (0, 2 ** 32 - 1),
    DataType.INT64: (-(2 ** 63), 2 ** 63 - 1), DataType.UINT64: (0, 2 ** 64 - 1),
}


_PYMODBUS = {
    DataType.INT16: _PM.INT16,
    DataType.UINT16: _PM.UINT16,
    DataType.INT32: _PM.INT32,
    DataType.UINT32: _PM.UINT32,
    DataType.INT64: _PM.INT64,
    DataType.UINT64: _PM.UINT64,
    DataType.FLOAT32: _PM.FLOAT32,
    DataType.FLOAT64: _PM.FLOAT64,
    DataType.STRING: _PM.STRING,
    DataType.BOOL: _PM.UINT16,
}


class ByteOrder(StrEnum):
    """Order of the bytes of a multi-register value, written as the letters of 0xA1B2C3D4.

    ABCD is plain big-endian (Modbus' own convention); CDAB swaps the 16-bit words
    ("little-endian word order", common on Carlo Gavazzi and many PLCs); BADC swaps the bytes
    inside each word; DCBA is fully little-endian.
    """

    ABCD = "ABCD"
    CDAB = "CDAB"
    BADC = "BADC"
    DCBA = "DCBA"

    @property
    def words_swapped(self) -> bool:
        return self in (ByteOrder.CDAB, ByteOrder.DCBA)

    @property
    def bytes_swapped(self) -> bool:
        return self in (ByteOrder.BADC, ByteOrder.DCBA)
