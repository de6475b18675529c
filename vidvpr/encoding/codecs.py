"""The codecs of the grid, one registry entry each: quantiser, presets, ffmpeg arguments, layout.

Every video codec runs in its constant-quantiser mode (no rate control): x264/x265 ``-qp``,
SVT-AV1 ``-qp`` with adaptive quantisation off, libvpx-vp9 with ``--min-q = --max-q``,
vvenc ``-qp`` with perceptual QPA off. ``jpeg`` is libjpeg stills per frame at a quality
factor (encoded in-process, see jpeg.py); ``lossless`` is x264 at QP 0 with equal frame-type
QPs, mathematically lossless: the resolution-only cell. How each is checked against its
stream is in verify.py. Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from vidvpr.media.codecs import (
    JPEG_QUALITY_RANGE,
    SVTAV1_PRESETS,
    SVTAV1_QP_RANGE,
    VP9_PRESETS,
    VP9_Q_RANGE,
    VVENC_PRESETS,
    VVENC_QP_RANGE,
    X26X_PRESETS,
    X26X_QP_RANGE,
)

DEFAULT_CODEC = "libx264"


@dataclass(frozen=True)
class Quantiser:
    """A codec's quality knob: its name, range, and which way is better."""

    name: str  # "qp" or "quality"; also the cell file's prefix (qp30.mp4, quality10.mp4)
    low: int
    high: int
    higher_is_better: bool
    meaning: str
    default_values: tuple[int, ...] | None = None  # the codec's own values; None: the grid's --qp


# (quantiser, preset, gop, flat_qp, threads) → ffmpeg output options of one cell
ArgsBuilder = Callable[[int, str | None, int, bool, int], list[str]]


@dataclass(frozen=True)
class CodecSpec:
    """One codec of the grid."""

    name: str
    title: str
    encoder: str | None  # the ffmpeg encoder it needs; None: encoded in-process (jpeg)
    quantiser: Quantiser
    presets: tuple[str, ...]
    default_preset: str | None
    args: ArgsBuilder | None  # ffmpeg output options of one cell; None: not an ffmpeg encoder
    flat_qp: Literal["option", "always", "never"]  # whether --flat-qp is possible, built in, or impossible
    verify: str  # key into verify.VERIFIERS
    input_pix_fmt: str = "yuv420p"  # what the encoder is fed (after scale_chain)
    # the encoder's time base: the filter graph's (the view's own), or 1/fps where the wrapper
    # mis-stamps others (libvvenc): exact for constant-rate views, refused for variable-rate ones
    time_base_from_filter: bool = True
    folder: str | None = None  # path segment under <res>/; None: the codec's name

    @property
    def cell_folder(self) -> str:
        return self.name if self.folder is None else self.folder

    @property
    def qp_min(self) -> int:
        return self.quantiser.low

    @property
    def qp_max(self) -> int:
        return self.quantiser.high


def _x264_args(q: int, preset: str | None, gop: int, flat_qp: bool, threads: int) -> list[str]:
    args = ["-c:v", "libx264", "-preset", str(preset), "-qp", str(q), "-g", str(gop), "-keyint_min", str(gop),
            "-sc_threshold", "0", "-threads", str(threads)]
    return args + (["-x264-params", "ipratio=1.0:pbratio=1.0"] if flat_qp else [])


def _x265_args(q: int, preset: str | None, gop: int, flat_qp: bool, threads: int) -> list[str]:
    params = [f"qp={q}", f"keyint={gop}", f"min-keyint={gop}", "scenecut=0", "open-gop=0", f"pools={threads}",
              "log-level=error"] + (["ipratio=1.0", "pbratio=1.0"] if flat_qp else [])
    return ["-c:v", "libx265", "-preset", str(preset), "-x265-params", ":".join(params)]


def _svtav1_args(q: int, preset: str | None, gop: int, flat_qp: bool, threads: int) -> list[str]:
    # aq-mode=0: no segmentation or delta-q (one quantiser per frame); flat: no per-layer qindex offsets
    params = ["aq-mode=0", "scd=0", "irefresh-type=2", f"lp={threads}"]
    if flat_qp:
        params += ["use-fixed-qindex-offsets=1", "qindex-offsets=0,0,0,0,0,0", "key-frame-qindex-offset=0"]
    return ["-c:v", "libsvtav1", "-preset", str(preset), "-qp", str(q), "-g", str(gop),
            "-svtav1-params", ":".join(params)]


def _vp9_args(q: int, preset: str | None, gop: int, flat_qp: bool, threads: int) -> list[str]:
    # --min-q = --max-q = q: every frame at one quantiser; aq-mode 0: no segmentation
    deadline, cpu_used = str(preset).split("-")
    return ["-c:v", "libvpx-vp9", "-deadline", deadline, "-cpu-used", cpu_used, "-qmin", str(q), "-qmax", str(q),
            "-crf", str(q), "-b:v", "0", "-aq-mode", "0", "-g", str(gop), "-keyint_min", str(gop),
            "-threads", str(threads), "-row-mt", "0"]


