"""The models an evaluation compares: `NAME` or `NAME:WEIGHTS` on the command line, made ready.

A model without NetVLAD weights (the offline default) is initialised the standard way on the
manifest's database reference frames (k-means, `vidvpr.models.initialise_netvlad`) and saved under
``EVAL/models/``, where the next run finds and reuses it. Optional PCA-whitening is fitted on the
database reference descriptors and saved with the model.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vidvpr.core.errors import BadInput
from vidvpr.core.provenance import params_hash
from vidvpr.dataset.manifest import Manifest
from vidvpr.descriptors.cache import DescriptorCache
from vidvpr.descriptors.extract import ForwardCounter, describe_video
from vidvpr.descriptors.frames import frame_batches
from vidvpr.evaluate.cells import GridCell
from vidvpr.evaluate.config import MODELS_DIR, netvlad_init_checkpoint  # noqa: F401  (re-exported)
from vidvpr.models import PCAWhitening, VPRModel, fit_pca_whitening, initialise_netvlad, load_model, save_model
from vidvpr.models.registry import model_spec
from vidvpr.models.whitening import check_pca_dim

LOG = logging.getLogger(__name__)

INIT_IMAGES = 400  # database frames sampled for k-means (evenly along the manifest)
# frames per forward pass of the NetVLAD initialisation, whatever --batch-size says: the backbone rounds
# a batch of 8 otherwise than one of 16, so the fit (and the model's fingerprint, the descriptor cache's
# key) followed the batch size, and `vidvpr distill`'s teacher (batch 8) was not `vidvpr eval`'s (16).
# 16 is eval's default, so evaluations at the default keep the fit they had.
INIT_BATCH_SIZE = 16
PCA_FIT_FRAMES = 20_000  # database frames PCA-whitening is fitted on at most: 20k × 7168-D is 1.1 GB in float64


@dataclass(frozen=True)
class ModelChoice:
    """A model as named on the command line: registry name and optional checkpoint."""

    name: str
    weights: Path | None = None

    @property
    def label(self) -> str:
        """How results name it: the model name, with the checkpoint's file stem when given."""
        return self.name if self.weights is None else f"{self.name}:{self.weights.stem}"


def parse_model_choice(text: str) -> ModelChoice:
    """'NAME' or 'NAME:WEIGHTS' (the first ':' separates; paths may contain more)."""
    name, sep, weights = text.partition(":")
    model_spec(name)  # BadInput listing the known names
    if sep and not weights:
        raise BadInput(f"--model {text!r}: give a checkpoint after ':' or leave the ':' out")
    path = Path(weights) if weights else None
    if path is not None and not path.is_file():
        raise BadInput(f"{path}: checkpoint not found (--model {text})")
    return ModelChoice(name, path)


def trained_on(weights: Path | None, cells: Sequence[GridCell]) -> list[str] | None:
    """The evaluated videos ('CELL/RECORDING/VIEW') a `vidvpr distill` student trained on, matched by
    content hash with the `videos` its sidecar records (RUN/student.json beside RUN/student.pt, or any
    NAME.json beside NAME.pt describing that very file): recall on them is not measured on held-out
    data. None when the checkpoint has no such sidecar (not distilled by vidvpr, or copied without it)."""
    if weights is None:
        return None
    from vidvpr.distill.config import StudentRecord

    record = StudentRecord.load_or_none(Path(weights).with_suffix(".json"))
    if record is None or not record.checkpoint.matches(Path(weights), check_hash=True):
        return None
    seen = set(record.videos.values()) | {str(h) for h in (record.data.get("images") or {}).values()}
    return sorted(f"{cell.name}/{recording}/{view}" for cell in cells
                  for (recording, view), (_, video) in cell.videos.items() if video.hash in seen)


def _sampled_database_frames(manifest: Manifest, reference: GridCell, limit: int) -> dict[tuple[str, str], list[int]]:
    rows = manifest.database
    chosen = [rows[int(i)] for i in np.linspace(0, len(rows) - 1, num=min(limit, len(rows)))]
    by_video: dict[tuple[str, str], list[int]] = {}
    for row in chosen:
        by_video.setdefault((row.recording, row.view), []).append(row.frame)
    return by_video


def fitted_on(reference: GridCell, frames: dict[tuple[str, str], list[int]]) -> str:
    """A key of what a fit reads, in the order it reads it: each video's content hash with the frames taken."""
    return params_hash({"videos": [[reference.videos[key][1].hash, list(indices)] for key, indices in frames.items()]})


