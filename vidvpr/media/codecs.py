"""Facts about the encoders vidvpr drives, written once: presets and quantiser ranges."""

from __future__ import annotations

X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
X26X_QP_RANGE = (0, 51)  # x264 and x265 at 8 bits: QP and CRF both run 0..51
