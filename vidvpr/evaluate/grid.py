"""`vidvpr eval`: place recognition across the encode grid — Recall@N for each model and cell.

For every model and cell (the reference views, then each encoded cell), the descriptors of the
manifest's database and query frames are computed (or read from the descriptor cache), the
queries are searched in the database with faiss, and Recall@N is counted at each distance
threshold, overall and per view direction. Two protocols:

* ``same`` (default; LoQI-VPR's, after Tomita et al.): database and queries come from the same
  cell, so compression levels never mismatch and the map costs what the queries cost;
* ``reference``: the map is the reference views, queried by compressed video (the streaming case).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from vidvpr.core.atomic import ensure_writable_dir, refuse_output_inside, removing_new_dirs
from vidvpr.core.errors import BadInput
from vidvpr.core.provenance import command_line, runtime_versions, sha256_file
from vidvpr.core.records import FileRecord
from vidvpr.dataset.manifest import Manifest, load_manifest
from vidvpr.dataset.records import DATA_FILES, ManifestRow
from vidvpr.descriptors.cache import DescriptorCache
from vidvpr.descriptors.extract import ForwardCounter, describe_video, resolve_device, stored_descriptors, stored_rows
from vidvpr.evaluate.cells import GridCell, grid_cells, reference_cell
from vidvpr.evaluate.config import (  # noqa: F401  (re-exported)
    CACHE_DIR,
    DEFAULT_MODEL,
    INPUT_SIZES,
    PROTOCOLS,
    EvalConfig,
    recall_ns,
    validate_config,
)
from vidvpr.evaluate.costs import extraction_costs
from vidvpr.evaluate.models import ModelChoice, described_dim, parse_model_choice, prepare_model, trained_on
from vidvpr.evaluate.plots import RECALL_VS_KBPS, RECALL_VS_QP, plot_recall
from vidvpr.evaluate.precision import precision_recall
from vidvpr.evaluate.recall import (
    counted_ranks,
    filter_positives_by_distance,
    first_positive_rank,
    recall_at_n,
    recall_from_ranks,
)
from vidvpr.evaluate.rerun import model_inputs, output_records, run_params_hash
from vidvpr.evaluate.results import (
    RESULTS_CSV,
    RESULTS_JSON,
    EvalResult,
    EvalResults,
    EvalRow,
    PrecisionRecallRecord,
    SequencesRecord,
    predictions_path,
    write_predictions,
    write_results_csv,
)
from vidvpr.evaluate.search import DatabaseLike, build_index, empty_index, search
from vidvpr.evaluate.seq_plots import (
    PRECISION_RECALL,
    RECALL_VS_SEQ_LEN,
    plot_precision_recall,
    plot_recall_by_length,
)
from vidvpr.evaluate.sequence import NORMALISE_WINDOW
from vidvpr.evaluate.sequence_eval import (
    check_time_order,
    fitting_lengths,
    match_sequences,
    write_sequence_predictions,
)
from vidvpr.media.probe import probe_video
from vidvpr.models import load_model
from vidvpr.models.backends import resolve_backend
from vidvpr.models.inference import Inference, runtime_version
from vidvpr.models.initialise import model_versions
from vidvpr.models.model import VPRModel
from vidvpr.models.registry import model_spec
from vidvpr.run import Executor, InProcessExecutor

LOG = logging.getLogger(__name__)

def _absolute_paths(config: EvalConfig) -> EvalConfig:
    def absolute(path: Path | None) -> Path | None:
        return None if path is None else Path(path).absolute()

    return replace(config, enc_dir=absolute(config.enc_dir), cache_dir=absolute(config.cache_dir),
                   root=absolute(config.root))


def _thresholds(config: EvalConfig, manifest: Manifest) -> list[float]:
    radius = float(manifest.meta.parameters["radius_m"])
    thresholds = sorted(set(config.thresholds_m or (radius,)))
    too_far = [t for t in thresholds if t > radius + 1e-9]
    if too_far:
        raise BadInput(f"--threshold {too_far[0]:g} m exceeds the manifest's positive radius ({radius:g} m); "
                       "rebuild the manifest with a larger --radius")
    return thresholds


def _sequence_lengths(config: EvalConfig, manifest: Manifest) -> tuple[EvalConfig, SequencesRecord | None]:
    """The config with the sequence lengths that fit the query recordings (the others named on
    stderr and in results.json), and how sequences are matched; frames must be in time order."""
    if all(length == 1 for length in config.seq_lens):
        return replace(config, seq_lens=(1,)), None
    check_time_order(manifest)
    lengths, notes = fitting_lengths(config.seq_lens, manifest, config.seq_velocity)
    for note in notes:
        LOG.warning("%s", note)
    return replace(config, seq_lens=tuple(lengths)), SequencesRecord(
        lengths=lengths, velocity=list(config.seq_velocity), reverse=config.seq_reverse,
        normalise=config.seq_normalise, normalise_window=NORMALISE_WINDOW, search=config.seq_search,
        notes=notes)


def video_requests(rows: Sequence[ManifestRow], cell: GridCell, reference: GridCell, config: EvalConfig
                   ) -> list[tuple[list[int], Path, FileRecord, list[int], tuple[int, int] | None]]:
    """Per video of `rows` in `cell`: (positions in `rows`, video, its record, frames, input size), one
    `describe_video` call (one descriptor unit) each."""
    by_video: dict[tuple[str, str], list[int]] = {}
    for i, row in enumerate(rows):
        by_video.setdefault((row.recording, row.view), []).append(i)
    out = []
    for key, members in by_video.items():
        video, record = cell.videos[key]
        size = None
        if config.input_size == "reference" and not cell.is_reference:
            info = probe_video(reference.videos[key][0])  # frames go in at the view's own size
            size = (info.width, info.height)
        out.append((members, video, record, [rows[i].frame for i in members], size))
    return out


def describe_rows(model: VPRModel, rows: Sequence[ManifestRow], cell: GridCell, reference: GridCell,
                  cache: DescriptorCache, config: EvalConfig, device: torch.device, counter: ForwardCounter,
                  on_images: Callable[[int], None] | None) -> np.ndarray:
    """Descriptors of `rows` (in order) taken from `cell`'s videos, each video decoded once."""
    out = np.empty((len(rows), model.descriptor_dim), np.float32)
    for members, video, record, frames, size in video_requests(rows, cell, reference, config):
        out[members] = describe_video(model, video, frames, cache, record, config.batch_size, device, size,
                                      counter, on_images)
    return out


