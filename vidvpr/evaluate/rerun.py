"""Whether `vidvpr eval` has anything to do, decided without loading a model (no torch, no faiss).

A finished evaluation's ``results.json`` (written last) records, beside the results:

* ``params_hash``: a hash of everything the results follow from that can be read without a
  model: the manifest's files (content hashes), every cell of the grid (its videos' content
  hashes, rate and quality), the models as named and their checkpoints' content hashes, every
  option as asked but those that change no result (`NEUTRAL_OPTIONS`: batch size, folders), the
  backend that runs, and the versions of this code (`EVAL_OUTPUT_VERSION`, the models'
  fingerprint version, vidvpr's);
* ``inputs``: the files the models were prepared from (``EVAL/models/``: NetVLAD
  initialisations, PCA-whitening; packaged backbone weights), by size and content hash;
* ``outputs``: results.csv, the predictions, plots and strips, by size and content hash.

A rerun with the same hash, whose inputs and outputs are all as recorded (content hashes are
cached by file identity, so checking costs a stat per file), returns the recorded result and
writes nothing; anything else runs the evaluation (`vidvpr.evaluate.grid.evaluate_grid`), whose
descriptors may still come from the cache.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidvpr import __version__
from vidvpr.core.atomic import is_partial_name
from vidvpr.core.errors import BadInput
from vidvpr.core.provenance import params_hash, sha256_file
from vidvpr.core.records import FileRecord
from vidvpr.dataset.manifest import Manifest, load_manifest
from vidvpr.dataset.records import DATA_FILES
from vidvpr.descriptors.cache import DescriptorCache
from vidvpr.evaluate.cells import GridCell, grid_cells
from vidvpr.evaluate.config import CACHE_DIR, MODELS_DIR, EvalConfig, validate_config
from vidvpr.evaluate.results import RESULTS_CSV, RESULTS_JSON, EvalResult, EvalResults
from vidvpr.models.backends import resolve_backend
from vidvpr.models.versions import FINGERPRINT_VERSION

if TYPE_CHECKING:
    from vidvpr.run import Executor

LOG = logging.getLogger(__name__)

# Bump when a change to evaluation changes the results of the same inputs and options (search,
# recall, positives, what a row holds): evaluations recorded with an older version are run again.
EVAL_OUTPUT_VERSION = 1


def _cell_identity(cell: GridCell) -> dict[str, Any]:
    return {"name": cell.name, "codec": cell.codec, "resolution": cell.resolution, "qp": cell.qp,
            "size": [cell.width, cell.height], "kbps": cell.kbps, "psnr_y": cell.psnr_y, "ssim_y": cell.ssim_y,
            "vmaf": cell.vmaf, "videos": sorted([*key, record.hash] for key, (_, record) in cell.videos.items())}


def _model_identity(text: str) -> dict[str, Any]:
    """A --model as results name it (`ModelChoice.label`) and the content hash of its checkpoint
    (OSError when it cannot be read)."""
    name, separator, weights = text.partition(":")
    if not (separator and weights):
        return {"label": name, "weights": None}
    return {"label": f"{name}:{Path(weights).stem}", "weights": sha256_file(Path(weights))}


# options that change no result (or enter the hash another way: the models, the resolved backend)
NEUTRAL_OPTIONS = ("models", "enc_dir", "cache_dir", "root", "batch_size", "backend")


def _as_evaluated(config: EvalConfig) -> EvalConfig:
    """`config` with its lists as the evaluation reads them: recall@N, thresholds and sequence lengths
    sorted and once each (1 always among the lengths); with single frames only, the sequence options
    (which then change nothing) at their defaults. `--seq-len 20,10,5` is `1,5,10,20`."""
    def ordered(values: tuple | None) -> tuple | None:
        return None if values is None else tuple(sorted(set(values)))

    lengths = tuple(sorted({1, *config.seq_lens}))
    config = replace(config, recall_at=ordered(config.recall_at), thresholds_m=ordered(config.thresholds_m),
                     seq_lens=lengths)
    if lengths == (1,):
        defaults = EvalConfig()
        config = replace(config, seq_velocity=defaults.seq_velocity, seq_reverse=defaults.seq_reverse,
                         seq_normalise=defaults.seq_normalise, seq_search=defaults.seq_search)
    return config


def run_params_hash(manifest: Manifest, cells: Sequence[GridCell], config: EvalConfig, backend: str) -> str:
    """The hash `results.json` records of what its results follow from (see the module docstring):
    every option but `NEUTRAL_OPTIONS`, as asked, its lists in the order evaluated (`_as_evaluated`)."""
    options = {name: value for name, value in asdict(_as_evaluated(config)).items() if name not in NEUTRAL_OPTIONS}
    return params_hash({
        "schema": EvalResults.SCHEMA, "eval_output_version": EVAL_OUTPUT_VERSION,
        "fingerprint_version": FINGERPRINT_VERSION, "vidvpr": __version__,
        "manifest": {name: sha256_file(manifest.directory / name) for name in DATA_FILES},
        "cells": [_cell_identity(cell) for cell in cells],
        "models": [_model_identity(text) for text in config.models],
        "options": {**options, "backend": backend},
    })


def model_inputs(out_dir: Path, backbones: Sequence[Path]) -> list[FileRecord]:
    """Records of the files the evaluated models were prepared from: everything in ``OUT/models/``
    (paths relative to `out_dir`) and the packaged `backbones` (absolute paths)."""
    folder = Path(out_dir) / MODELS_DIR
    made = sorted(p for p in folder.rglob("*") if p.is_file() and not is_partial_name(p.name)) if folder.is_dir() else []
    return [*(FileRecord.of(path, out_dir) for path in made),
            *(FileRecord.of(Path(path).absolute()) for path in dict.fromkeys(backbones))]


def output_records(out_dir: Path, paths: Sequence[Path]) -> list[FileRecord]:
    """Records of an evaluation's output files, paths relative to `out_dir`."""
    return [FileRecord.of(Path(path), out_dir) for path in paths]


