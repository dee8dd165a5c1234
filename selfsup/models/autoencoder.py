"""Autoencoders and PCA.

An autoencoder squeezes ``x`` (``d`` numbers) through a bottleneck ``z`` of
``r << d`` numbers and reconstructs it: ``x_hat = decode(encode(x))``. PCA is the
optimal *linear* autoencoder (Eckart-Young): no rank-``r`` linear map
reconstructs better in squared error than projecting onto the top ``r`` principal
directions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["PCA", "Autoencoder", "mlp", "pca"]


def _as_matrix(x, name: str = "X") -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.ndim < 2 or len(t) < 2:
        raise ValueError(
            f"{name} must have shape (n, ...) with n >= 2 examples, got {tuple(t.shape)}"
        )
    t = t.reshape(len(t), -1).to(torch.float64)
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf")
    return t


@dataclass
class PCA:
    """The result of :func:`pca`: a linear autoencoder in closed form."""

    components: torch.Tensor  # (r, d) orthonormal rows, largest variance first
    mean: torch.Tensor  # (d,)
    explained_variance: torch.Tensor  # (r,) variance along each component
    explained_variance_ratio: torch.Tensor  # (r,) fraction of the total variance

    def encode(self, x) -> torch.Tensor:
        """Coordinates ``(B, r)`` of ``x`` in the principal subspace."""
        return (_as_matrix(x, "x") - self.mean) @ self.components.T

    def decode(self, z) -> torch.Tensor:
        """Reconstructions ``(B, d)`` (flattened) from coordinates ``z`` ``(B, r)``."""
        return torch.as_tensor(z, dtype=torch.float64) @ self.components + self.mean


def pca(X, r: int) -> PCA:
    """Principal component analysis through the SVD of the centred data.

    Args:
        X: data ``(n, ...)``, flattened per example to ``d`` features.
        r: the number of components, ``1 <= r <= min(n, d)``.
    Returns:
        components ``(r, d)``, mean ``(d,)``, explained variance (with the ``1/(n-1)``
        convention of scikit-learn) and its ratio.
    """
    x = _as_matrix(X)
    n, d = x.shape
    if not (isinstance(r, int) and 1 <= r <= min(n, d)):
        raise ValueError(f"r must be an int in [1, {min(n, d)}], got {r!r}")
    # BEGIN SOLUTION
    mean = x.mean(0)
    _, s, vt = torch.linalg.svd(x - mean, full_matrices=False)
    variance = s**2 / (n - 1)
    return PCA(vt[:r], mean, variance[:r], variance[:r] / variance.sum())
    # END SOLUTION


def mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear layers of the given sizes with ``activation`` between them (not after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class Autoencoder(nn.Module):
    """``x -> z -> x_hat`` with fully connected encoder and decoder.

    Args:
        shape: the shape of one example, e.g. ``(8, 8)``.
        latent_dim: ``r``, the size of the bottleneck.
        hidden: widths of the hidden layers of the encoder (the decoder mirrors them).
        linear: no hidden layers and no nonlinearity: ``z = A x + a``, ``x_hat = B z + b``.
    The data are float tensors ``(B, *shape)``; scale them to a range like [0, 1].
    """

    def __init__(
        self,
        shape: Sequence[int],
        latent_dim: int,
        hidden: Sequence[int] = (128,),
        linear: bool = False,
    ):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        if not self.shape or any(s < 1 for s in self.shape):
            raise ValueError(f"shape must be a tuple of positive ints, got {shape!r}")
        d = math.prod(self.shape)
        if not (isinstance(latent_dim, int) and 1 <= latent_dim):
            raise ValueError(f"latent_dim must be a positive int, got {latent_dim!r}")
        widths = [] if linear else [int(h) for h in hidden]
        self.latent_dim, self.hidden = latent_dim, tuple(widths)
        self.encoder = mlp([d, *widths, latent_dim])
        self.decoder = mlp([latent_dim, *widths[::-1], d])

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or tuple(x.shape[1:]) != self.shape:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be a tensor of shape (B, {self.shape}), got {got}")
        return x.float().reshape(len(x), -1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes ``(B, r)``."""
        return self.encoder(self._check(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstructions ``(B, *shape)``."""
        return self.decoder(z).reshape(len(z), *self.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        """Mean squared reconstruction error per pixel."""
        return ((self(batch) - batch.float()) ** 2).mean()
