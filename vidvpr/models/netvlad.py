"""NetVLAD pooling (Arandjelović et al., CVPR 2016), compatible with pytorch-NetVlad checkpoints.

Parameter names are those of Nanne/pytorch-NetVlad's ``netvlad.py`` (``centroids``,
``conv.weight`` and, for VLAD v2, ``conv.bias``), so its state dicts load unchanged. The forward
pass is the same formula, vectorised: for every cluster k,

    V_k = sum_n a_kn (x_n - c_k) = sum_n a_kn x_n - c_k * sum_n a_kn

with a_kn the softmax over clusters of a 1×1 convolution of the local features x_n.
"""

from __future__ import annotations

import math

import faiss
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidvpr.core.errors import BadInput

# -log(0.01): the initial assignment gives the nearest cluster 100× the weight of the second
ASSIGNMENT_RATIO_LOG = -math.log(0.01)


class NetVLAD(nn.Module):
    """Aggregate a (B, C, H, W) feature map into L2-normalised (B, K*C) VLAD descriptors."""

    def __init__(self, num_clusters: int = 64, dim: int = 512, normalize_input: bool = True,
                 vladv2: bool = False, alpha: float = 100.0) -> None:
        """`alpha` is the assignment sharpness; `init_params` replaces it with one fitted to data."""
        super().__init__()
        self.num_clusters = num_clusters
        self.dim = dim
        self.normalize_input = normalize_input
        self.vladv2 = vladv2
        self.alpha = alpha
        self.conv = nn.Conv2d(dim, num_clusters, kernel_size=1, bias=vladv2)
        self.centroids = nn.Parameter(torch.rand(num_clusters, dim))

    @property
    def output_dim(self) -> int:
        """Length of the descriptor: clusters × feature channels."""
        return self.num_clusters * self.dim

    def soft_assignment(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax over clusters of the 1×1 convolution: (B, K, H*W). Expects `x` already normalised."""
        return F.softmax(self.conv(x).flatten(2), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.dim:
            raise ValueError(f"NetVLAD expects (B, {self.dim}, H, W) features, got {tuple(x.shape)}")
        if self.normalize_input:
            x = F.normalize(x, p=2, dim=1)  # each local feature, across channels
        assignment = self.soft_assignment(x)                                  # (B, K, N)
        features = x.flatten(2)                                               # (B, C, N)
        weighted_sum = torch.einsum("bkn,bcn->bkc", assignment, features)     # sum_n a_kn x_n
        vlad = weighted_sum - self.centroids.unsqueeze(0) * assignment.sum(dim=2).unsqueeze(2)
        vlad = F.normalize(vlad, p=2, dim=2)                                  # intra-normalisation
        return F.normalize(vlad.flatten(1), p=2, dim=1)

    @torch.no_grad()
    def init_params(self, clusters: np.ndarray, descriptors: np.ndarray) -> None:
        """Initialise from k-means `clusters` (K, C) of sampled local `descriptors` (N, C).

        As the NetVLAD MATLAB code (``addLayers.m``), which pytorch-NetVlad's ``init_params``
        follows. alpha = -log(0.01) / mean gap, so that a descriptor at the mean gap gives its nearest
        cluster 100× the weight of the second. VLAD v1: the gap is, per descriptor, between its two
        largest dot products with the normalised centroids; the assignment convolution is those
        centroids scaled by alpha, no bias. VLAD v2: the gap is, per descriptor, between its squared
        distances to its two nearest centroids (MATLAB's ``yael_nn(clsts, trainDescs, 2)``); weight
        2·alpha·c_k and bias -alpha·|c_k|², so the initial assignment is exactly
        softmax_k(-alpha·|x - c_k|²). pytorch-NetVlad differs in three places that look like slips:
        it takes the gap per centroid between its two nearest descriptors, squares the neighbours'
        *indices* (``kneighbors(...)[1]``) and uses the unsquared norm in the bias.
        With one cluster the assignment is 1 whatever alpha, which then stays as it was.
        """
        clusters = np.ascontiguousarray(clusters, dtype=np.float32)
        descriptors = np.ascontiguousarray(descriptors, dtype=np.float32)
        if clusters.shape != (self.num_clusters, self.dim):
            raise BadInput(f"NetVLAD init: expected clusters of shape {(self.num_clusters, self.dim)}, got {clusters.shape}")
        if descriptors.ndim != 2 or descriptors.shape[1] != self.dim or len(descriptors) < 2:
            raise BadInput(f"NetVLAD init: expected at least 2 descriptors of dimension {self.dim}, got {descriptors.shape}")
        if self.num_clusters < 2:
            alpha = self.alpha
        else:
            alpha = _v2_alpha(clusters, descriptors) if self.vladv2 else _v1_alpha(clusters, descriptors)
        centroids = torch.from_numpy(clusters)
        self.alpha = alpha
        self.centroids.copy_(centroids)
        if self.vladv2:
            self.conv.weight.copy_((2.0 * alpha * centroids)[:, :, None, None])
            self.conv.bias.copy_(-alpha * centroids.pow(2).sum(dim=1))
        else:
            unit = F.normalize(centroids, p=2, dim=1)
            self.conv.weight.copy_((alpha * unit)[:, :, None, None])


def _v1_alpha(clusters: np.ndarray, descriptors: np.ndarray) -> float:
    unit = clusters / np.linalg.norm(clusters, axis=1, keepdims=True).clip(min=1e-12)
    dots = descriptors @ unit.T                               # (N, K)
    two_largest = np.partition(dots, -2, axis=1)[:, -2:]      # [second, first] per descriptor
    return _alpha_from_gap(float(np.mean(two_largest[:, 1] - two_largest[:, 0])))


def _v2_alpha(clusters: np.ndarray, descriptors: np.ndarray) -> float:
    index = faiss.IndexFlatL2(clusters.shape[1])
    index.add(clusters)
    squared_distances, _ = index.search(descriptors, 2)       # ascending, per descriptor
    return _alpha_from_gap(float(np.mean(squared_distances[:, 1] - squared_distances[:, 0])))


def _alpha_from_gap(gap: float) -> float:
    if not gap > 0 or not math.isfinite(gap):
        raise BadInput("NetVLAD init: the sampled descriptors do not separate the clusters (identical features?)")
    return ASSIGNMENT_RATIO_LOG / gap
