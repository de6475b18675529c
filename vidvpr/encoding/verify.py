"""Each cell's quantiser read back from its own stream, one verifier per codec family.

x264/x265 write their settings into the stream (rc=cqp qp=N, ip/pb ratios); AV1 and VP9 frame
headers carry each frame's base_q_idx and whether segmentation or delta-q let blocks depart
from it; H.266 slice headers carry each slice's QP (block-level deltas are not in the headers);
JPEG images carry their quantisation tables. A stream that contradicts the request fails the
cell (ProcessFailed); what a stream cannot show is recorded as such.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from vidvpr.core.errors import ProcessFailed
from vidvpr.core.sidecars import FrameQpRecord, QuantiserCheck
from vidvpr.encoding.plan import Cell, frame_type_qps, parse_rate_control
from vidvpr.encoding.quality import CellMetrics
from vidvpr.media.codecs import VVENC_QP_RANGE, jpeg_quant_tables, q_to_qindex
from vidvpr.media.headers import FrameQuantiser, av1_vp9_frames, jpeg_packet_tables, trace_header_fields, vvc_slices
from vidvpr.media.settings import encoder_settings_string

# vvenc's fixed-QP mode sets no one QP: IntraQPOffset (-3) and its own content-dependent intra adjustment,
# then per-layer offsets of its GOP 32 and QP offset model. Observed over qp 5 .. 63 on synthetic and real
# views: intra slices qp-5 .. qp-2, every slice qp-5 .. qp+10. Checked with a margin: an envelope that rate
# control or an ignored --qp would leave, not a prediction of each frame's QP (those are recorded).
VVENC_INTRA_OFFSETS = (-8, 0)
VVENC_SLICE_OFFSETS = (-8, 12)
FRAME_QP_RULE = ("constant QP: I = qp - 6*log2(ipratio), B = qp + 6*log2(pbratio) (+0.5, truncated), reference "
                 "B = (B + P) // 2; ratios read back from the stream's settings")


@dataclass(frozen=True)
class Verified:
    """A cell's quantiser check, x264/x265's frame-type QPs, and their settings string."""

    check: QuantiserCheck
    frame_qp: FrameQpRecord | None = None
    settings: str | None = None


def _counts(values: Iterable[int]) -> dict[str, int]:
    return {str(value): count for value, count in sorted(Counter(values).items())}


def _x26x_settings(cell: Cell, video: Path, qp: int, flat: bool) -> Verified:
    settings = encoder_settings_string(video)
    rate_control = parse_rate_control(settings)
    ratios = {"ipratio": 1.0, "pbratio": 1.0} if flat else {}
    if (rate_control.get("qp") != qp or not re.search(r"\brc=cqp\b", settings or "")
            or any(rate_control.get(key) != value for key, value in ratios.items())):
        found = "no settings string found" if settings is None else f"found {rate_control}"
        raise ProcessFailed(f"{cell.name}: the stream's encoder settings do not say rc=cqp qp={qp}"
                            f"{' ipratio=pbratio=1' if flat else ''} ({found})")
    qps = frame_type_qps(qp, rate_control.get("ipratio", 1.0), rate_control.get("pbratio", 1.0), cell.spec.qp_max or 51)
    check = QuantiserCheck(method="the encoder's settings string in the stream (x264 SEI, x265 headers)",
                           verified=True, expected=f"rc=cqp qp={qp}" + (" ipratio=pbratio=1" if flat else ""),
                           found=dict(rate_control),
                           cannot_show="per-block QP (x264/x265 constant QP has no adaptive quantisation)")
    return Verified(check, FrameQpRecord(**qps, rule=FRAME_QP_RULE), settings)


def _x26x(cell: Cell, video: Path, ffmpeg_path: str, metrics: CellMetrics) -> Verified:
    return _x26x_settings(cell, video, cell.qp, cell.flat_qp)


def _lossless(cell: Cell, video: Path, ffmpeg_path: str, metrics: CellMetrics) -> Verified:
    verified = _x26x_settings(cell, video, 0, flat=False)  # x264's lossless mode writes no ratios: qp 0 everywhere
    errors = [value for value in metrics.per_frame.get("psnr_y", []) if value is not None]
    if metrics.psnr_y is not None or errors:
        raise ProcessFailed(f"{cell.name}: not lossless: {len(errors)} frames differ from the scaled view "
                            f"(PSNR-Y {metrics.psnr_y} dB)")
    found = {**verified.check.found, "frames_identical_to_reference": metrics.frames}
    check = verified.check.model_copy(update={"expected": "rc=cqp qp=0 (x264 lossless) and every decoded frame's "
                                                          "luma equal to the scaled view's (MSE 0)", "found": found,
                                              "cannot_show": None})
    return Verified(check, verified.frame_qp, verified.settings)


def _block_adaptive(frames: list[FrameQuantiser], cell: Cell, what: str) -> None:
    adaptive = sum(frame.block_adaptive for frame in frames)
    if not frames:
        raise ProcessFailed(f"{cell.name}: no {what} found in the stream's headers")
    if adaptive and cell.codec != "libvvenc":
        raise ProcessFailed(f"{cell.name}: {adaptive} frames enable segmentation or delta-q: not one quantiser "
                            "per frame")


def _av1_vp9(cell: Cell, video: Path, ffmpeg_path: str, metrics: CellMetrics) -> Verified:
    frames = av1_vp9_frames(trace_header_fields(ffmpeg_path, video))
    _block_adaptive(frames, cell, "frame headers")
    expected = q_to_qindex(cell.qp)
    values = [frame.q for frame in frames]
    intra_only = all(frame.intra for frame in frames)
    found = {"base_q_idx": _counts(values), "key_frame_base_q_idx": _counts(f.q for f in frames if f.intra),
             "coded_frames": len(frames), "frames_with_segmentation_or_delta_q": 0}
    if cell.flat_qp:
        rule, ok = f"every frame's base_q_idx = {expected} (q_to_qindex({cell.qp}))", set(values) == {expected}
    else:
        rule = (f"base_q_idx <= {expected} (q_to_qindex({cell.qp})) on every frame, = {expected} on the top "
                "temporal layer (SVT-AV1 lowers the lower layers' and key frames' by its own offsets)")
        ok = max(values) == expected or (intra_only and max(values) <= expected)
    if not ok:
        raise ProcessFailed(f"{cell.name}: the frame headers do not say {rule} (found {found['base_q_idx']})")
    cannot = ("the exact offset of each frame below the top layer (SVT-AV1's own rule; --flat-qp pins them)"
              if not cell.flat_qp else None)
    if intra_only and not cell.flat_qp:
        cannot = "key frames only: SVT-AV1's key-frame offset hides the requested qp (use --flat-qp)"
    check = QuantiserCheck(method="base_q_idx, segmentation_enabled and delta_q_present of every frame header "
                                  "(ffmpeg trace_headers)", verified=ok and not (intra_only and not cell.flat_qp),
                           expected=rule, found=found, cannot_show=cannot)
    return Verified(check)


def _vvc(cell: Cell, video: Path, ffmpeg_path: str, metrics: CellMetrics) -> Verified:
    slices = vvc_slices(trace_header_fields(ffmpeg_path, video))
    _block_adaptive(slices, cell, "slice headers")
    low, high = VVENC_QP_RANGE

    def within(value: int, offsets: tuple[int, int]) -> bool:
        return max(low, cell.qp + offsets[0]) <= value <= min(high, cell.qp + offsets[1])

    intra = [s.q for s in slices if s.intra]
    ok = all(within(s.q, VVENC_SLICE_OFFSETS) for s in slices) and all(within(q, VVENC_INTRA_OFFSETS) for q in intra)
    found = {"slice_qp": _counts(s.q for s in slices), "intra_slice_qp": _counts(intra), "slices": len(slices)}
    rule = (f"intra slice QP in qp{VVENC_INTRA_OFFSETS[0]:+d}..qp, every slice QP in "
            f"qp{VVENC_SLICE_OFFSETS[0]:+d}..qp{VVENC_SLICE_OFFSETS[1]:+d} (vvenc fixed-QP mode: an envelope around "
            "its intra and per-layer offsets, observed qp-5..qp+10)")
    if not ok:
        raise ProcessFailed(f"{cell.name}: the slice headers do not say {rule} at qp {cell.qp} "
                            f"(found {found['slice_qp']})")
    check = QuantiserCheck(method="26 + pps_init_qp_minus26 + sh_qp_delta/ph_qp_delta of every slice "
                                  "(ffmpeg trace_headers)", verified=True, expected=rule, found=found,
                           cannot_show="per-block QP deltas (the PPS enables cu_qp_delta; vvenc's QPA, their "
                                       "source, is off) and the rule behind each frame's offset (vvenc's own)")
    return Verified(check)


def _jpeg(cell: Cell, video: Path, ffmpeg_path: str, metrics: CellMetrics) -> Verified:
    luma, chroma = jpeg_quant_tables(cell.qp)
    tables = jpeg_packet_tables(video)
    wrong = [i for i, found in enumerate(tables) if found.get(0) != luma or found.get(1) != chroma]
    if not tables or wrong:
        raise ProcessFailed(f"{cell.name}: {len(wrong)} of {len(tables)} JPEG frames do not carry libjpeg's "
                            f"quality-{cell.qp} tables (first: frame {wrong[0] if wrong else '-'})")
    check = QuantiserCheck(method="the DQT tables of every JPEG frame", verified=True,
                           expected=f"libjpeg's quality-{cell.qp} luma and chroma tables (T.81 Annex K scaled)",
                           found={"frames_checked": len(tables), "luma_dc": luma[0], "chroma_dc": chroma[0]},
                           cannot_show=None)
    return Verified(check)


VERIFIERS: dict[str, Callable[[Cell, Path, str, CellMetrics], Verified]] = {
    "x26x_settings": _x26x,
    "lossless": _lossless,
    "av1_vp9_headers": _av1_vp9,
    "vvc_headers": _vvc,
    "jpeg_tables": _jpeg,
}


def verify_cell(cell: Cell, video: Path, ffmpeg_path: str, metrics: CellMetrics) -> Verified:
    """Read the cell's quantiser back from `video` (its file, maybe under a temporary name)."""
    return VERIFIERS[cell.spec.verify](cell, video, ffmpeg_path, metrics)