def database_parts(model: VPRModel, rows: Sequence[ManifestRow], cell: GridCell, reference: GridCell,
                   cache: DescriptorCache, config: EvalConfig, device: torch.device,
                   counter: ForwardCounter) -> list[np.ndarray]:
    """Descriptors of `rows` (in order) as slices of the cache's float16 memory maps, one per run of
    rows that are consecutive stored frames of one video: a database is read chunk by chunk into
    the index (`build_index`), never whole into memory."""
    source: list[tuple[int, int]] = [(0, 0)] * len(rows)  # (which memory map, row in it) per row
    stored = []
    for members, video, record, frames, size in video_requests(rows, cell, reference, config):
        for member, position in zip(members, stored_rows(frames)):
            source[member] = (len(stored), position)
        stored.append(stored_descriptors(model, video, frames, cache, record, config.batch_size, device, size,
                                         counter))
    parts, start = [], 0
    for end in range(1, len(rows) + 1):
        if end == len(rows) or source[end] != (source[end - 1][0], source[end - 1][1] + 1):
            which, first = source[start]
            parts.append(stored[which][first:first + end - start])
            start = end
    return parts


def _per_view(ranks: np.ndarray, views: list[str], ns: Sequence[int], unmatched: str) -> dict[str, dict[int, float]]:
    """Recall@N per view direction over the counted queries (views with none counted are left out)."""
    out = {}
    labels = np.asarray(views, dtype=object)
    for view in sorted(set(views)):
        mine = counted_ranks(ranks[labels == view], unmatched)
        if mine.size:
            out[view] = {n: round(value, 6) for n, value in recall_from_ranks(mine, ns).items()}
    return out


def check_distinct_labels(choices: Sequence[ModelChoice], given: Sequence[str]) -> None:
    """BadInput naming two --model values that results would name alike: the same model twice, or two
    checkpoints of one file name in different folders (a label keeps the file's stem only)."""
    seen: dict[str, int] = {}
    for i, choice in enumerate(choices):
        first = seen.setdefault(choice.label, i)
        if first == i:
            continue
        same = choices[first].weights is None or choice.weights is None or \
            choices[first].weights.resolve() == choice.weights.resolve()
        if same:
            raise BadInput(f"--model {given[i]}: given twice")
        raise BadInput(f"--model {given[first]} and --model {given[i]}: results would name both "
                       f"{choice.label!r} (a model is named by its checkpoint's file name); give one checkpoint "
                       "another file name")


