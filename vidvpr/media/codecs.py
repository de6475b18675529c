"""Facts about the encoders vidvpr drives, written once: presets, quantiser ranges and scales.

Pure values and functions: AV1/VP9 quantiser → frame ``base_q_idx``, and the JPEG quantisation
tables libjpeg (and so Pillow and OpenCV) derives from a quality factor.
"""

from __future__ import annotations

X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
X26X_QP_RANGE = (0, 51)  # x264 and x265 at 8 bits: QP and CRF both run 0..51
SVTAV1_PRESETS = tuple(str(p) for p in range(14))  # SVT-AV1 --preset 0 (slowest) .. 13 (fastest)
SVTAV1_QP_RANGE = (1, 63)  # ffmpeg's libsvtav1 takes -qp 1..63 (0 means "SVT's default", 35)
# libvpx VP9 "<deadline>-<cpu-used>": good 0 (slowest) .. 5 (libvpx clamps higher values), realtime 5 .. 8
VP9_PRESETS = tuple(f"good-{n}" for n in range(6)) + tuple(f"realtime-{n}" for n in range(5, 9))
VP9_Q_RANGE = (0, 63)  # libvpx --min-q/--max-q scale
VVENC_PRESETS = ("faster", "fast", "medium", "slow", "slower")
VVENC_QP_RANGE = (0, 63)  # vvenc --qp at 10 bits
JPEG_QUALITY_RANGE = (1, 100)  # libjpeg's jpeg_set_quality scale, as Pillow and OpenCV pass it

# libvpx/libaom `quantizer_to_qindex`: the 0..63 quantiser scale to the 0..255 frame base_q_idx
_Q_TO_QINDEX = tuple(4 * q for q in range(61)) + (244, 249, 255)

# ITU-T T.81 Annex K tables in natural (row-major) order: what libjpeg scales by the quality factor
JPEG_LUMA_BASE = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)
JPEG_CHROMA_BASE = (17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56) + (99,) * 5 + (
    47, 66) + (99,) * 38
# natural-order index of the k-th coefficient a DQT segment stores (zig-zag scan)
JPEG_ZIGZAG = (
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14,
    21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60,
    61, 54, 47, 55, 62, 63,
)


def q_to_qindex(q: int) -> int:
    """The frame-header base_q_idx (0..255) an AV1 or VP9 encoder uses for quantiser `q` (0..63)."""
    if not 0 <= q < len(_Q_TO_QINDEX):
        raise ValueError(f"quantiser must be in [0, 63], got {q}")
    return _Q_TO_QINDEX[q]


def jpeg_quality_scale(quality: int) -> int:
    """libjpeg's `jpeg_quality_scaling`: percentage applied to the base tables (quality 50 → 100)."""
    quality = min(100, max(1, quality))
    return 5000 // quality if quality < 50 else 200 - 2 * quality


def jpeg_quant_tables(quality: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(luma, chroma) quantisation tables, natural order, libjpeg writes for `quality` (baseline: ≤ 255)."""
    scale = jpeg_quality_scale(quality)

    def scaled(base: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(min(255, max(1, (value * scale + 50) // 100)) for value in base)

    return scaled(JPEG_LUMA_BASE), scaled(JPEG_CHROMA_BASE)
