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

Degradations apply in the order given: ``--lq resize:240p --lq jpeg:10`` is a small JPEG, as a
phone would send it; ``--lq jpeg:10 --lq resize:240p`` shrinks the JPEG's artefacts away.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from vidvpr.core.errors import BadInput

KNOWN = "jpeg:Q (quality 1-100), resize:NNNp or resize:WxH, or an encode cell RES/qpNN (e.g. 360p/qp40)"
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


Degradation = Jpeg | Resize


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


def _number(text: str, item: str, low: int, high: int, what: str) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise BadInput(f"--lq {item}: {what} must be an integer from {low} to {high}, got {text!r}")
    return int(text)


def parse_degradation(item: str) -> Degradation:
    """'jpeg:Q' or 'resize:NNNp' / 'resize:WxH'; BadInput listing the known kinds otherwise."""
    kind, _, value = item.strip().lower().partition(":")
    if kind == "jpeg":
        return Jpeg(_number(value, item, 1, 100, "JPEG quality"))
    if kind == "resize":
        size = re.fullmatch(r"(\d+)x(\d+)", value)
        if size:
            return Resize(_number(size.group(2), item, 1, 100_000, "height"),
                          _number(size.group(1), item, 1, 100_000, "width"))
        if value.endswith("p"):
            return Resize(_number(value[:-1], item, 1, 100_000, "height"))
        raise BadInput(f"--lq {item}: give the size as NNNp (e.g. resize:240p) or WxH (e.g. resize:320x240)")
    raise BadInput(f"Unknown degradation {item!r}. Use {KNOWN}.")


def parse_low_quality(items: Sequence[str]) -> LowQuality:
    """The `--lq` items (repeatable, or comma-separated) as cells and a degradation chain."""
    parts = [part.strip() for item in items for part in item.split(",") if part.strip()]
    if not parts:
        raise BadInput(f"give what the student sees with --lq: {KNOWN}")
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
        raise BadInput(f"--lq names the same cell twice: {', '.join(cells)}")
    return LowQuality(tuple(cells), tuple(degradations))
