"""Sequences in a study (pure): how long a sequence each cell needs to regain the uncompressed
single-frame recall, the Bjøntegaard deltas of sequences against single frames, and what each
model's descriptors cost (the VPR-Bench measures).

* Needed length: per system (model and protocol) the target is the reference views' recall@N over
  single frames; per encoded cell, the shortest evaluated sequence length whose recall@N reaches
  it, or none ("not within L_max", the longest length evaluated for that cell).
* Sequence deltas: per system, codec and resolution, the curve of sequences of L frames (test)
  against the single-frame curve (anchor) over the same cells: BD-rate says how many bits
  sequences of L frames save at equal recall, BD-recall how much recall they add at equal rate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from vidvpr.evaluate.results import EvalRow
from vidvpr.study.bdelta import bd_rate, bd_recall
from vidvpr.study.compare import _delta, overlap_words, resolution_words
from vidvpr.study.inputs import LoadedEval
from vidvpr.study.records import ComparisonRecord, CostRecord, DeltaRecord, SequenceNeedRecord

Label = Callable[[tuple[str, str]], str]


def _rows_at(evals: Sequence[LoadedEval], threshold_m: float) -> list[EvalRow]:
    """Rows at the threshold, each (model, protocol, cell, seq_len) once (the first folder's)."""
    seen: dict[tuple[str, str, str, int], EvalRow] = {}
    for e in evals:
        for row in e.results.rows:
            if abs(row.threshold_m - threshold_m) <= 1e-9:
                seen.setdefault((row.model, row.protocol, row.cell, row.seq_len), row)
    return list(seen.values())


def needed_lengths(evals: Sequence[LoadedEval], threshold_m: float, ns: Sequence[int],
                   label: Label) -> list[SequenceNeedRecord]:
    """Per system with sequences, per encoded cell and N: the shortest length regaining the target."""
    rows = _rows_at(evals, threshold_m)
    by_cell: dict[tuple[str, str, str], dict[int, EvalRow]] = defaultdict(dict)
    for row in rows:
        by_cell[(row.model, row.protocol, row.cell)][row.seq_len] = row
    out = []
    for (model, protocol, cell), by_length in by_cell.items():
        reference = by_cell.get((model, protocol, "reference"), {}).get(1)
        first = next(iter(by_length.values()))
        if first.qp is None or reference is None or max(by_length) == 1 or first.kbps is None:
            continue
        lengths = sorted(by_length)
        for n in ns:
            target = reference.recall.get(n)
            if target is None or any(n not in row.recall for row in by_length.values()):
                continue
            needed = next((length for length in lengths if by_length[length].recall[n] >= target - 1e-9), None)
            out.append(SequenceNeedRecord(
                system=label((model, protocol)), n=n, codec=first.codec or "libx264",
                resolution=first.resolution or f"{first.width}x{first.height}", cell=cell, qp=first.qp,
                kbps=first.kbps, target=target, recall={length: by_length[length].recall[n] for length in lengths},
                auc_pr={length: by_length[length].auc_pr for length in lengths}, needed=needed,
                reason=None if needed else f"not within L_max = {lengths[-1]}"))
    return sorted(out, key=lambda r: (r.system, r.n, r.codec, r.resolution, r.qp))


def sequence_headline(length: int, n: int, where: str, rate: DeltaRecord, recall: DeltaRecord) -> str:
    """One sentence: what sequences of `length` frames save against single frames, or why no number."""
    if rate.value is not None:
        change = "save" if rate.value < 0 else "cost"
        text = (f"sequences of {length} frames {change} {abs(rate.value):.1f}% of the bits at equal recall@{n} "
                f"({where}; over recall@{n} {rate.low:.3f}–{rate.high:.3f}{overlap_words(rate)})")
    else:
        text = f"sequences of {length} frames against single frames ({where}): no BD-rate, {rate.reason}"
    if recall.value is not None:
        text += (f"; at equal bitrate they recall {100 * recall.value:+.1f} points "
                 f"(over {recall.low:g}–{recall.high:g} kbps{overlap_words(recall)})")
    else:
        text += f"; no BD-recall, {recall.reason}"
    return text + "."


def sequence_comparisons(evals: Sequence[LoadedEval], threshold_m: float, ns: Sequence[int], method: str,
                         label: Label) -> list[ComparisonRecord]:
    """Per system, codec and resolution: every evaluated length L > 1 against single frames."""
    curves: dict[tuple[str, str, str, str], dict[int, list[EvalRow]]] = defaultdict(lambda: defaultdict(list))
    for row in _rows_at(evals, threshold_m):
        if row.qp is not None and row.kbps is not None and row.kbps > 0:
            resolution = row.resolution or f"{row.width}x{row.height}"
            curves[(row.model, row.protocol, row.codec or "libx264", resolution)][row.seq_len].append(row)
    out = []
    for (model, protocol, codec, resolution), by_length in curves.items():
        anchor = {row.cell: row for row in by_length.get(1, [])}
        for length in sorted(by_length):
            test = {row.cell: row for row in by_length[length] if row.cell in anchor}
            if length == 1 or not test:
                continue
            cells = sorted(test, key=lambda c: test[c].kbps or 0.0)
            rates = [float(test[c].kbps or 0.0) for c in cells]
            for n in ns:
                ya, yt = [anchor[c].recall[n] for c in cells], [test[c].recall[n] for c in cells]
                rate, recall = _delta(bd_rate(rates, ya, rates, yt, method), 4), _delta(bd_recall(rates, ya, rates, yt,
                                                                                              method), 6)
                system = label((model, protocol))
                where = ", ".join((system, codec, resolution_words(resolution)))
                out.append(ComparisonRecord(kind="sequence", n=n, anchor="L=1", test=f"L={length}", system=system,
                                            codec=codec, resolution=resolution, bd_rate_pct=rate, bd_recall=recall,
                                            headline=sequence_headline(length, n, where, rate, recall)))
    return out


def costs(evals: Sequence[LoadedEval]) -> list[CostRecord]:
    """Each model's extraction time per image and descriptor bytes, from the first folder recording them."""
    out: dict[str, CostRecord] = {}
    for e in evals:
        for cost in e.results.extraction:
            if cost.model not in out:
                out[cost.model] = CostRecord(**cost.model_dump(), eval_dir=str(e.folder.resolve()))
    return list(out.values())