def evaluate_grid(manifest_dir: Path, out_dir: Path, config: EvalConfig,
                  on_start: Callable[[int | None], None] | None = None,
                  on_images: Callable[[int], None] | None = None,
                  on_status: Callable[[str], None] | None = None, executor: Executor | None = None) -> EvalResult:
    """Recall@N of every model on every cell of the grid; results, predictions and plots in `out_dir`.

    Descriptors (per model and video) and scores (per model and cell) are units of `executor`
    (default: in-process; see `vidvpr.evaluate.units`); models are prepared here first."""
    started = time.perf_counter()
    validate_config(config)
    requested = config  # as asked: what a rerun compares (vidvpr.evaluate.rerun)
    config = _absolute_paths(config)  # units may run on other machines, in other working folders
    manifest = load_manifest(Path(manifest_dir).absolute(), config.root)
    if not manifest.database:
        raise BadInput(f"{manifest_dir}: the manifest's database is empty")
    ns = recall_ns(config, len(manifest.database))
    choices: list[ModelChoice] = [parse_model_choice(text) for text in config.models]
    check_distinct_labels(choices, config.models)
    device = resolve_device(config.device)
    backend = resolve_backend(config.backend, config.device)
    thresholds = _thresholds(config, manifest)
    cells = grid_cells(manifest, config)
    reference = reference_cell(manifest)
    positives_at = {t: filter_positives_by_distance(manifest.positives,
                                                    [(r.easting_m, r.northing_m) for r in manifest.queries],
                                                    [(r.easting_m, r.northing_m) for r in manifest.database], t)
                    for t in thresholds}
    for threshold, positives in positives_at.items():
        if not any(len(p) for p in positives):
            raise BadInput(f"{manifest_dir}: no query has a positive within {threshold:g} m: recall is undefined")
    out_dir = Path(out_dir).absolute()
    refuse_output_inside(out_dir, manifest.directory, "the manifest folder")
    counter = ForwardCounter()
    loaded = [(choice, load_model(choice.name, choice.weights)) for choice in choices]
    for _, model in loaded:  # what the database size rules out is refused before any forward pass
        empty_index(config.index, len(manifest.database), described_dim(model, manifest, config.pca_dim))
    config, sequences = _sequence_lengths(config, manifest)
    with removing_new_dirs(out_dir):
        ensure_writable_dir(out_dir)
        cache = DescriptorCache(config.cache_dir or out_dir / CACHE_DIR)
        models_record, prepared = [], []
        for choice, model in loaded:
            if on_status:
                on_status(f"prepare {choice.label}")
            model = prepare_model(choice, manifest, reference, out_dir, cache, device, config.batch_size,
                                  config.pca_dim, counter, loaded=model)
            inference = Inference(model, backend, cache.folder)
            models_record.append({"label": choice.label, "name": model.name, "weights": str(choice.weights or ""),
                                  "fingerprint": model.fingerprint, "descriptor_dim": model.descriptor_dim,
                                  "options": model.options, "whitening": model.whiten is not None,
                                  "backend": backend, "cache_key": inference.cache_key,
                                  # the evaluated videos a distilled student trained on (None: not known)
                                  "trained_on": trained_on(choice.weights, cells)})
            prepared.append((choice, inference))
        if on_status:
            on_status("eval")
        from vidvpr.evaluate.units import eval_inputs, run_cells  # they run this module's functions

        executor = executor or InProcessExecutor()
        executor.check_shared([out_dir, ensure_writable_dir(cache.folder)], eval_inputs(manifest, cells))
        rows = run_cells(prepared, cells, reference, manifest, positives_at, cache, config, device, ns, out_dir,
                         counter, executor, on_start, on_images)
        results_csv, results_json = out_dir / RESULTS_CSV, out_dir / RESULTS_JSON
        write_results_csv(results_csv, rows, ns)
        plots = plot_recall([row for row in rows if row.seq_len == 1], out_dir)
        plots += [path for path in (plot_recall_by_length(rows, out_dir), plot_precision_recall(rows, out_dir)) if path]
        for name in {RECALL_VS_QP, RECALL_VS_KBPS, RECALL_VS_SEQ_LEN, PRECISION_RECALL} - {path.name for path in plots}:
            (out_dir / name).unlink(missing_ok=True)  # an earlier evaluation's, which these results would contradict
        strips: list[Path] = []
        if config.save_preds:
            from vidvpr.evaluate.strips import save_prediction_strips

            strips = save_prediction_strips(rows, manifest, cells, out_dir, config.save_preds)
        predictions = list(dict.fromkeys(out_dir / row.predictions for row in rows))
        backbones = [path for path in (model_spec(model.name).packaged_backbone for _, model in prepared) if path]
        EvalResults(
            manifest={"path": str(manifest.directory.resolve()), "name": manifest.meta.name,
                      "files": {name: sha256_file(manifest.directory / name) for name in DATA_FILES},
                      # the view videos' content: the same manifest files may list other videos (re-sliced)
                      "views": {f"{recording}/{view}": record.hash
                                for (recording, view), (_, record) in reference.videos.items()},
                      "radius_m": manifest.meta.parameters["radius_m"],
                      "max_heading_diff_deg": manifest.meta.parameters.get("max_heading_diff_deg")},
            enc_dir=str(Path(config.enc_dir).resolve()) if config.enc_dir else None, protocol=config.protocol,
            input_size=config.input_size, recall_at=ns, thresholds_m=thresholds,
            unmatched_queries=config.unmatched_queries, index=config.index or "Flat (exact L2)",
            models=models_record, rows=rows,
            descriptors={"cache": str(cache.folder), "bytes": cache.size_bytes(), "dtype": "float16"},
            forward_images=counter.images, elapsed_s=round(time.perf_counter() - started, 3),
            versions={**runtime_versions(), **model_versions(), **runtime_version(backend)}, command=command_line(),
            sequences=sequences, extraction=extraction_costs(prepared, cells, reference, manifest, cache, config),
            params_hash=run_params_hash(manifest, cells, requested, backend),
            inputs=model_inputs(out_dir, [backbone() for backbone in backbones]),
            outputs=output_records(out_dir, [results_csv, *predictions, *plots, *strips]),
        ).save(results_json)  # last: it marks the evaluation finished (vidvpr.evaluate.rerun)
    return EvalResult(rows, results_csv, results_json, plots, counter.images, cache.size_bytes(), strips,
                      sequences=sequences, models=models_record)


