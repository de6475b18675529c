"""Which curves a study compares, and the Bjøntegaard deltas of each pair.

* codec against codec: for one system (model and protocol) and one resolution (or "any"), every
  codec against the anchor codec;
* model against model: for one codec and resolution, every system against the anchor system
  (e.g. the distilled student against its teacher).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from vidvpr.study.bdelta import Delta, bd_rate, bd_recall
from vidvpr.study.curves import ANY_RESOLUTION, Curve, CurveKey
from vidvpr.study.records import ComparisonRecord, DeltaRecord

Label = Callable[[tuple[str, str]], str]


def _delta(delta: Delta, digits: int) -> DeltaRecord:
    rounded = (lambda v: None if v is None else round(v, digits))
    return DeltaRecord(value=rounded(delta.value), low=rounded(delta.low), high=rounded(delta.high),
                       overlap_fraction=None if delta.overlap_fraction is None else round(delta.overlap_fraction, 4),
                       points=list(delta.points), reason=delta.reason, low_overlap=delta.low_overlap,
                       package_warning=delta.package_warning)


def overlap_words(delta: DeltaRecord) -> str:
    """', 62% of the curves' union' (and a warning under half), or '' when there is no fraction."""
    if delta.overlap_fraction is None:
        return ""
    text = f", {100 * delta.overlap_fraction:.0f}% of the curves' union"
    return text + (" — under half: read with care" if delta.low_overlap else "")


def resolution_words(resolution: str) -> str:
    return "best resolution per rate" if resolution == ANY_RESOLUTION else resolution


def headline(test: str, anchor: str, n: int, where: str, rate: DeltaRecord, recall: DeltaRecord) -> str:
    """One sentence with both deltas, the ranges they hold over and those ranges' share of the curves'
    union (flagged under half), or why a delta is missing."""
    if rate.value is not None:
        more = "fewer" if rate.value < 0 else "more"
        text = (f"{test} needs {abs(rate.value):.1f}% {more} bits than {anchor} for the same recall@{n} ({where}; "
                f"over recall@{n} {rate.low:.3f}–{rate.high:.3f}{overlap_words(rate)})")
    else:
        text = f"{test} against {anchor} ({where}): no BD-rate, {rate.reason}"
    if recall.value is not None:
        text += (f"; at equal bitrate it recalls {100 * recall.value:+.1f} points "
                 f"(over {recall.low:g}–{recall.high:g} kbps{overlap_words(recall)})")
    else:
        text += f"; no BD-recall, {recall.reason}"
    return text + "."


def compare(anchor: Curve, test: Curve, n: int, method: str, kind: str, anchor_name: str, test_name: str,
            system: str | None, codec: str | None) -> ComparisonRecord:
    ra, ya, rt, yt = anchor.rates(), anchor.recalls(n), test.rates(), test.recalls(n)
    rate = _delta(bd_rate(ra, ya, rt, yt, method), 4)
    recall = _delta(bd_recall(ra, ya, rt, yt, method), 6)
    where = ", ".join(part for part in (system, codec, resolution_words(anchor.key.resolution)) if part)
    return ComparisonRecord(kind=kind, n=n, anchor=anchor_name, test=test_name, system=system, codec=codec,
                            resolution=anchor.key.resolution, bd_rate_pct=rate, bd_recall=recall,
                            headline=headline(test_name, anchor_name, n, where, rate, recall))


def codec_comparisons(curves: dict[CurveKey, Curve], ns: Sequence[int], anchor_codec: str | None, method: str,
                      label: Label) -> list[ComparisonRecord]:
    """Each system × resolution with several codecs: every codec against the anchor codec
    (groups without it: against their first codec)."""
    groups: dict[tuple[str, str, str], dict[str, Curve]] = {}
    for key, curve in curves.items():
        groups.setdefault((key.model, key.protocol, key.resolution), {})[key.codec] = curve
    out = []
    for (model, protocol, _), by_codec in groups.items():
        if len(by_codec) < 2:
            continue
        anchor = anchor_codec if anchor_codec in by_codec else min(by_codec)
        for codec, curve in sorted(by_codec.items()):
            if codec != anchor:
                for n in ns:
                    out.append(compare(by_codec[anchor], curve, n, method, "codec", anchor, codec,
                                       label((model, protocol)), None))
    return out


def model_comparisons(curves: dict[CurveKey, Curve], ns: Sequence[int], anchor_system: tuple[str, str] | None,
                      method: str, label: Label) -> list[ComparisonRecord]:
    """Each codec × resolution with several systems: every system against the anchor system."""
    groups: dict[tuple[str, str], dict[tuple[str, str], Curve]] = {}
    for key, curve in curves.items():
        groups.setdefault((key.codec, key.resolution), {})[key.system] = curve
    out = []
    for (codec, _), by_system in groups.items():
        if anchor_system not in by_system or len(by_system) < 2:
            continue
        for system, curve in by_system.items():
            if system != anchor_system:
                for n in ns:
                    out.append(compare(by_system[anchor_system], curve, n, method, "model", label(anchor_system),
                                       label(system), None, codec))
    return out
