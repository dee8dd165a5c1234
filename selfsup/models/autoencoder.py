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

from .. import _checks as checks
from ..saving import Saveable
from .layers import mlp

__all__ = ["PCA", "Autoencoder", "pca"]


def _as_matrix(x, name: str = "X", min_len: int = 2) -> torch.Tensor:
    t = checks.tensor(x, name, min_len=min_len)
    if t.ndim < 2:
        raise ValueError(
            f"{name} must have shape (n, ...) with a batch axis, got shape {tuple(t.shape)}; "
            f"for one example pass {name}[None]"
        )
    return t.reshape(len(t), -1).to(torch.float64)


@dataclass
class PCA:
    """The result of :func:`pca`: a linear autoencoder in closed form."""

    components: torch.Tensor  # (r, d) orthonormal rows, largest variance first
    mean: torch.Tensor  # (d,)
    explained_variance: torch.Tensor  # (r,) variance along each component
    explained_variance_ratio: torch.Tensor  # (r,) fraction of the total variance
    shape: tuple[int, ...] | None = None  # one example's shape; decode returns it

    def encode(self, x, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Coordinates ``(B, r)`` of ``x`` ``(B, ...)`` in the principal subspace
        (deterministic: ``generator`` is accepted, as by every encoder, and unused)."""
        checks.generator(generator)
        x = _as_matrix(x, "x", min_len=0)
        if x.shape[1] != self.components.shape[1]:
            raise ValueError(
                f"x has {x.shape[1]} features per example, the PCA was fitted on "
                f"{self.components.shape[1]}"
            )
        return (x - self.mean) @ self.components.T

    def decode(self, z) -> torch.Tensor:
        """Reconstructions ``(B, *shape)``, shaped like the data :func:`pca` was given,
        from coordinates ``z`` ``(B, r)``."""
        z = checks.tensor(z, "z", shape=(len(self.components),), min_len=0)
        flat = z.to(torch.float64) @ self.components + self.mean
        return flat if self.shape is None else flat.reshape(len(flat), *self.shape)


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
    r = checks.integer(r, "r", low=1, high=min(n, d))
    if not bool((x != x[0]).any()):
        raise ValueError(
            "X has zero variance (every example is the same): PCA has no directions to "
            "find; pass varied data"
        )
    # BEGIN SOLUTION
    mean = x.mean(0)
    _, s, vt = torch.linalg.svd(x - mean, full_matrices=False)
    variance = s**2 / (n - 1)
    shape = tuple(X.shape[1:]) if hasattr(X, "shape") else (d,)
    return PCA(vt[:r], mean, variance[:r], variance[:r] / variance.sum(), shape)
    # END SOLUTION


class Autoencoder(Saveable, nn.Module):
    """``x -> z -> x_hat`` with fully connected encoder and decoder.

    Args:
        shape: the shape of one example, e.g. ``(8, 8)``.
        latent_dim: ``r``, the size of the bottleneck.
        hidden: widths of the hidden layers of the encoder (the decoder mirrors them).
        linear: no hidden layers and no nonlinearity: ``z = A x + a``, ``x_hat = B z + b``.
        levels: the data set's number of grey levels: the model then takes its
            images (``0..levels-1``, integers or whole-number floats) and works on them
            divided by ``levels - 1``, in ``[0, 1]``. ``None``: it takes float tensors
            ``(B, *shape)`` as they are.

    :meth:`decode` and :meth:`reconstruction_error` are on the data's scale (grey levels
    with ``levels``), as every model's ``decode`` is; :meth:`loss`, the training
    objective, is the mean squared error per pixel on the ``[0, 1]`` scale the network
    works on: the batch mean of ``reconstruction_error / (d (levels - 1)^2)`` (of
    ``reconstruction_error / d`` without ``levels``).
    """

    def __init__(
        self,
        shape: Sequence[int],
        latent_dim: int,
        hidden: Sequence[int] = (128,),
        linear: bool = False,
        levels: int | None = None,
    ):
        super().__init__()
        self.shape = checks.sizes(shape, "shape", allow_empty=False)
        d = math.prod(self.shape)
        latent_dim = checks.integer(latent_dim, "latent_dim")
        widths = [] if linear else list(checks.sizes(hidden, "hidden", example="(128,)"))
        self.latent_dim, self.hidden = latent_dim, tuple(widths)
        self.encoder = mlp([d, *widths, latent_dim])
        self.decoder = mlp([latent_dim, *widths[::-1], d])
        self.levels = None if levels is None else checks.integer(levels, "levels", low=2)

    batch_parts = 1  # fit passes the images alone (labels are dropped)

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def scaled(self, x, name: str = "x", min_len: int = 0) -> torch.Tensor:
        """``x`` on the model's scale (grey levels divided by ``levels - 1`` with
        ``levels``), checked, on the model's device: what the network reconstructs
        (:meth:`decode` multiplies its output back by ``levels - 1``)."""
        if self.levels is None:
            return checks.images(x, name, self.shape, "real", min_len=min_len, like=self)
        return checks.unit_images(x, name, self.shape, self.levels, min_len=min_len, like=self)

    def encode(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Codes ``(B, r)`` of data ``(B, *shape)`` (deterministic: ``generator`` is
        accepted, as by every encoder, and unused)."""
        checks.generator(generator)
        x = self.scaled(x)
        with checks.trusted():
            return self._encode(x)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.reshape(len(x), -1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstructions ``(B, *shape)`` on the data's scale: floats on the grey-level
        scale ``0..levels-1`` with ``levels`` (not rounded, and not clipped: a
        reconstruction may stray a little outside it); without ``levels``, on the scale
        of the data it was given."""
        z = checks.tensor(z, "z", shape=(self.latent_dim,), min_len=0, dtype="float", like=self)
        return self._unscale(self._decode(z))

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstructions on the network's scale (``[0, 1]`` with ``levels``)."""
        return self.decoder(z).reshape(len(z), *self.shape)

    def _unscale(self, u: torch.Tensor) -> torch.Tensor:
        return u if self.levels is None else u * (self.levels - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstructions ``decode(encode(x))`` ``(B, *shape)``, on the data's scale."""
        return self.decode(self.encode(x))

    def reconstruction_error(self, x: torch.Tensor) -> torch.Tensor:
        """Squared reconstruction error per example ``(B,)``, summed over pixels, on the
        data's scale (squared grey levels with ``levels``)."""
        x = self.scaled(x)
        with checks.trusted():
            error = ((self._decode(self._encode(x)) - x) ** 2).reshape(len(x), -1).sum(1)
        return error if self.levels is None else error * (self.levels - 1) ** 2

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        """Mean squared reconstruction error per pixel, on the network's ``[0, 1]`` scale
        with ``levels``."""
        x = self.scaled(batch, "batch", min_len=1)
        with checks.trusted():
            return ((self._decode(self._encode(x)) - x) ** 2).mean()
