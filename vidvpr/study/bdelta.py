"""Bjøntegaard deltas on recall–rate curves (pure), computed with the `bjontegaard` package
(FAU-LMS, https://github.com/FAU-LMS/bjontegaard).

* BD-rate: ``bjontegaard.bd_rate(rate_anchor, recall_anchor, rate_test, recall_test, method)``:
  log10-rate is interpolated as a function of recall and the mean difference over the recall
  range both curves cover is returned as a percentage, ``(10 ** mean - 1) * 100``. Negative: the
  test needs that many percent fewer bits than the anchor for the same recall.
* BD-recall: ``bjontegaard.bd_psnr(rate_anchor, recall_anchor, rate_test, recall_test, method)``:
  the package's BD-PSNR, i.e. recall interpolated over log10-rate and averaged over the rate range
  both curves cover (the metric need not be PSNR); positive: the test recalls more at equal rate.

Interpolation: ``pchip`` by default (piecewise cubic Hermite, scipy's PchipInterpolator: monotone,
no overshoot; the package's recommendation), ``cubic`` (the third-order polynomial fit of the
original VCEG-M33) or ``akima``. Each delta is integrated only over the overlap of the two curves:
curves that do not overlap give no number but a reason, never an extrapolation. The overlap's
share of the union of both ranges goes with every delta; one averaged over less than
`LOW_OVERLAP` of it is flagged, and what the package warns (below 75 % overlap, its default
``min_overlap``) is recorded with the delta rather than silenced.

BD-rate needs recall to rise with rate, so it uses each curve's rising points (`curves.rising`);
BD-recall uses every point (equal rates merged). The points used are counted in the result.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from vidvpr.core.errors import BadInput
from vidvpr.study.curves import distinct_rates, rising

PACKAGE = "bjontegaard"
BD_RATE_FUNCTION = "bjontegaard.bd_rate"
BD_RECALL_FUNCTION = "bjontegaard.bd_psnr"


@dataclass(frozen=True)
class Interpolation:
    min_points: int
    description: str


INTERPOLATIONS = {
    "pchip": Interpolation(2, "piecewise cubic Hermite interpolation (scipy PchipInterpolator), monotone between "
                              "points; the bjontegaard package's recommended method"),
    "cubic": Interpolation(4, "third-order polynomial fit (numpy.polyfit), the original VCEG-M33 method"),
    "akima": Interpolation(2, "Akima spline (scipy Akima1DInterpolator; linear below 3 points)"),
}
DEFAULT_INTERPOLATION = "pchip"
NOT_POSITIVE = "a bitrate is not positive (no log-rate)"
LOW_OVERLAP = 0.5  # deltas averaged over less than this share of the curves' union are flagged


@dataclass(frozen=True)
class Delta:
    """One Bjøntegaard delta: its value, or why there is none; the overlap it is averaged over
    (recall for BD-rate, kbps for BD-recall) and how many points of each curve it used."""

    value: float | None
    low: float | None
    high: float | None
    overlap_fraction: float | None  # the overlap's share of the union of both ranges
    points: tuple[int, int]
    reason: str | None = None
    package_warning: str | None = None  # what the bjontegaard package warned while computing it

    @property
    def low_overlap(self) -> bool | None:
        """Whether the value holds over less than `LOW_OVERLAP` of the union (None without a value)."""
        if self.value is None or self.overlap_fraction is None:
            return None
        return self.overlap_fraction < LOW_OVERLAP


def check_interpolation(method: str) -> Interpolation:
    if method not in INTERPOLATIONS:
        raise BadInput(f"Unknown interpolation {method!r}. Use {', '.join(INTERPOLATIONS)}.")
    return INTERPOLATIONS[method]


def _overlap(a: Sequence[float], b: Sequence[float], log: bool) -> tuple[float, float, float]:
    """[low, high] both cover, and its share of the union measured on the axis integrated over."""
    low, high = max(min(a), min(b)), min(max(a), max(b))
    axis = math.log10 if log else (lambda v: v)
    union = axis(max(max(a), max(b))) - axis(min(min(a), min(b)))
    return low, high, (max(axis(high) - axis(low), 0.0) / union if union > 0 and high > low else 0.0)


def _precheck(anchor: Sequence[float], test: Sequence[float], axis: str, unit_fmt: str, method: str,
              what: str, log: bool = False) -> tuple[float, float, float] | Delta:
    """The overlap on `axis`, or a Delta carrying the reason no value can be given."""
    points = (len(anchor), len(test))
    need = INTERPOLATIONS[method].min_points
    if min(points) < need:
        return Delta(None, None, None, None, points,
                     f"too few {what} points for {method} interpolation (anchor {points[0]}, test {points[1]}; "
                     f"need {need} each)")
    low, high, fraction = _overlap(anchor, test, log)
    if not high > low:
        ranges = (f"anchor {unit_fmt.format(min(anchor))}–{unit_fmt.format(max(anchor))}, "
                  f"test {unit_fmt.format(min(test))}–{unit_fmt.format(max(test))}")
        return Delta(None, None, None, 0.0, points, f"the curves do not overlap in {axis} ({ranges}); "
                                                      "not extrapolated")
    return low, high, fraction


def _call(function: str, args: tuple, method: str) -> tuple[float, str | None]:
    """The package's value, and its warnings joined (it warns below its default 75 % overlap)."""
    import bjontegaard  # imports pyplot: only when a delta is computed

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = getattr(bjontegaard, function.split(".")[1])(*args, method=method, require_matching_points=False)
    said = "; ".join(dict.fromkeys(" ".join(str(w.message).split()) for w in caught))
    return float(value), said or None


