"""Recall–rate curves (pure): one per model × protocol × codec × resolution, a point per quantiser.

A curve's points are the encoded cells of one (model, protocol, codec, resolution), sorted by
bitrate. The "any" resolution of a codec is its points over every resolution reduced to the
non-dominated ones (the convex-hull idea of per-title encoding: at each rate, the best resolution).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

ANY_RESOLUTION = "any"  # the codec's best cells over all its resolutions


@dataclass(frozen=True)
class Point:
    """One encoded cell as a study sees it: where it sits on the rate axis and its recall@N."""

    cell: str
    codec: str
    resolution: str
    qp: int
    kbps: float
    recall: dict[int, float]
    width: int | None = None
    height: int | None = None
    psnr_y: float | None = None
    ssim_y: float | None = None
    vmaf: float | None = None
    source: int = 0  # index of the eval folder the point came from


@dataclass(frozen=True)
class CurveKey:
    """What a curve holds fixed: the system (model and protocol) and the encoding (codec, resolution)."""

    model: str
    protocol: str
    codec: str
    resolution: str

    @property
    def system(self) -> tuple[str, str]:
        return self.model, self.protocol


@dataclass
class Curve:
    key: CurveKey
    points: list[Point] = field(default_factory=list)

    def rates(self) -> list[float]:
        return [p.kbps for p in self.points]

    def recalls(self, n: int) -> list[float]:
        return [p.recall[n] for p in self.points]


def system_label(model: str, protocol: str, protocols: Iterable[str]) -> str:
    """How a (model, protocol) is named: the protocol only when the study holds several."""
    return model if len(set(protocols)) <= 1 else f"{model} [{protocol}]"


def build_curves(points: Sequence[tuple[str, str, Point]], ns: Sequence[int]) -> dict[CurveKey, Curve]:
    """Curves from (model, protocol, point) triples, each sorted by rate, plus each codec's "any"
    resolution curve when it has several resolutions (non-dominated at the first N in `ns`)."""
    curves: dict[CurveKey, Curve] = {}
    for model, protocol, point in points:
        key = CurveKey(model, protocol, point.codec, point.resolution)
        curves.setdefault(key, Curve(key)).points.append(point)
    for curve in curves.values():
        curve.points.sort(key=lambda p: (p.kbps, p.qp))
    by_codec: dict[tuple[str, str, str], list[Curve]] = {}
    for key, curve in curves.items():
        by_codec.setdefault((key.model, key.protocol, key.codec), []).append(curve)
    for (model, protocol, codec), members in by_codec.items():
        if len(members) > 1:
            pooled = [p for curve in members for p in curve.points]
            hull = sorted(non_dominated(pooled, ns[0]), key=lambda p: (p.kbps, p.qp))
            key = CurveKey(model, protocol, codec, ANY_RESOLUTION)
            curves[key] = Curve(key, hull)
    return dict(sorted(curves.items(), key=lambda item: _order(item[0])))


def _order(key: CurveKey) -> tuple:
    return key.model, key.protocol, key.codec, key.resolution == ANY_RESOLUTION, key.resolution


def dominates(a: Point, b: Point, n: int) -> bool:
    """Whether `a` is at least as cheap and at least as good as `b`, and strictly better in one."""
    return a.kbps <= b.kbps and a.recall[n] >= b.recall[n] and (a.kbps < b.kbps or a.recall[n] > b.recall[n])


def non_dominated(points: Sequence[Point], n: int) -> list[Point]:
    """The points no other point dominates on (bitrate, recall@n), in the given order."""
    return [p for p in points if not any(dominates(q, p, n) for q in points)]


def rising(rates: Sequence[float], recalls: Sequence[float]) -> tuple[list[float], list[float]]:
    """The points (sorted by rate) whose recall exceeds that of every cheaper point: recall as a
    strictly increasing function of rate, which BD-rate integrates over (rate as a function of
    recall). A point that costs more and recalls no more is one nobody would choose."""
    kept_rates: list[float] = []
    kept_recalls: list[float] = []
    for rate, recall in sorted(zip(rates, recalls)):
        if not kept_recalls or recall > kept_recalls[-1]:
            if kept_rates and rate == kept_rates[-1]:
                kept_rates.pop()
                kept_recalls.pop()
            kept_rates.append(rate)
            kept_recalls.append(recall)
    return kept_rates, kept_recalls


def distinct_rates(rates: Sequence[float], recalls: Sequence[float]) -> tuple[list[float], list[float]]:
    """Points sorted by rate with equal rates merged (the best recall kept): BD-recall integrates
    recall over log-rate, which needs strictly increasing rates."""
    best: dict[float, float] = {}
    for rate, recall in zip(rates, recalls):
        best[rate] = max(recall, best.get(rate, recall))
    ordered = sorted(best)
    return ordered, [best[rate] for rate in ordered]
