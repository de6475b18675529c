"""What the student sees: `--lq` choices, parsed and applied (pure functions on RGB uint8 images).

An `--lq` item is either an encode cell of a vidvpr dataset, ``RES/qpNN`` (``CODEC/RES/qpNN`` for
another codec than libx264, as `vidvpr eval` names cells), whose frames are decoded as they are,
or a degradation applied on the fly to the image (cell frame or clean image):

* ``jpeg:Q`` — JPEG at quality Q (1-100, the IJG scale that OpenCV, libjpeg and PIL share; 4:2:0).
* ``resize:240p`` — downscaled (area interpolation) to 240 rows, width in proportion;
  ``resize:WxH`` to exactly W×H. The student sees the small image at its own size: it is never
  scaled back up, as in the paper, where the student sees a smaller frame than the teacher (ICKD
  compares channel correlations, which do not depend on the spatial size). An image already at
  or below the size is left as it is (never upscaled).

* ``lowlight:EV`` — the scene EV stops darker (EV < 0, e.g. ``lowlight:-3``, an eighth of the
  light): the image is taken to linear light (sRGB decoding), scaled by 2^EV, given the sensor
  noise of a dark exposure — Poisson-Gaussian, variance ``LOWLIGHT_SHOT · x + LOWLIGHT_READ`` at
  linear level x (Foi et al. 2008's raw model) — and encoded again with the camera's gamma (sRGB).
* ``noise:SIGMA`` — Gaussian noise of standard deviation SIGMA 8-bit levels, independent per pixel
  and channel, added to the displayed values.
* ``blur:PX`` — Gaussian blur of standard deviation PX pixels (defocus, motion in the dark).

Degradations apply in the order given: ``--lq resize:240p --lq jpeg:10`` is a small JPEG, as a
phone would send it; ``--lq jpeg:10 --lq resize:240p`` shrinks the JPEG's artefacts away;
``--lq lowlight:-3 --lq jpeg:30`` a dark frame as a camera would compress it. They combine with
encode cells too (applied to each cell's frame). The noise of an image is drawn from a generator
seeded by the image's own bytes and the degradation: the same image always gets the same noise, so
a training run (and its resumption) is reproducible, and different images get independent noise.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from vidvpr.core.errors import BadInput
from vidvpr.core.text import printable

KNOWN = ("jpeg:Q (quality 1-100), resize:NNNp or resize:WxH, lowlight:EV (-10 to 0), noise:SIGMA (levels), "
         "blur:PX (pixels), or an encode cell RES/qpNN (e.g. 360p/qp40)")
LOWLIGHT_SHOT = 4e-4   # shot noise: variance per unit of linear signal (0-1 scale)
LOWLIGHT_READ = 6.25e-6  # read noise variance (σ 0.0025 of full scale): 4 levels of grain at -3 EV on mid-grey
MAX_LOWLIGHT_EV = 10.0
MAX_NOISE_SIGMA = 100.0
MAX_BLUR_PX = 50.0
CELL_PATTERN = re.compile(r"^(?:(?P<codec>[A-Za-z0-9_-]+)/)?(?P<res>[A-Za-z0-9]+)/qp(?P<qp>\d{1,2})$")


@dataclass(frozen=True)
class Jpeg:
    """JPEG compression at `quality` (1-100)."""

    quality: int

    @property
    def name(self) -> str:
        return f"jpeg:{self.quality}"

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        ok, buffer = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:  # pragma: no cover - OpenCV fails only without JPEG support
            raise RuntimeError("OpenCV could not encode a JPEG")
        return np.ascontiguousarray(cv2.imdecode(buffer, cv2.IMREAD_COLOR)[..., ::-1])


@dataclass(frozen=True)
class Resize:
    """Downscale to `height` rows (width in proportion), or to exactly `width` × `height`."""

    height: int
    width: int | None = None

    @property
    def name(self) -> str:
        return f"resize:{self.height}p" if self.width is None else f"resize:{self.width}x{self.height}"

    def size_for(self, width: int, height: int) -> tuple[int, int]:
        """(W, H) an image of `width` × `height` becomes (never larger than it was)."""
        if self.width is not None:
            return min(self.width, width), min(self.height, height)
        if height <= self.height:
            return width, height
        return max(1, round(width * self.height / height)), self.height

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        size = self.size_for(rgb.shape[1], rgb.shape[0])
        if size == (rgb.shape[1], rgb.shape[0]):
            return rgb
        return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _srgb_decode(v: np.ndarray) -> np.ndarray:
    """The sRGB decoding (IEC 61966-2-1) of display values in [0, 1], in float64."""
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


SRGB_TO_LINEAR = _srgb_decode(np.arange(256) / 255.0).astype(np.float32)  # per 8-bit code
LINEAR_STEPS = 1 << 16  # linear_to_srgb's table: the nearest code to each of 65,536 even linear levels
# the linear levels halfway (in display values) between consecutive codes: rounding to the nearest code
_THRESHOLDS = _srgb_decode((np.arange(1, 256) - 0.5) / 255.0)
LINEAR_TO_SRGB = np.searchsorted(_THRESHOLDS, np.arange(LINEAR_STEPS) / (LINEAR_STEPS - 1), side="right").astype(np.uint8)


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """Linear light (0-1, float32) of 8-bit sRGB values (IEC 61966-2-1)."""
    return SRGB_TO_LINEAR[np.asarray(rgb, dtype=np.uint8)]


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """8-bit sRGB values (uint8) of linear light levels (clipped to [0, 1]): the sRGB encoding rounded to
    the nearest code, through a table of 65,536 linear levels (a level within 1/131070 of a halfway
    point may round the other way; a float32 power function errs as often)."""
    index = np.clip(np.asarray(linear, dtype=np.float32) * np.float32(LINEAR_STEPS - 1) + np.float32(0.5),
                    0, LINEAR_STEPS - 1)
    return LINEAR_TO_SRGB[index.astype(np.int32)]


def _generator(rgb: np.ndarray, name: str) -> np.random.Generator:
    """A generator seeded by the image's bytes and the degradation's name (same image, same noise)."""
    digest = hashlib.blake2b(np.ascontiguousarray(rgb).tobytes(), digest_size=16, person=b"vidvpr-degrade")
    digest.update(name.encode())
    return np.random.default_rng(np.frombuffer(digest.digest(), dtype=np.uint32))


@dataclass(frozen=True)
class LowLight:
    """`ev` stops less light (ev < 0), in linear light, then a dark exposure's sensor noise and the camera's gamma."""

    ev: float

    @property
    def name(self) -> str:
        return f"lowlight:{self.ev:g}"

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        signal = srgb_to_linear(rgb) * np.float32(2.0 ** self.ev)
        std = np.sqrt(np.float32(LOWLIGHT_SHOT) * signal + np.float32(LOWLIGHT_READ))
        noise = _generator(rgb, self.name).standard_normal(signal.shape, dtype=np.float32)
        return linear_to_srgb(signal + std * noise)


@dataclass(frozen=True)
class Noise:
    """Gaussian noise of `sigma` 8-bit levels on the displayed values, per pixel and channel."""

    sigma: float

    @property
    def name(self) -> str:
        return f"noise:{self.sigma:g}"

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        noise = _generator(rgb, self.name).standard_normal(rgb.shape, dtype=np.float32) * np.float32(self.sigma)
        return np.clip(np.rint(rgb.astype(np.float32) + noise), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Blur:
    """Gaussian blur of standard deviation `sigma_px` pixels (the kernel reaches 3 sigma; borders reflected)."""

    sigma_px: float

    @property
    def name(self) -> str:
        return f"blur:{self.sigma_px:g}"

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        size = 2 * int(np.ceil(3 * self.sigma_px)) + 1
        return cv2.GaussianBlur(rgb, (size, size), sigmaX=self.sigma_px, sigmaY=self.sigma_px,
                                borderType=cv2.BORDER_REFLECT_101)


Degradation = Jpeg | Resize | LowLight | Noise | Blur


@dataclass(frozen=True)
class LowQuality:
    """The parsed `--lq` items: encode cells (each a source of student frames) and a degradation chain."""

    cells: tuple[str, ...] = ()
    degradations: tuple[Degradation, ...] = ()

    @property
    def names(self) -> list[str]:
        return [*self.cells, *(d.name for d in self.degradations)]

    def degrade(self, rgb: np.ndarray) -> np.ndarray:
        """`rgb` through every degradation, in order."""
        for step in self.degradations:
            rgb = step(rgb)
        return rgb

    def idle_resizes(self, width: int, height: int) -> list[str]:
        """The `resize:` steps that leave an image of `width` × `height` as it is (they never upscale),
        following its size through the chain: `resize:240p` on the small demo's 80×32 views is no
        degradation at all."""
        idle = []
        for step in self.degradations:
            if isinstance(step, Resize):
                size = step.size_for(width, height)
                if size == (width, height):
                    idle.append(step.name)
                width, height = size
        return idle


def _number(text: str, item: str, low: int, high: int, what: str) -> int:
    # isdecimal, not isdigit ("²" is a digit int() refuses); past 18 digits int() may refuse it and no range holds it
    if not text.isdecimal() or len(text.lstrip("0")) > 18 or not low <= int(text) <= high:
        raise BadInput(f"--lq {printable(item)}: {what} must be an integer from {low} to {high}, got {printable(repr(text))}")
    return int(text)


def _real(text: str, item: str, low: float, high: float, what: str, low_open: bool = False,
          high_open: bool = False) -> float:
    """A finite decimal number within [low, high] (ends open when asked), or BadInput naming the item."""
    try:
        value = float(text) if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)", text) else None
    except ValueError:  # pragma: no cover - the pattern admits only numbers
        value = None
    inside = value is not None and (low < value if low_open else low <= value) and (
        value < high if high_open else value <= high)
    if not inside:
        span = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise BadInput(f"--lq {printable(item)}: {what} must be a number in {span}, got {printable(repr(text))}")
    assert value is not None
    return value


def _resize(value: str, item: str) -> Resize:
    size = re.fullmatch(r"(\d+)x(\d+)", value)
    if size:
        return Resize(_number(size.group(2), item, 1, 100_000, "height"), _number(size.group(1), item, 1, 100_000, "width"))
    if value.endswith("p"):
        return Resize(_number(value[:-1], item, 1, 100_000, "height"))
    raise BadInput(f"--lq {printable(item)}: give the size as NNNp (e.g. resize:240p) or WxH (e.g. resize:320x240)")


# kind -> (value, the whole item) -> the degradation, or BadInput naming the item
PARSERS: dict[str, Callable[[str, str], Degradation]] = {
    "jpeg": lambda value, item: Jpeg(_number(value, item, 1, 100, "JPEG quality")),
    "resize": _resize,
    "lowlight": lambda value, item: LowLight(_real(value, item, -MAX_LOWLIGHT_EV, 0.0,
                                                   "EV (stops of light, negative darkens)", high_open=True)),
    "noise": lambda value, item: Noise(_real(value, item, 0.0, MAX_NOISE_SIGMA, "SIGMA (8-bit levels)",
                                             low_open=True)),
    "blur": lambda value, item: Blur(_real(value, item, 0.0, MAX_BLUR_PX, "PX (pixels)", low_open=True)),
}


def parse_degradation(item: str) -> Degradation:
    """'jpeg:Q', 'resize:NNNp' / 'resize:WxH', 'lowlight:EV', 'noise:SIGMA' or 'blur:PX'; BadInput
    listing the known kinds otherwise."""
    kind, _, value = item.strip().lower().partition(":")
    if kind not in PARSERS:
        raise BadInput(f"Unknown degradation {printable(repr(item))}. Use {KNOWN}.")
    return PARSERS[kind](value, item)


def parse_low_quality(items: Sequence[str]) -> LowQuality:
    """The `--lq` items (repeatable, or comma-separated) as cells and a degradation chain; an empty item
    among others ('jpeg:10,,blur:1', or `--lq ""` beside another) is a typo, refused like '5,,10'."""
    parts = [part.strip() for item in items for part in item.split(",")]
    if not any(parts):
        raise BadInput(f"give what the student sees with --lq: {KNOWN}")
    if "" in parts:
        raise BadInput(f"--lq has an empty item in {printable(repr(','.join(items)))} (two commas in a row, one at an "
                       "end, or an empty --lq)")
    cells: list[str] = []
    degradations: list[Degradation] = []
    for part in parts:
        if "/" in part and ":" not in part:  # a cell, named as `vidvpr eval` names it (checked against the grid)
            match = CELL_PATTERN.match(part)
            name = f"{match['res']}/qp{int(match['qp']):02d}" if match else part
            cells.append(name if not match or match["codec"] in (None, "libx264") else f"{match['codec']}/{name}")
        else:
            degradations.append(parse_degradation(part))
    if len(set(cells)) != len(cells):
        raise BadInput(f"--lq names the same cell twice: {printable(', '.join(cells))}")
    return LowQuality(tuple(cells), tuple(degradations))
