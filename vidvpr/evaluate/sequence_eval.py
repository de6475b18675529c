"""Sequences in `vidvpr eval`: the manifest's runs (a recording and view in frame order), the checks
on them, the search `--seq-search` asks for, and the predictions file of a sequence length.

The sequences use the descriptors the single-frame search already read: no forward pass is added.
A query's sequence is the query rows of its recording and view before it (the manifest's sampled
frames, as the single-frame rows are), so L frames span L sampled rows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vidvpr.core.atomic import write_text_atomic
from vidvpr.core.errors import BadInput
from vidvpr.core.sidecars import ImportedSourceRecord, SliceSidecar
from vidvpr.dataset.manifest import Manifest
from vidvpr.dataset.records import ManifestRow
from vidvpr.dataset.vpr_names import parse_vpr_filename
from vidvpr.evaluate.config import EvalConfig
from vidvpr.evaluate.sequence import (
    SequenceMatches,
    SequenceSettings,
    full_search_lengths,
    line_fits,
    time_runs,
)
from vidvpr.evaluate.sequence_restricted import restricted_search

LOG = logging.getLogger(__name__)

SEQUENCE_COLUMNS = "query_id,rank,database_id,distance,frames,velocity"


def runs_of(rows: Sequence[ManifestRow]) -> list[np.ndarray]:
    """Row indices per (recording, view), in frame order."""
    return time_runs([(row.recording, row.view) for row in rows], [row.frame for row in rows])


def check_time_order(manifest: Manifest) -> None:
    """BadInput naming the recording when a run's frames are not in time order: frame index and time
    disagree, or the frames are images imported from a VPR-datasets-downloader folder, whose names
    (and so whose frame order) follow the position, not the route."""
    for split, rows in (("database", manifest.database), ("query", manifest.queries)):
        for run in runs_of(rows):
            first = rows[run[0]]
            ordered_by = _name_order(manifest, first.recording, first.view)
            if ordered_by:
                raise BadInput(f"{manifest.directory}: sequences need frames in time order, but recording "
                               f"{first.recording} ({split}) is {ordered_by}; evaluate it without --seq-len")
            times = np.array([rows[i].time_s for i in run])
            backwards = np.flatnonzero(np.diff(times) <= 0)
            if len(backwards):
                a, b = rows[run[backwards[0]]], rows[run[backwards[0] + 1]]
                raise BadInput(f"{manifest.directory}: sequences need frames in time order, but in recording "
                               f"{a.recording} (view {a.view}, {split}) frame {b.frame} is at {b.time_s:g} s, "
                               f"not after frame {a.frame} at {a.time_s:g} s; evaluate it without --seq-len")


def _name_order(manifest: Manifest, recording: str, view: str) -> str | None:
    """Why a view's frame order is not its time order, when its sidecar says so (else None)."""
    listed = manifest.meta.view_input(recording, view)
    sidecar = None if listed is None else SliceSidecar.load_or_none(manifest.root / listed.sidecar.path)
    source = None if sidecar is None else sidecar.source
    if isinstance(source, ImportedSourceRecord) and source.images:
        try:
            parse_vpr_filename(source.images[0])
        except ValueError:
            return None
        return ("images of a VPR-datasets-downloader folder, in the order of their names (their UTM "
                "coordinates), not of the route")
    return None


def fitting_lengths(lengths: Sequence[int], manifest: Manifest,
                    velocity: tuple[float, float] | None = None) -> tuple[list[int], list[str]]:
    """The sequence lengths (1 always among them) at most as long as the longest query run and, at
    the slowest `velocity`, whose lines fit in the longest database run; a note naming those left
    out for each reason. BadInput when the fastest velocity draws lines no database run can hold
    even over 2 frames (a typo such as 0.8..125: lines that can never match, thousands of them)."""
    runs = runs_of(manifest.queries)
    longest = max(len(run) for run in runs)
    wanted = sorted({1, *lengths})
    notes = []
    left = [length for length in wanted if length > longest]
    if left:
        row = manifest.queries[max(runs, key=len)[0]]
        notes.append(f"--seq-len {','.join(map(str, left))}: longer than every query recording (the longest, "
                     f"{row.recording}/{row.view}, has {longest} frames)")
    if velocity is not None and any(length > 1 for length in wanted if length not in left):
        (low, high), database = velocity, runs_of(manifest.database)
        run = max(database, key=len)
        first = manifest.database[run[0]]
        where = f"the longest database recording ({first.recording}/{first.view}, {len(run)} frames)"
        slow = [length for length in wanted if length not in left and not line_fits(low, length, len(run))]
        if slow:
            notes.append(f"--seq-len {','.join(map(str, slow))}: at the slowest --seq-velocity, {low:g}, a line of "
                         f"{slow[0]} frames spans more than {where}")
            left += slow
        if any(length > 1 for length in wanted if length not in left) and not line_fits(high, 2, len(run)):
            raise BadInput(f"--seq-velocity {low:g}..{high:g}: at {high:g} database frames per query frame even a "
                           f"line of 2 frames spans more than {where}; give speeds below {len(run) - 0.5:g}")
    fit = [length for length in wanted if length not in left]
    if notes:
        notes[-1] += f"; evaluated {','.join(map(str, fit))}"
    return fit, notes


def sequence_settings(config: EvalConfig, length: int) -> SequenceSettings:
    return SequenceSettings(length, tuple(config.seq_velocity), config.seq_reverse, config.seq_normalise)


def match_sequences(queries: np.ndarray, database: Sequence[np.ndarray] | np.ndarray, manifest: Manifest,
                    config: EvalConfig, lengths: Sequence[int], k: int) -> list[SequenceMatches]:
    """The best `k` line ends of every query's sequence of each of `lengths` frames, by the search the
    config names (the full search computes the distance matrix once for all lengths)."""
    settings = [sequence_settings(config, length) for length in lengths]
    query_runs, database_runs = runs_of(manifest.queries), runs_of(manifest.database)
    if config.seq_search == "restricted":
        return [restricted_search(queries, database, query_runs, database_runs, setting, k) for setting in settings]
    return full_search_lengths(queries, database, query_runs, database_runs, settings, k)


def write_sequence_predictions(path: Path, query_ids: Sequence[str], database_ids: Sequence[str],
                               matches: SequenceMatches) -> None:
    """``query_id,rank,database_id,distance,frames,velocity``: every query's best line ends (rank from 1),
    the mean distance along the line, the frames its sequence had and the line's velocity (database
    frames per query frame; negative: driven the other way)."""
    lines = [SEQUENCE_COLUMNS]
    for q, (ends, scores, speeds) in enumerate(zip(matches.indices, matches.distances, matches.velocities)):
        for rank, (end, score, speed) in enumerate(zip(ends, scores, speeds), 1):
            if end >= 0:
                lines.append(f"{query_ids[q]},{rank},{database_ids[end]},{float(score):.6g},{matches.frames[q]},"
                             f"{float(speed):.6g}")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, "\n".join(lines) + "\n")
