"""The quantiser each coded frame of a stream says it used, read from the stream's own headers.

AV1 and VP9 frames carry ``base_q_idx`` (0..255) and whether segmentation or (AV1) delta-q
lets blocks depart from it; H.266 slices carry their QP as ``26 + pps_init_qp_minus26 +
sh_qp_delta`` (or ``ph_qp_delta``). ffmpeg's ``trace_headers`` bitstream filter prints every
header field; the parsers here are pure functions of that text. JPEG frames carry their
quantisation tables in DQT segments, parsed from the packet bytes.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import av

from vidvpr.core.errors import ProcessFailed
from vidvpr.media.codecs import JPEG_ZIGZAG
from vidvpr.media.ffmpeg import stderr_tail

FIELD = re.compile(r"^\[trace_headers[^\]]*\]\s+\d+\s+(\S+)\s+\S+\s+=\s+(-?\d+)\s*$")
VVC_INTRA_NAL_TYPES = frozenset({7, 8, 9})  # IDR_W_RADL, IDR_N_LP, CRA
VVC_QP_BASE = 26


@dataclass(frozen=True)
class FrameQuantiser:
    """One coded frame: its quantiser, whether it is intra, and whether blocks may depart from it."""

    q: int
    intra: bool
    block_adaptive: bool


def trace_header_fields(ffmpeg_path: str, path: Path) -> list[tuple[str, int]]:
    """(field, value) of every header field of the first video stream, in bitstream order."""
    argv = [ffmpeg_path, "-hide_banner", "-nostdin", "-loglevel", "info", "-i", str(Path(path).resolve()),
            "-map", "0:v:0", "-c", "copy", "-bsf:v", "trace_headers", "-f", "null", "-"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ProcessFailed(f"{path}: reading its headers failed: {stderr_tail(proc.stderr)}")
    return parse_trace_fields(proc.stderr)


def parse_trace_fields(text: str) -> list[tuple[str, int]]:
    """(field, value) pairs from `trace_headers` output; other lines are ignored."""
    found = []
    for line in text.splitlines():
        match = FIELD.match(line)
        if match:
            found.append((match.group(1), int(match.group(2))))
    return found


def av1_vp9_frames(fields: Iterable[tuple[str, int]]) -> list[FrameQuantiser]:
    """Coded AV1 or VP9 frames (not the repeats `show_existing_frame` signals), in decode order.

    A frame is intra when its frame_type is 0 (KEY_FRAME); it is block-adaptive when
    segmentation (either codec) or delta_q (AV1) is enabled.
    """
    frames: list[FrameQuantiser] = []
    current: dict[str, int] | None = None

    def close() -> None:
        if current is not None and "base_q_idx" in current:
            adaptive = bool(current.get("segmentation_enabled", 0) or current.get("delta_q_present", 0))
            frames.append(FrameQuantiser(current["base_q_idx"], current.get("frame_type", 1) == 0, adaptive))

    for name, value in fields:
        if name == "show_existing_frame":
            close()
            current = None if value else {}
        elif current is not None and name in ("frame_type", "base_q_idx", "segmentation_enabled", "delta_q_present"):
            current.setdefault(name, value)
    close()
    return frames


def vvc_slices(fields: Iterable[tuple[str, int]]) -> list[FrameQuantiser]:
    """Coded H.266 slices: QP = 26 + pps_init_qp_minus26 (latest PPS) + ph_qp_delta or sh_qp_delta.

    Intra: the slice's NAL unit type is IDR or CRA. Block-adaptive: the PPS enables cu_qp_delta
    (blocks may carry their own QP deltas, which the headers cannot show).
    """
    slices: list[FrameQuantiser] = []
    init_qp, cu_delta, nal_type = 0, False, -1
    for name, value in fields:
        if name == "nal_unit_type":
            nal_type = value
        elif name == "pps_init_qp_minus26":
            init_qp = value
        elif name == "pps_cu_qp_delta_enabled_flag":
            cu_delta = bool(value)
        elif name in ("sh_qp_delta", "ph_qp_delta"):
            slices.append(FrameQuantiser(VVC_QP_BASE + init_qp + value, nal_type in VVC_INTRA_NAL_TYPES, cu_delta))
    return slices


def jpeg_quant_tables_of(data: bytes) -> dict[int, tuple[int, ...]]:
    """Quantisation tables (id → 64 values, natural order) of one JPEG image's DQT segments.

    Walks the marker segments from SOI to SOS; raises ValueError for data that is not a JPEG.
    """
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG image (no SOI marker)")
    tables: dict[int, tuple[int, ...]] = {}
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError(f"JPEG marker expected at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xDA:  # start of scan: no more tables before the entropy-coded data
            break
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        segment = data[pos + 4:pos + 2 + length]
        if marker == 0xDB:
            offset = 0
            while offset < len(segment):
                precision, table_id = segment[offset] >> 4, segment[offset] & 0x0F
                width = 2 if precision else 1
                raw = segment[offset + 1:offset + 1 + 64 * width]
                values = [int.from_bytes(raw[k * width:(k + 1) * width], "big") for k in range(64)]
                natural = [0] * 64
                for k, index in enumerate(JPEG_ZIGZAG):
                    natural[index] = values[k]
                tables[table_id] = tuple(natural)
                offset += 1 + 64 * width
        pos += 2 + length
    return tables


def jpeg_packet_tables(path: Path) -> list[dict[int, tuple[int, ...]]]:
    """The DQT tables of every JPEG packet of a file's first video stream, in order."""
    found = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.size:
                found.append(jpeg_quant_tables_of(bytes(packet)))
    return found
