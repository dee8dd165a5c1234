"""Normalizing flows.

A flow is an invertible map ``f`` from data ``x`` to a latent ``z = f(x)`` with a
simple density (a standard normal). By the change of variables,

    log p(x) = log p_Z(f(x)) + log |det df/dx|.

Every transform here has the same two methods (as in normflows):

- ``forward(x) -> (y, logdet)``: data towards latent, ``logdet = log|det dy/dx|``;
- ``inverse(y) -> (x, logdet)``: latent towards data, ``logdet = log|det dx/dy|``,

both with ``logdet`` of shape ``(B,)``, so a flow is a loop over transforms.
Transforms act on flattened features ``(B, d)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .autoencoder import mlp

__all__ = [
    "ActNorm",
    "AdditiveCoupling",
    "AffineCoupling",
    "Flow",
    "InvertibleLinear",
    "LogitTransform",
    "Permute",
    "coupling_mask",
    "realnvp",
]


def coupling_mask(kind: str, shape: Sequence[int], flip: bool = False) -> torch.Tensor:
    """A 0/1 mask over the flattened features: 1 marks the half that passes unchanged.

    - ``"half"``: the first half of the features;
    - ``"checkerboard"``: alternate pixels of an image ``(H, W)`` or ``(C, H, W)``;
    - ``"channel"``: the first half of the channels of an image ``(C, H, W)``.
    ``flip`` swaps the two halves.
    """
    shape = tuple(int(s) for s in shape)
    d = math.prod(shape)
    if kind == "half":
        mask = (torch.arange(d) < d // 2).float()
    elif kind == "checkerboard":
        if len(shape) not in (2, 3):
            raise ValueError(
                f"a checkerboard mask needs an image shape (H, W) or (C, H, W), got {shape}"
            )
        h, w = shape[-2:]
        board = ((torch.arange(h)[:, None] + torch.arange(w)[None, :]) % 2 == 0).float()
        mask = board.expand(*shape).reshape(-1)
    elif kind == "channel":
        if len(shape) != 3 or shape[0] < 2:
            raise ValueError(
                f"a channel mask needs an image shape (C, H, W) with C >= 2, got {shape}"
            )
        mask = (
            (torch.arange(shape[0]) < shape[0] // 2)
            .float()[:, None, None]
            .expand(*shape)
            .reshape(-1)
        )
    else:
        raise ValueError(f"kind must be 'half', 'checkerboard' or 'channel', got {kind!r}")
    return 1.0 - mask if flip else mask


def _check(x: torch.Tensor, d: int, name: str = "x") -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != d:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a tensor of shape (B, {d}), got {got}")


class AffineCoupling(nn.Module):
    """RealNVP's affine coupling: ``y = m x + (1 - m) (x exp(s(m x)) + t(m x))``.

    The masked half conditions a scale ``s`` and shift ``t`` for the other half; the
    Jacobian is triangular, so ``log|det| = sum (1 - m) s``. ``s`` is bounded with
    ``tanh`` for stability (``scale_bound=None``: unbounded, RealNVP's original form).
    """

    def __init__(
        self,
        mask: torch.Tensor,
        hidden: Sequence[int] = (64, 64),
        scale_bound: float | None = 2.0,
    ):
        super().__init__()
        self.register_buffer("mask", mask.float())
        d = len(mask)
        self.net = mlp([d, *hidden, 2 * d])
        nn.init.zeros_(self.net[-1].weight)  # start at the identity
        nn.init.zeros_(self.net[-1].bias)
        self.scale_bound = scale_bound

    def _st(self, x_masked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self.net(x_masked).chunk(2, dim=-1)
        if self.scale_bound is not None:
            s = self.scale_bound * torch.tanh(s / self.scale_bound)
        keep = 1.0 - self.mask
        return s * keep, t * keep

    def forward(self, x):
        """``(B, d) -> (y (B, d), log|det dy/dx| (B,))``, in nats."""
        _check(x, len(self.mask))
        # BEGIN SOLUTION
        s, t = self._st(x * self.mask)
        return x * self.mask + (1 - self.mask) * (x * s.exp() + t), s.sum(-1)
        # END SOLUTION

    def inverse(self, y):
        """``(B, d) -> (x (B, d), log|det dx/dy| (B,))``: undoes :meth:`forward` exactly."""
        _check(y, len(self.mask), "y")
        # BEGIN SOLUTION
        s, t = self._st(y * self.mask)
        return y * self.mask + (1 - self.mask) * ((y - t) * (-s).exp()), -s.sum(-1)
        # END SOLUTION


class AdditiveCoupling(nn.Module):
    """NICE's additive coupling, a Feistel round: ``y = m x + (1 - m)(x + t(m x))``.

    Invertible whatever the function ``t`` is, and volume preserving (``logdet = 0``).
    """

    def __init__(self, mask: torch.Tensor, hidden: Sequence[int] = (64, 64)):
        super().__init__()
        self.register_buffer("mask", mask.float())
        d = len(mask)
        self.net = mlp([d, *hidden, d])

    def forward(self, x):
        _check(x, len(self.mask))
        t = self.net(x * self.mask) * (1 - self.mask)
        return x + t, x.new_zeros(len(x))

    def inverse(self, y):
        _check(y, len(self.mask), "y")
        t = self.net(y * self.mask) * (1 - self.mask)
        return y - t, y.new_zeros(len(y))


class ActNorm(nn.Module):
    """Per-feature affine ``y = (x + b) exp(log_s)``, initialised from the first batch
    so that its outputs have zero mean and unit variance (Glow)."""

    def __init__(self, d: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(d))
        self.log_scale = nn.Parameter(torch.zeros(d))
        self.register_buffer("initialized", torch.tensor(False))

    def forward(self, x):
        _check(x, len(self.bias))
        if not self.initialized and self.training:
            with torch.no_grad():
                self.bias.copy_(-x.mean(0))
                self.log_scale.copy_(-torch.log(x.std(0) + 1e-6))
                self.initialized.fill_(True)
        return (x + self.bias) * self.log_scale.exp(), self.log_scale.sum().expand(len(x))

    def inverse(self, y):
        _check(y, len(self.bias), "y")
        return y * (-self.log_scale).exp() - self.bias, (-self.log_scale.sum()).expand(len(y))


class InvertibleLinear(nn.Module):
    """``y = W x`` with ``W = P L (U + diag(s))``, LU-parameterised (Glow's 1x1
    convolution on flattened features): ``log|det W| = sum log|s|`` in O(d)."""

    def __init__(self, d: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(d, d, generator=g))
        p, lower, upper = torch.linalg.lu(q)
        s = torch.diagonal(upper)
        self.register_buffer("perm", p)
        self.register_buffer("sign_s", torch.sign(s))
        self.register_buffer("l_mask", torch.tril(torch.ones(d, d), -1))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(s.abs()))

    def weight(self) -> torch.Tensor:
        eye = torch.eye(len(self.log_s), device=self.log_s.device)
        lower = self.lower * self.l_mask + eye
        upper = self.upper * self.l_mask.T + torch.diag(self.sign_s * self.log_s.exp())
        return self.perm @ lower @ upper

    def forward(self, x):
        _check(x, len(self.log_s))
        return x @ self.weight().T, self.log_s.sum().expand(len(x))

    def inverse(self, y):
        _check(y, len(self.log_s), "y")
        return torch.linalg.solve(self.weight(), y.T).T, (-self.log_s.sum()).expand(len(y))


class Permute(nn.Module):
    """A fixed permutation of the features (``"reverse"`` or random with ``seed``)."""

    def __init__(self, d: int, order: str = "reverse", seed: int = 0):
        super().__init__()
        if order == "reverse":
            perm = torch.arange(d - 1, -1, -1)
        elif order == "random":
            perm = torch.randperm(d, generator=torch.Generator().manual_seed(seed))
        else:
            raise ValueError(f"order must be 'reverse' or 'random', got {order!r}")
        self.register_buffer("perm", perm)
        self.register_buffer("inv", torch.argsort(perm))

    def forward(self, x):
        _check(x, len(self.perm))
        return x[:, self.perm], x.new_zeros(len(x))

    def inverse(self, y):
        _check(y, len(self.perm), "y")
        return y[:, self.inv], y.new_zeros(len(y))


class LogitTransform(nn.Module):
    """Dequantized pixels in ``[0, levels)`` to the real line, with its Jacobian.

    ``u = alpha + (1 - 2 alpha) x / levels`` (squeezed away from 0 and 1), then
    ``y = logit(u)``. Its ``logdet`` makes the flow's ``log_prob`` a density on the
    original ``[0, levels)^d`` scale, so bits/dim compare with other models'.
    """

    def __init__(self, levels: int, alpha: float = 0.05):
        super().__init__()
        if not (isinstance(levels, int) and levels >= 2) or not 0 < alpha < 0.5:
            raise ValueError("levels must be an int >= 2 and alpha in (0, 0.5)")
        self.levels, self.alpha = levels, alpha

    def forward(self, x):
        if x.ndim != 2:
            raise ValueError(f"x must have shape (B, d), got {tuple(x.shape)}")
        if (x < 0).any() or (x > self.levels).any():
            raise ValueError(f"x must lie in [0, {self.levels}]; dequantize integer data first")
        scale = (1 - 2 * self.alpha) / self.levels
        u = self.alpha + scale * x
        y = torch.log(u) - torch.log1p(-u)
        logdet = (math.log(scale) - torch.log(u) - torch.log1p(-u)).sum(-1)
        return y, logdet

    def inverse(self, y):
        u = torch.sigmoid(y)
        scale = (1 - 2 * self.alpha) / self.levels
        x = (u - self.alpha) / scale
        logdet = (torch.log(u) + torch.log1p(-u) - math.log(scale)).sum(-1)
        return x, logdet


class Flow(nn.Module):
    """A stack of transforms and a standard normal base density.

    Args:
        transforms: applied in order from data to latent.
        shape: the shape of one example, e.g. ``(2,)`` or ``(8, 8)``.
        dequantize: for integer data with this many levels, :meth:`loss` adds
            uniform noise to each batch (``log_prob`` takes the continuous values).
    """

    def __init__(
        self, transforms: Sequence[nn.Module], shape: Sequence[int], dequantize: int | None = None
    ):
        super().__init__()
        self.transforms = nn.ModuleList(transforms)
        self.shape = tuple(int(s) for s in shape)
        self.d = math.prod(self.shape)
        self.dequantize = dequantize

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or tuple(x.shape[1:]) != self.shape:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be a tensor of shape (B, {self.shape}), got {got}")
        flat = x.reshape(len(x), -1).float()
        if not torch.isfinite(flat).all():
            raise ValueError("x contains NaN or inf")
        return flat

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``z = f(x)`` and ``log|det df/dx|``."""
        z, total = self._flat(x), 0.0
        for transform in self.transforms:
            z, logdet = transform(z)
            total = total + logdet
        return z, total

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact ``log p(x)`` in nats, ``(B,)``."""
        z, logdet = self.encode(x)
        return -0.5 * (z**2).sum(-1) - 0.5 * self.d * math.log(2 * math.pi) + logdet

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood in nats (of dequantized data if ``dequantize``)."""
        if self.dequantize is not None:
            if batch.is_floating_point():
                raise ValueError("this Flow dequantizes its training data: pass the integer images")
            batch = batch.float() + torch.rand(batch.shape, device=batch.device)
        return -self.log_prob(batch).mean()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``x = f^-1(z)``, shaped like the data."""
        return self.trajectory(z)[-1]

    def trajectory(self, z: torch.Tensor) -> list[torch.Tensor]:
        """``z`` and its image after each inverse transform, ending with ``x``."""
        _check(z, self.d, "z")
        steps = [z]
        for transform in reversed(self.transforms):
            z, _ = transform.inverse(z)
            steps.append(z)
        return [*steps[:-1], steps[-1].reshape(len(z), *self.shape)]

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples ``x = f^-1(z)``, ``z ~ N(0, I)``."""
        device = next(self.parameters()).device
        return self.decode(torch.randn((n, self.d), generator=generator, device=device))


def realnvp(
    shape: Sequence[int],
    layers: int = 8,
    hidden: Sequence[int] = (64, 64),
    mask: str = "half",
    levels: int | None = None,
    linear: bool = True,
) -> Flow:
    """A RealNVP-style flow: ActNorm, an invertible linear map and an affine coupling
    per layer, alternating the mask. With ``levels``, a :class:`LogitTransform` first,
    for dequantized integer data in ``[0, levels)``.
    """
    d = math.prod(shape)
    transforms: list[nn.Module] = [LogitTransform(levels)] if levels is not None else []
    for i in range(layers):
        transforms.append(ActNorm(d))
        if linear:
            transforms.append(InvertibleLinear(d, seed=i))
        transforms.append(AffineCoupling(coupling_mask(mask, shape, flip=i % 2 == 1), hidden))
    return Flow(transforms, shape, dequantize=levels)