def _init_batches(reference: GridCell, frames: dict[tuple[str, str], list[int]], batch_size: int,
                  device: torch.device) -> Iterator[torch.Tensor]:
    for key, indices in frames.items():
        video, _ = reference.videos[key]
        for _, batch in frame_batches(video, indices, batch_size):
            yield batch.to(device)


def pca_fit_frames(manifest: Manifest) -> int:
    """How many database frames PCA-whitening is fitted on: all, up to `PCA_FIT_FRAMES`."""
    return min(PCA_FIT_FRAMES, len(manifest.database))


def described_dim(model: VPRModel, manifest: Manifest, pca_dim: int | None) -> int:
    """The size of the descriptors `model` will give on `manifest`, after PCA-whitening to `pca_dim`;
    BadInput, before any forward pass, when the database is too small to fit that whitening."""
    if pca_dim is None:
        return model.descriptor_dim
    try:
        check_pca_dim(pca_dim, model.descriptor_dim, pca_fit_frames(manifest))
    except BadInput as exc:
        raise BadInput(f"--pca-dim {pca_dim}: {exc} (fitted on the manifest's {len(manifest.database):,} database "
                       f"frames, at most {PCA_FIT_FRAMES:,})") from None
    return pca_dim


def prepare_model(choice: ModelChoice, manifest: Manifest, reference: GridCell, eval_dir: Path,
                  cache: DescriptorCache, device: torch.device, batch_size: int, pca_dim: int | None,
                  counter: ForwardCounter, loaded: VPRModel | None = None) -> VPRModel:
    """Load `choice` (or take it `loaded`), initialise NetVLAD if it has no weights, fit PCA-whitening
    if asked; on `device`."""
    model = (loaded if loaded is not None else load_model(choice.name, choice.weights)).to(device)
    models_dir = Path(eval_dir) / MODELS_DIR
    if choice.weights is None and not model_spec(choice.name).requires_weights:
        frames = _sampled_database_frames(manifest, reference, INIT_IMAGES)
        checkpoint = netvlad_init_checkpoint(models_dir, choice.name)
        models_dir.mkdir(parents=True, exist_ok=True)
        LOG.info("%s: initialising NetVLAD on %d database frames", choice.name, sum(map(len, frames.values())))
        # keyed by what it reads: another manifest's frames (or changed videos) initialise it afresh
        initialise_netvlad(model, _init_batches(reference, frames, INIT_BATCH_SIZE, device), checkpoint,
                           images_source=f"reference frames {fitted_on(reference, frames)}")
        model.to(device)
    if pca_dim is not None:
        model = _with_whitening(model, choice, manifest, reference, models_dir, cache, device, batch_size, pca_dim,
                                counter)
    model.eval()
    return model


def _with_whitening(model: VPRModel, choice: ModelChoice, manifest: Manifest, reference: GridCell,
                    models_dir: Path, cache: DescriptorCache, device: torch.device, batch_size: int,
                    pca_dim: int, counter: ForwardCounter) -> VPRModel:
    """The model with PCA-whitening to `pca_dim`, fitted on the database reference descriptors
    (the NetVLAD paper's practice; at most `PCA_FIT_FRAMES` of them, evenly along the manifest, so a
    database of millions of frames is never held in memory), saved beside the model and reused."""
    sample = _sampled_database_frames(manifest, reference, pca_fit_frames(manifest))
    fitted = fitted_on(reference, sample)  # in the name: another manifest's database is fitted afresh
    path = models_dir / f"{choice.label.replace(':', '-')}-{model.fingerprint[:12]}-pca{pca_dim}-{fitted[:12]}.pt"
    if path.is_file():
        return load_model(model.name, path).to(device)
    database = np.concatenate([
        describe_video(model, reference.videos[key][0], frames, cache, reference.videos[key][1], batch_size, device,
                       counter=counter)
        for key, frames in sample.items()])
    mean, projection = fit_pca_whitening(database, pca_dim)
    model.set_whitening(PCAWhitening(torch.from_numpy(mean), torch.from_numpy(projection)))
    models_dir.mkdir(parents=True, exist_ok=True)
    save_model(model, path, metadata={"whitening": f"PCA to {pca_dim} fitted on {len(database)} database frames",
                                      "fitted_on": fitted})
    return model.to(device)