def _vvenc_args(q: int, preset: str | None, gop: int, flat_qp: bool, threads: int) -> list[str]:
    # qpa 0: no perceptual QP adaptation; closed GOPs (IDR) every `gop` frames
    return ["-c:v", "libvvenc", "-preset", str(preset), "-qp", str(q), "-qpa", "0", "-threads", str(threads),
            "-vvenc-params", f"IntraPeriod={gop}:DecodingRefreshType=idr"]


def _lossless_args(q: int, preset: str | None, gop: int, flat_qp: bool, threads: int) -> list[str]:
    return _x264_args(0, preset, gop, True, threads)


_QP = "constant QP"
CODECS: dict[str, CodecSpec] = {
    "libx264": CodecSpec("libx264", "H.264 (x264)", "libx264",
                         Quantiser("qp", *X26X_QP_RANGE, False, f"{_QP}, 0 (lossless) .. 51"),
                         X26X_PRESETS, "medium", _x264_args, "option", "x26x_settings", folder=""),
    "libx265": CodecSpec("libx265", "H.265 (x265)", "libx265",
                         Quantiser("qp", *X26X_QP_RANGE, False, f"{_QP}, 0 .. 51"),
                         X26X_PRESETS, "medium", _x265_args, "option", "x26x_settings"),
    "libsvtav1": CodecSpec("libsvtav1", "AV1 (SVT-AV1)", "libsvtav1",
                           Quantiser("qp", *SVTAV1_QP_RANGE, False,
                                     f"{_QP} (CQP), 1 .. 63; frame base_q_idx = 4*qp (244, 249, 255 at 61..63)"),
                           SVTAV1_PRESETS, "8", _svtav1_args, "option", "av1_vp9_headers"),
    "libvpx-vp9": CodecSpec("libvpx-vp9", "VP9 (libvpx)", "libvpx-vp9",
                            Quantiser("qp", *VP9_Q_RANGE, False,
                                      "min-q = max-q = qp, 0 .. 63; frame base_q_idx = 4*qp (244, 249, 255 at 61..63)"),
                            VP9_PRESETS, "good-4", _vp9_args, "always", "av1_vp9_headers"),
    "libvvenc": CodecSpec("libvvenc", "H.266 (vvenc)", "libvvenc",
                          Quantiser("qp", *VVENC_QP_RANGE, False, f"{_QP} base (QPA off), 0 .. 63"),
                          VVENC_PRESETS, "faster", _vvenc_args, "never", "vvc_headers", input_pix_fmt="yuv420p10le",
                          time_base_from_filter=False),
    "jpeg": CodecSpec("jpeg", "JPEG stills (libjpeg)", None,
                      Quantiser("quality", *JPEG_QUALITY_RANGE, True, "libjpeg quality 1 .. 100 (Pillow, OpenCV)",
                                (10, 30, 50, 70, 90)),
                      (), None, None, "always", "jpeg_tables"),
    "lossless": CodecSpec("lossless", "resolution only (x264 lossless)", "libx264",
                          Quantiser("qp", 0, 0, False, "x264 QP 0 on every frame: mathematically lossless", (0,)),
                          X26X_PRESETS, "medium", _lossless_args, "always", "lossless"),
}


def parse_rate_control(settings: str | None) -> dict[str, float]:
    """qp, ip ratio and pb ratio from an x264/x265 settings string (empty when absent)."""
    found: dict[str, float] = {}
    for key, pattern in (("qp", r"(?<![\w-])qp=(\d+)"), ("ipratio", r"\bip_?ratio=([\d.]+)"),
                         ("pbratio", r"\bpb_?ratio=([\d.]+)")):
        match = re.search(pattern, settings or "")
        if match:
            found[key] = float(match.group(1))
    return found


def frame_type_qps(qp: int, ipratio: float, pbratio: float, qp_max: int = 51) -> dict[str, int]:
    """QP of each frame type under x264/x265 constant QP (both use the same rule).

    I = qp − 6·log2(ipratio), B = qp + 6·log2(pbratio) (each +0.5 then truncated, clipped to
    the codec's range); B frames kept as references (b-pyramid) get (B + P) // 2. With the
    default ratios 1.40 / 1.30: I = qp−3, P = qp, B = qp+2, reference B = qp+1.
    """
    def clip(value: float) -> int:
        return min(qp_max, max(0, int(value)))

    i_qp = clip(qp - 6 * math.log2(ipratio) + 0.5)
    b_qp = clip(qp + 6 * math.log2(pbratio) + 0.5)
    return {"I": i_qp, "P": qp, "B": b_qp, "B_ref": (b_qp + qp) // 2}


def codec_names() -> str:
    """'libx264, libx265, ...' for messages and help."""
    return ", ".join(CODECS)
