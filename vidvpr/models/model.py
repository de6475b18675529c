"""The module every registry entry returns: backbone, NetVLAD, optional PCA-whitening.

State-dict keys follow pytorch-NetVlad (``encoder.*``, ``pool.*``), plus ``whiten.mean`` and
``whiten.projection`` when whitening is attached.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from vidvpr.core.provenance import params_hash
from vidvpr.models.netvlad import NetVLAD
from vidvpr.models.versions import FINGERPRINT_VERSION
from vidvpr.models.whitening import PCAWhitening


def state_digest(state: Mapping[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in key order."""
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return "sha256:" + digest.hexdigest()


class VPRModel(nn.Module):
    """ImageNet-normalised RGB (B, 3, H, W), any H and W -> L2-normalised descriptors (B, D).

    ``features(x)`` gives the backbone's latent map (B, C, h, w), e.g. for distillation losses.
    ``fingerprint`` identifies name, options and weights (a descriptor-cache key); code that
    changes the weights in place (training) calls ``update_fingerprint()`` afterwards.
    """

    def __init__(self, name: str, encoder: nn.Module, pool: NetVLAD, options: Mapping[str, Any]) -> None:
        super().__init__()
        self.encoder = encoder
        self.pool = pool
        self.register_module("whiten", None)
        self.name = name
        self.options = dict(options)
        self.fingerprint = ""

    @property
    def descriptor_dim(self) -> int:
        """Length of the descriptors `forward` returns."""
        return self.whiten.output_dim if self.whiten is not None else self.pool.output_dim

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's feature map (B, C, h, w) that NetVLAD pools."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"{self.name} expects an RGB batch (B, 3, H, W), got {tuple(x.shape)}")
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        descriptors = self.pool(self.features(x))
        return self.whiten(descriptors) if self.whiten is not None else descriptors

    def set_whitening(self, whitening: PCAWhitening | None) -> None:
        """Attach (or with None remove) PCA-whitening of the NetVLAD output; updates the fingerprint."""
        if whitening is not None and whitening.input_dim != self.pool.output_dim:
            raise ValueError(f"whitening expects {whitening.input_dim}-D input, {self.name} pools to {self.pool.output_dim}")
        self.whiten = whitening
        self.update_fingerprint()

    def update_fingerprint(self) -> str:
        """Recompute the fingerprint from name, options and the current weights."""
        self.fingerprint = params_hash({"model": self.name, "options": self.options,
                                        "weights": state_digest(self.state_dict()), "version": FINGERPRINT_VERSION})
        return self.fingerprint
