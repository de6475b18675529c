"""PCA-whitening of global descriptors, as NetVLAD uses to shorten 32768-D vectors to 4096-D.

Fitted with numpy: an eigendecomposition (float64) of the smaller of the Gram matrix (N×N, when
there are fewer samples than dimensions, the usual case for NetVLAD) and the covariance (D×D).
Both give the same principal directions as an SVD of the centred data, at the cost of one matrix
product. Whitened coordinates (x - mean) @ projection.T have identity covariance on the fitting
data; the module then L2-normalises them, as descriptors are compared by L2 distance.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidvpr.core.errors import BadInput

# components whose standard deviation is below this fraction of the first one are degenerate
RELATIVE_STD_FLOOR = 1e-6


def check_pca_dim(dim: int, width: int, samples: int) -> None:
    """BadInput unless `samples` descriptors of size `width` can be PCA-whitened to `dim` dimensions:
    dim <= width, and dim < samples (N samples centred span at most N - 1 directions)."""
    if not 1 <= dim <= width:
        raise BadInput(f"PCA-whitening dimension must be between 1 and the descriptor size {width}, got {dim}")
    if dim >= samples:
        raise BadInput(f"PCA-whitening to {dim} dimensions needs more than {dim} descriptors, got {samples}")


def fit_pca_whitening(descriptors: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Fit PCA-whitening to `descriptors` (N, D): returns mean (D,) and projection (dim, D), float32.

    Needs dim <= D and dim < N (N samples centred span at most N - 1 directions); a `dim` the
    data cannot support (duplicate descriptors) is a BadInput too.
    """
    data = np.asarray(descriptors, dtype=np.float64)
    if data.ndim != 2:
        raise BadInput(f"PCA-whitening needs a 2-D array of descriptors, got shape {data.shape}")
    samples, width = data.shape
    check_pca_dim(dim, width, samples)
    if not np.isfinite(data).all():
        raise BadInput("PCA-whitening: descriptors contain NaN or infinite values")
    mean = data.mean(axis=0)
    centred = data - mean
    if samples <= width:  # Gram trick: eigenvectors of X Xᵀ map to principal directions Xᵀu / |Xᵀu|
        eigenvalues, vectors = np.linalg.eigh(centred @ centred.T)
        order = np.argsort(eigenvalues)[::-1][:dim]
        eigenvalues = eigenvalues[order]
        directions = centred.T @ vectors[:, order]
        directions /= np.linalg.norm(directions, axis=0, keepdims=True).clip(min=1e-300)
    else:
        eigenvalues, vectors = np.linalg.eigh(centred.T @ centred)
        order = np.argsort(eigenvalues)[::-1][:dim]
        eigenvalues, directions = eigenvalues[order], vectors[:, order]
    std = np.sqrt(np.clip(eigenvalues, 0.0, None) / (samples - 1))
    usable = int(np.sum(std > RELATIVE_STD_FLOOR * std[0])) if std[0] > 0 else 0
    if usable < dim:
        raise BadInput(f"PCA-whitening: the {samples} descriptors span only {usable} dimensions; choose dim <= {usable}")
    projection = directions.T / std[:, None]
    return mean.astype(np.float32), projection.astype(np.float32)


class PCAWhitening(nn.Module):
    """(B, D) -> (B, dim): subtract the mean, project and scale to unit variance, L2-normalise."""

    def __init__(self, mean: np.ndarray | torch.Tensor, projection: np.ndarray | torch.Tensor) -> None:
        super().__init__()
        mean_t = torch.as_tensor(np.asarray(mean), dtype=torch.float32)
        projection_t = torch.as_tensor(np.asarray(projection), dtype=torch.float32)
        if mean_t.ndim != 1 or projection_t.ndim != 2 or projection_t.shape[1] != mean_t.shape[0]:
            raise BadInput(f"PCA-whitening: mean {tuple(mean_t.shape)} and projection {tuple(projection_t.shape)} do not fit")
        self.register_buffer("mean", mean_t)
        self.register_buffer("projection", projection_t)

    @property
    def input_dim(self) -> int:
        return int(self.projection.shape[1])

    @property
    def output_dim(self) -> int:
        return int(self.projection.shape[0])

    def whiten(self, x: torch.Tensor) -> torch.Tensor:
        """Whitened coordinates before normalisation (identity covariance on the fitting data)."""
        return (x - self.mean) @ self.projection.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.whiten(x), p=2, dim=1)