def _intact(out_dir: Path, records: Sequence[FileRecord]) -> bool:
    return all(record.matches(Path(record.path) if Path(record.path).is_absolute() else out_dir / record.path,
                              check_hash=True) for record in records)


def finished_evaluation(manifest_dir: Path, out_dir: Path, config: EvalConfig) -> EvalResult | None:
    """The result `out_dir` holds when it is the finished evaluation of these inputs and options
    with every input and output as recorded; None when anything must be (re)computed or is unclear
    (`evaluate_grid` then runs and reports any problem)."""
    out_dir = Path(out_dir).absolute()
    recorded = EvalResults.load_or_none(out_dir / RESULTS_JSON)
    if recorded is None or recorded.params_hash is None:
        return None
    try:
        validate_config(config)
        backend = resolve_backend(config.backend, config.device)
        manifest = load_manifest(Path(manifest_dir).absolute(), config.root)
        cells = grid_cells(manifest, config)
        wanted = run_params_hash(manifest, cells, config, backend)
    except (BadInput, OSError) as exc:  # the full run words the problem
        LOG.debug("not a finished evaluation: %s", exc)
        return None
    if wanted != recorded.params_hash:
        return None
    present = {p.relative_to(out_dir).as_posix() for p in (out_dir / MODELS_DIR).rglob("*")
               if p.is_file() and not is_partial_name(p.name)} if (out_dir / MODELS_DIR).is_dir() else set()
    if present != {r.path for r in recorded.inputs if not Path(r.path).is_absolute()}:
        return None  # a model file added or removed since: prepare the models again
    if not _intact(out_dir, recorded.inputs) or not _intact(out_dir, recorded.outputs):
        return None
    LOG.info("%s: evaluation of the same inputs and options already done, skipping", out_dir)
    for note in recorded.sequences.notes if recorded.sequences else []:
        LOG.warning("%s", note)  # as the run that made it said: the lengths left out, and why
    cache = DescriptorCache(Path(config.cache_dir).absolute() if config.cache_dir else out_dir / CACHE_DIR)
    outputs = [out_dir / record.path for record in recorded.outputs]
    return EvalResult(rows=recorded.rows, results_csv=out_dir / RESULTS_CSV, results_json=out_dir / RESULTS_JSON,
                      plots=[path for path in outputs if path.parent == out_dir and path.suffix == ".png"],
                      forward_images=0, cache_bytes=cache.size_bytes(),
                      strips=[path for path in outputs if path.parent != out_dir and path.suffix == ".png"],
                      skipped=True, sequences=recorded.sequences, models=recorded.models)


def evaluate(manifest_dir: Path, out_dir: Path, config: EvalConfig,
             on_start: Callable[[int | None], None] | None = None,
             on_images: Callable[[int], None] | None = None,
             on_status: Callable[[str], None] | None = None, executor: Executor | None = None) -> EvalResult:
    """`vidvpr eval`: the recorded result when `out_dir` holds this evaluation finished
    (`finished_evaluation`), else `evaluate_grid`, which loads torch and faiss only now."""
    done = finished_evaluation(manifest_dir, out_dir, config)
    if done is not None:
        return done
    from vidvpr.evaluate.grid import evaluate_grid

    return evaluate_grid(manifest_dir, out_dir, config, on_start=on_start, on_images=on_images, on_status=on_status,
                         executor=executor)