def _score_cell(choice: ModelChoice, cell: GridCell, database: DatabaseLike, queries: np.ndarray, manifest: Manifest,
                positives_at: dict[float, list[np.ndarray]], config: EvalConfig, ns: list[int],
                out_dir: Path) -> list[EvalRow]:
    """Search the cell's queries in its database, match their sequences of each `config.seq_lens`,
    write the rankings, count recall per threshold and sequence length."""
    index = build_index(database, config.index)
    k = max(ns)
    lengths = [length for length in config.seq_lens if length > 1]
    distances, predictions = search(index, queries, k)
    if predictions.shape[1] < k:  # a database smaller than the largest N: pad with "no prediction"
        pad = k - predictions.shape[1]
        predictions = np.pad(predictions, ((0, 0), (0, pad)), constant_values=-1)
        distances = np.pad(distances, ((0, 0), (0, pad)), constant_values=np.inf)
    query_ids, database_ids = [r.id for r in manifest.queries], [r.id for r in manifest.database]
    path = predictions_path(out_dir, choice.label, cell.name, config.protocol)
    write_predictions(path, query_ids, database_ids, predictions[:, :k], distances[:, :k])
    out = _rows(choice, cell, predictions[:, :k], distances[:, 0], manifest, positives_at, config, ns,
                path.relative_to(out_dir).as_posix(), 1)
    for length, matches in zip(lengths, match_sequences(queries, database, manifest, config, lengths, k)):
        path = predictions_path(out_dir, choice.label, cell.name, config.protocol, length)
        write_sequence_predictions(path, query_ids, database_ids, matches)
        out += _rows(choice, cell, matches.indices, matches.distances[:, 0], manifest, positives_at, config, ns,
                     path.relative_to(out_dir).as_posix(), length)
    return out


def _rows(choice: ModelChoice, cell: GridCell, predictions: np.ndarray, best_distance: np.ndarray,
          manifest: Manifest, positives_at: dict[float, list[np.ndarray]], config: EvalConfig, ns: list[int],
          predictions_file: str, seq_len: int) -> list[EvalRow]:
    """One row per threshold: recall@N, per view, and the VPR-Bench measures of the best matches."""
    views = [row.view for row in manifest.queries]
    out = []
    for threshold, positives in positives_at.items():
        overall = recall_at_n(predictions, positives, ns, config.unmatched_queries)
        ranks = first_positive_rank(predictions, positives)
        counted = ranks >= (0 if config.unmatched_queries == "exclude" else -1)  # as recall@N counts them
        curve = precision_recall(best_distance[counted], ranks[counted] == 1)
        out.append(EvalRow(
            model=choice.label, protocol=config.protocol, cell=cell.name, codec=cell.codec, resolution=cell.resolution,
            width=cell.width, height=cell.height, qp=cell.qp, kbps=cell.kbps, psnr_y=cell.psnr_y, ssim_y=cell.ssim_y,
            vmaf=cell.vmaf, input_size=config.input_size, queries=overall.queries, excluded=overall.excluded,
            unmatched_queries=config.unmatched_queries, threshold_m=threshold,
            recall={n: round(v, 6) for n, v in overall.recall.items()},
            per_view=_per_view(ranks, views, ns, config.unmatched_queries), predictions=predictions_file,
            seq_len=seq_len, auc_pr=round(curve.auc, 6),
            recall_at_100_precision=round(curve.recall_at_full_precision, 6),
            precision_recall=PrecisionRecallRecord.of(curve)))
    return out
