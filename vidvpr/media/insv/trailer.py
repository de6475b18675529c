"""The Insta360 trailer's layout: the footer at the end of the file and the records before it.

The trailer is appended to the video (MP4) or photo (JPEG). It ends with a 72-byte footer:
32 bytes of padding, the trailer's size in bytes (u32, footer included), its version (u32) and
the 32-character ASCII magic `8db42d694ccc418790edff439fe026bf`. Records are read backwards from
the footer, each stored as ``[data][u16 id][u32 size]`` (little-endian): the header follows its
data. The id's low byte is the data's format (0 binary, 1 protobuf), the high byte its kind, so
0x101 is INFO (protobuf), 0x300 gyro, 0x700 GPS. A record of kind 0 is an index of the others
(10-byte entries: kind, format, u32 size, u32 offset from the trailer's start); newer cameras
write one, and the records are then read through it.

Sources: alex-plekhanov/insvtools (Java), AdrianEddy/telemetry-parser (Rust) and ExifTool's
QuickTimeStream.pl agree on this layout; the sample in ../shared/data is version 3, the only
version any of them reads. Pure functions over bytes; `TrailerError` names the record.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

MAGIC = b"8db42d694ccc418790edff439fe026bf"
FOOTER_BYTES = 72  # padding (32) + size (4) + version (4) + magic (32)
PADDING_BYTES = 32
RECORD_HEADER_BYTES = 6
INDEX_ENTRY_BYTES = 10
VERSIONS_READ = (3,)
MAX_RECORDS = 100_000  # far beyond any camera's; a loop guard against crafted files

INFO, THUMBNAIL, GYRO, EXPOSURE, THUMBNAIL_EXT, FRAME_TIMES, GPS = 0x101, 0x200, 0x300, 0x400, 0x500, 0x600, 0x700
INDEX_KIND = 0
# record kinds (the id's high byte), as insvtools and telemetry-parser name them
KIND_NAMES = {0: "index", 1: "INFO", 2: "thumbnail", 3: "gyro", 4: "exposure", 5: "thumbnail (ext)",
              6: "frame timestamps", 7: "GPS", 8: "star count", 9: "3A data", 10: "highlights", 11: "3A simulation",
              12: "exposure (lens 1)", 13: "magnetic", 14: "Euler angles", 15: "gyro (secondary)", 16: "speed",
              128: "time map"}


class TrailerError(ValueError):
    """The trailer is damaged; the message names the record (or the footer)."""


def kind_name(record_id: int) -> str:
    """What a record holds, by its kind (the id's high byte): 'GPS', 'unknown'."""
    return KIND_NAMES.get(record_id >> 8, "unknown")


def record_name(record_id: int) -> str:
    """'0x700 (GPS)': how messages name a record."""
    return f"0x{record_id:03x} ({kind_name(record_id)})"


@dataclass(frozen=True)
class RawRecord:
    """One record: its id, where its data starts (byte offset in the file) and the data."""

    record_id: int
    offset: int
    data: bytes

    @property
    def name(self) -> str:
        return record_name(self.record_id)


@dataclass(frozen=True)
class TrailerLayout:
    """The footer's fields and the records, in file order."""

    version: int
    size: int
    start: int  # byte offset of the trailer in the file
    records: tuple[RawRecord, ...]
    indexed: bool  # read through an index record


def has_magic(tail: bytes) -> bool:
    """Whether bytes ending a file end with the Insta360 magic."""
    return tail.endswith(MAGIC)


def footer(tail: bytes, file_size: int) -> tuple[int, int]:
    """(trailer size, version) from the last 72 bytes of a file of `file_size` bytes."""
    if len(tail) < FOOTER_BYTES or file_size < FOOTER_BYTES:
        raise TrailerError(f"footer: the file is shorter than the {FOOTER_BYTES}-byte trailer footer")
    if not has_magic(tail):
        raise TrailerError("footer: no Insta360 magic at the end of the file (wrong magic or no trailer)")
    size, version = struct.unpack_from("<II", tail, len(tail) - FOOTER_BYTES + PADDING_BYTES)
    if version not in VERSIONS_READ:
        raise TrailerError(f"footer: trailer version {version}; vidvpr reads version "
                           f"{', '.join(map(str, VERSIONS_READ))} only")
    if size < FOOTER_BYTES or size > file_size:
        raise TrailerError(f"footer: trailer size {size} bytes is impossible in a file of {file_size} bytes "
                           "(truncated file or damaged footer)")
    return size, version


MP4_BOX_HEADER_BYTES = 8  # u32 size (1: a u64 size follows; 0: to the end of the file) + 4-character type
# the top-level boxes of ISO/IEC 14496-12 files; anything else after them is not read as a box (an
# Insta360 trailer's bytes can look like a box header with a printable type)
MP4_TOP_LEVEL_BOXES = frozenset({b"ftyp", b"styp", b"pdin", b"moov", b"moof", b"mfra", b"mdat", b"free", b"skip",
                                 b"wide", b"meta", b"udta", b"uuid", b"sidx", b"ssix", b"prft", b"emsg", b"meco"})


@dataclass(frozen=True)
class CutShort:
    """How a file without an Insta360 footer looks cut short, from its top-level MP4 boxes."""

    inside_video: bool  # the file ends inside an MP4 box: the video itself is incomplete
    text: str


def cut_short(boxes: Sequence[tuple[int, int, bytes]], file_size: int) -> CutShort | None:
    """Whether a file without the Insta360 footer was cut short, from its top-level MP4 boxes as
    read from its start: (byte offset, size in bytes, 4-byte type) each, the last one perhaps not
    a box at all (the remains of a trailer). None for a file that is not MP4 (no 'ftyp' box first)
    or whose boxes end where the file does (no trailer: an MP4 named .insv)."""
    if not boxes or boxes[0][2] != b"ftyp":
        return None
    end = 0
    for offset, size, kind in boxes:
        if size < MP4_BOX_HEADER_BYTES or kind not in MP4_TOP_LEVEL_BOXES:
            break  # not a box: what follows the MP4 boxes
        if offset + size > file_size:
            return CutShort(True, f"the file ends inside its MP4 box '{kind.decode('ascii')}' "
                                  f"({file_size - offset:,} of its {size:,} bytes): truncated (an incomplete copy?)")
        end = offset + size
    if end < file_size:
        return CutShort(False, f"{file_size - end:,} bytes follow its MP4 boxes with no footer at their end: "
                               "a trailer cut short (truncated file?) or damaged")
    return None


def split_trailer(data: bytes, file_size: int) -> TrailerLayout:
    """The records of a trailer; `data` is the end of the file (at least the whole trailer)."""
    size, version = footer(data[-FOOTER_BYTES:], file_size)
    if len(data) < size:
        raise TrailerError(f"footer: trailer of {size} bytes but only {len(data)} were given")
    trailer = data[len(data) - size:]
    start = file_size - size
    records: list[RawRecord] = []
    end = size - FOOTER_BYTES  # records end here, relative to the trailer's start
    while end > 0:
        if len(records) >= MAX_RECORDS:
            raise TrailerError(f"more than {MAX_RECORDS} records")
        if end < RECORD_HEADER_BYTES:
            raise TrailerError(f"record header at trailer byte {end}: {end} bytes left, a header needs "
                               f"{RECORD_HEADER_BYTES} (truncated trailer)")
        record_id, length = struct.unpack_from("<HI", trailer, end - RECORD_HEADER_BYTES)
        data_start = end - RECORD_HEADER_BYTES - length
        if data_start < 0:
            raise TrailerError(f"record {record_name(record_id)} at byte {start + end - RECORD_HEADER_BYTES}: "
                               f"size {length} runs past the start of the trailer")
        record = RawRecord(record_id, start + data_start, bytes(trailer[data_start:data_start + length]))
        if record_id >> 8 == INDEX_KIND:
            indexed = _indexed_records(record, trailer, start)
            return TrailerLayout(version, size, start, tuple(sorted(indexed, key=lambda r: r.offset)), True)
        records.append(record)
        end = data_start
    return TrailerLayout(version, size, start, tuple(reversed(records)), False)


def _indexed_records(index: RawRecord, trailer: bytes, start: int) -> list[RawRecord]:
    if len(index.data) % INDEX_ENTRY_BYTES:
        raise TrailerError(f"record {index.name}: {len(index.data)} bytes is not a whole number of "
                           f"{INDEX_ENTRY_BYTES}-byte index entries")
    found = []
    for at in range(0, len(index.data), INDEX_ENTRY_BYTES):
        kind, fmt, length, offset = struct.unpack_from("<BBII", index.data, at)
        if kind == fmt == length == 0:
            continue  # an empty slot
        record_id = kind << 8 | fmt
        if offset + length > len(trailer) - FOOTER_BYTES:
            raise TrailerError(f"record {record_name(record_id)} (index entry {at // INDEX_ENTRY_BYTES}): "
                               f"{length} bytes at trailer byte {offset} run past the end of the trailer")
        found.append(RawRecord(record_id, start + offset, bytes(trailer[offset:offset + length])))
    return found


def build_trailer(records: Sequence[tuple[int, bytes]], version: int = 3, with_index: bool = False) -> bytes:
    """Trailer bytes holding `records` (id, data) in order, to append to a video: the writer of
    `split_trailer`. With `with_index`, an index record (kind 0) is written last, as newer cameras do."""
    body = bytearray()
    entries = bytearray()
    for record_id, data in records:
        if not 0 <= record_id < 1 << 16 or record_id >> 8 == INDEX_KIND:
            raise ValueError(f"record id {record_id:#x} cannot be written")
        entries += struct.pack("<BBII", record_id >> 8, record_id & 0xFF, len(data), len(body))
        body += data + struct.pack("<HI", record_id, len(data))
    if with_index:
        body += entries + struct.pack("<HI", INDEX_KIND, len(entries))
    size = len(body) + FOOTER_BYTES
    return bytes(body) + bytes(PADDING_BYTES) + struct.pack("<II", size, version) + MAGIC
