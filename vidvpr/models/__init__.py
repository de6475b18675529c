"""Image description models: the registry, NetVLAD, backbones, checkpoints, whitening and the
inference backends that run them.

    model = load_model("netvlad-efficientnet-lite0", weights="netvlad-init.pt")
    descriptors = model(images)          # ImageNet-normalised (B, 3, H, W) -> L2-normalised (B, D)

Names are imported on first use (`__getattr__`), so that torch-free modules such as
`vidvpr.models.backends` can be read without loading torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_checkpoint": "checkpoints", "save_checkpoint": "checkpoints",
    "EfficientNetLite0Features": "efficientnet", "packaged_weights_path": "efficientnet",
    "NetVLADInitRecord": "initialise", "initialise_netvlad": "initialise",
    "VPRModel": "model", "NetVLAD": "netvlad",
    "MODELS": "registry", "ModelInfo": "registry", "ModelSpec": "registry", "list_models": "registry",
    "load_model": "registry", "save_model": "registry",
    "vgg16_features": "vgg16", "vgg16_netvlad_encoder": "vgg16",
    "PCAWhitening": "whitening", "fit_pca_whitening": "whitening",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
