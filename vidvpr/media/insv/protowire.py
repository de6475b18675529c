"""The protobuf wire format, read and written for the few INFO fields vidvpr needs.

A message is a sequence of (field number, wire type, value): varints (type 0), 64-bit (1),
length-delimited bytes (2) and 32-bit (5) values; groups (3, 4) are obsolete and refused. This
reader keeps every field in order and decodes nothing by schema, so fields it does not know are
skipped by their own length. Malformed input (a varint running off the end or longer than 10
bytes, a length past the end, an unknown wire type, field number 0) raises `WireError`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5
MAX_VARINT_BYTES = 10
MAX_FIELD_NUMBER = (1 << 29) - 1

Field = tuple[int, int, "int | bytes"]


class WireError(ValueError):
    """The bytes are not a protobuf message."""


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the varint at `pos` (unsigned, at most 64 bits)."""
    value, shift = 0, 0
    for count in range(MAX_VARINT_BYTES):
        if pos + count >= len(data):
            raise WireError(f"varint runs past the end at byte {pos}")
        byte = data[pos + count]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value & ((1 << 64) - 1), pos + count + 1
        shift += 7
    raise WireError(f"varint longer than {MAX_VARINT_BYTES} bytes at byte {pos}")


def parse_fields(data: bytes) -> list[Field]:
    """Every field of a message, in order: (number, wire type, int for varints, else the raw bytes)."""
    fields: list[Field] = []
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if not 1 <= number <= MAX_FIELD_NUMBER:
            raise WireError(f"field number {number} at byte {pos}")
        if wire_type == VARINT:
            value, pos = read_varint(data, pos)
            fields.append((number, wire_type, value))
            continue
        if wire_type == LENGTH:
            size, pos = read_varint(data, pos)
        elif wire_type in (FIXED64, FIXED32):
            size = 8 if wire_type == FIXED64 else 4
        else:
            raise WireError(f"field {number} has wire type {wire_type} (groups and types 6, 7 are not supported)")
        if pos + size > len(data):
            raise WireError(f"field {number} ({size} bytes) runs past the end of the message")
        fields.append((number, wire_type, bytes(data[pos:pos + size])))
        pos += size
    return fields


def signed64(value: int) -> int:
    """A varint read as int64 (negative numbers are written as 10-byte two's complement)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def double_of(raw: bytes) -> float:
    return float(struct.unpack("<d", raw)[0])


def encode_varint(value: int) -> bytes:
    """Varint bytes of a non-negative integer below 2**64 (negative int64: add 2**64 first)."""
    if not 0 <= value < 1 << 64:
        raise ValueError(f"varint out of range: {value}")
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def encode_fields(fields: Iterable[Field]) -> bytes:
    """A message from (number, wire type, value) fields: ints for varints, bytes otherwise."""
    out = bytearray()
    for number, wire_type, value in fields:
        out += encode_varint(number << 3 | wire_type)
        if wire_type == VARINT:
            assert isinstance(value, int)
            out += encode_varint(value if value >= 0 else value + (1 << 64))
            continue
        assert isinstance(value, bytes)
        if wire_type == LENGTH:
            out += encode_varint(len(value))
        elif len(value) != (8 if wire_type == FIXED64 else 4):
            raise ValueError(f"field {number}: fixed-width value of {len(value)} bytes")
        out += value
    return bytes(out)