def bd_rate(rates_anchor: Sequence[float], recalls_anchor: Sequence[float], rates_test: Sequence[float],
            recalls_test: Sequence[float], method: str = DEFAULT_INTERPOLATION) -> Delta:
    """BD-rate in percent (negative: the test saves bits at equal recall), over the overlap in recall."""
    check_interpolation(method)
    ra, ya = rising(rates_anchor, recalls_anchor)
    rt, yt = rising(rates_test, recalls_test)
    if min(ra + rt, default=1.0) <= 0:
        return Delta(None, None, None, None, (len(ra), len(rt)), NOT_POSITIVE)
    checked = _precheck(ya, yt, "recall", "{:.3f}", method, "rising-recall")
    if isinstance(checked, Delta):
        return checked
    low, high, fraction = checked
    value, said = _call(BD_RATE_FUNCTION, (ra, ya, rt, yt), method)
    return _finite(value, low, high, fraction, (len(ra), len(rt)), said)


def bd_recall(rates_anchor: Sequence[float], recalls_anchor: Sequence[float], rates_test: Sequence[float],
              recalls_test: Sequence[float], method: str = DEFAULT_INTERPOLATION) -> Delta:
    """BD-recall as a fraction (positive: the test recalls more at equal rate), over the overlap in kbps."""
    check_interpolation(method)
    ra, ya = distinct_rates(rates_anchor, recalls_anchor)
    rt, yt = distinct_rates(rates_test, recalls_test)
    if min(ra + rt, default=1.0) <= 0:
        return Delta(None, None, None, None, (len(ra), len(rt)), NOT_POSITIVE)
    checked = _precheck(ra, rt, "bitrate", "{:g} kbps", method, "distinct-rate", log=True)
    if isinstance(checked, Delta):
        return checked
    low, high, fraction = checked
    value, said = _call(BD_RECALL_FUNCTION, (ra, ya, rt, yt), method)
    return _finite(value, low, high, fraction, (len(ra), len(rt)), said)


def _finite(value: float, low: float, high: float, fraction: float, points: tuple[int, int],
            said: str | None) -> Delta:
    if not math.isfinite(value):
        return Delta(None, low, high, fraction, points, "the interpolation gave no finite value", said)
    return Delta(value, low, high, fraction, points, package_warning=said)
