"""`vidvpr report`: one self-contained HTML file — images embedded as data URIs, no script, no
network (a Content-Security-Policy forbids any fetch), readable on a phone, printable."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vidvpr import __version__
from vidvpr.core.atomic import ensure_writable_dir, removing_new_dirs, write_text_atomic
from vidvpr.core.errors import BadInput
from vidvpr.report import results, sections, sequences
from vidvpr.report.html import page
from vidvpr.report.inputs import ReportInputs, gather
from vidvpr.study.stage import StudyConfig

#: (anchor, title, builder) in reading order
SECTIONS: tuple[tuple[str, str, Callable[[ReportInputs], str]], ...] = (
    ("summary", "Summary", sections.summary),
    ("dataset", "Dataset", sections.dataset),
    ("grid", "Encode grid", sections.grid),
    ("recall", "Recall per model", results.recall),
    ("bjontegaard", "Bjøntegaard deltas", results.bjontegaard),
    ("pareto", "Pareto front and budgets", results.pareto),
    ("sequences", "Sequences: how long at this QP", sequences.sequences),
    ("vpr-bench", "VPR-Bench measures", sequences.vpr_bench),
    ("strips", "Worst-hit cells", results.strips),
    ("provenance", "Provenance", results.provenance),
)


@dataclass(frozen=True)
class ReportConfig:
    """Every `vidvpr report` input; options override what the study recorded."""

    study_dir: Path | None = None
    eval_dirs: tuple[Path, ...] = ()
    manifest_dir: Path | None = None
    enc_dirs: tuple[Path, ...] = ()
    title: str | None = None  # None: "Place recognition under compression: <dataset>"
    study: StudyConfig = field(default_factory=StudyConfig)  # used when no study folder is given


@dataclass
class ReportResult:
    path: Path
    bytes: int
    sections: list[str]
    notes: list[str]


def render(inputs: ReportInputs, title: str | None = None) -> str:
    """The report's HTML text."""
    name = inputs.study.dataset.get("name") or "dataset"
    built = [(anchor, heading, builder(inputs)) for anchor, heading, builder in SECTIONS]
    subtitle = (f"Recall against bitrate at {inputs.study.threshold_m:g} m · models: {', '.join(inputs.study.systems)}"
                f" · made {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    return page(title or f"Place recognition under compression: {name}", subtitle, built,
                f"vidvpr {__version__} — self-contained report: images embedded, no script, no network.")


def build_report(out: Path, config: ReportConfig) -> ReportResult:
    """Gather the inputs, render, write `out` atomically."""
    out = Path(out)
    if out.is_dir():
        raise BadInput(f"--out {out}: is a folder; give the HTML file to write, e.g. {out / 'report.html'}")
    inputs = gather(config.study_dir, config.eval_dirs, config.manifest_dir, config.enc_dirs, config.study)
    text = render(inputs, config.title)
    with removing_new_dirs(out.parent):
        ensure_writable_dir(out.parent)
        write_text_atomic(out, text)
    return ReportResult(out, len(text.encode("utf-8")), [anchor for anchor, _, _ in SECTIONS], inputs.notes)


def section_titles() -> Sequence[str]:
    return [title for _, title, _ in SECTIONS]
