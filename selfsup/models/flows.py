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
import warnings
from collections.abc import Sequence

import torch
from torch import nn

from .. import _checks as checks
from .. import tensors
from ..data import dequantize
from ..saving import Saveable
from .layers import mlp

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
    shape = checks.sizes(shape, "shape", allow_empty=False)
    d = math.prod(shape)
    if d < 2:
        raise ValueError(
            f"shape {shape} has {d} feature: a coupling layer splits the features into two "
            "non-empty halves, so it needs at least 2 (a 1-D density needs no coupling)"
        )
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
    if mask.all() or not mask.any():  # e.g. a checkerboard of one row and one column
        raise ValueError(
            f"a {kind!r} mask of shape {shape} leaves one half empty: it would mask nothing; "
            "use a larger shape or another kind"
        )
    return 1.0 - mask if flip else mask


def _check(x, d: int, name: str = "x") -> torch.Tensor:
    """Flattened features ``(B, d)``, finite floats (batches may be empty)."""
    return checks.tensor(x, name, shape=(d,), min_len=0, dtype="float")


class AffineCoupling(Saveable, nn.Module):
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
        mask = _mask(mask)
        hidden = checks.sizes(hidden, "hidden", example="(64, 64)")
        if scale_bound is not None:
            scale_bound = checks.number(scale_bound, "scale_bound", low=0, low_open=True)
        self.register_buffer("mask", mask)
        self.register_buffer("keep", 1.0 - mask, persistent=False)  # the transformed half
        d = len(mask)
        self.net = mlp([d, *hidden, 2 * d])
        nn.init.zeros_(self.net[-1].weight)  # start at the identity
        nn.init.zeros_(self.net[-1].bias)
        self.scale_bound = scale_bound

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        with torch.no_grad():  # keep follows a loaded mask
            self.keep.copy_(1.0 - self.mask)

    def _st(self, x_masked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self.net(x_masked).chunk(2, dim=-1)
        if self.scale_bound is not None:
            s = self.scale_bound * torch.tanh(s / self.scale_bound)
        return s * self.keep, t * self.keep

    def forward(self, x):
        """``(B, d) -> (y (B, d), log|det dy/dx| (B,))``, in nats."""
        x = _check(x, len(self.mask))
        # BEGIN SOLUTION
        s, t = self._st(x * self.mask)
        # s and t are zero on the masked half, so there y = x exactly
        return x * s.exp() + t, s.sum(-1)
        # END SOLUTION

    def inverse(self, y):
        """``(B, d) -> (x (B, d), log|det dx/dy| (B,))``: undoes :meth:`forward` exactly."""
        y = _check(y, len(self.mask), "y")
        # BEGIN SOLUTION
        s, t = self._st(y * self.mask)
        return (y - t) * (-s).exp(), -s.sum(-1)
        # END SOLUTION


class AdditiveCoupling(Saveable, nn.Module):
    """NICE's additive coupling, a Feistel round: ``y = m x + (1 - m)(x + t(m x))``.

    Invertible whatever the function ``t`` is, and volume preserving (``logdet = 0``).
    """

    def __init__(self, mask: torch.Tensor, hidden: Sequence[int] = (64, 64)):
        super().__init__()
        mask = _mask(mask)
        self.register_buffer("mask", mask)
        d = len(mask)
        self.net = mlp([d, *checks.sizes(hidden, "hidden", example="(64, 64)"), d])

    def forward(self, x):
        x = _check(x, len(self.mask))
        t = self.net(x * self.mask) * (1 - self.mask)
        return x + t, x.new_zeros(len(x))

    def inverse(self, y):
        y = _check(y, len(self.mask), "y")
        t = self.net(y * self.mask) * (1 - self.mask)
        return y - t, y.new_zeros(len(y))


class ActNorm(Saveable, nn.Module):
    """Per-feature affine ``y = (x + b) exp(log_s)``, initialised from the first batch
    so that its outputs have zero mean and unit variance (Glow).

    The first batch seen in training mode sets ``b = -mean`` and ``log_s = -log std``.
    A feature whose standard deviation is undefined (a batch of one example) or zero
    (a constant feature) keeps the scale 1, with a warning: dividing by a zero spread
    would give it a log-scale of +13.8 nats and a useless likelihood.
    """

    def __init__(self, d: int):
        super().__init__()
        d = checks.integer(d, "d")
        self.bias = nn.Parameter(torch.zeros(d))
        self.log_scale = nn.Parameter(torch.zeros(d))
        self.register_buffer("initialized", torch.tensor(False))
        self._ready = False

    @torch.no_grad()
    def _initialize(self, x: torch.Tensor) -> None:
        mean = x.mean(0)
        std = x.std(0) if len(x) >= 2 else torch.zeros_like(mean)
        flat = std <= 1e-6 * (1 + mean.abs())
        if len(x) < 2 or flat.any():
            why = (
                "a batch of one example"
                if len(x) < 2
                else f"{int(flat.sum())} of {len(std)} features constant in the first batch"
            )
            warnings.warn(
                f"ActNorm initialised from {why}: those features keep the scale 1. "
                "Initialise on a larger, varied batch (e.g. call the flow on the "
                "training data once) for Glow's data-dependent initialisation.",
                RuntimeWarning,
                stacklevel=3,
            )
        self.bias.copy_(-mean)
        self.log_scale.copy_(torch.where(flat, torch.zeros_like(std), -torch.log(std + 1e-6)))
        self.initialized.fill_(True)

    def forward(self, x):
        x = _check(x, len(self.bias))
        # A Python flag, so that a training step reads nothing from the device; the
        # buffer (saved with the weights) is read once, at the first training step.
        if not self._ready and self.training and len(x):
            if not self.initialized:
                self._initialize(x)
            self._ready = True
        return (x + self.bias) * self.log_scale.exp(), self.log_scale.sum().expand(len(x))

    def inverse(self, y):
        y = _check(y, len(self.bias), "y")
        return y * (-self.log_scale).exp() - self.bias, (-self.log_scale.sum()).expand(len(y))


class InvertibleLinear(Saveable, nn.Module):
    """``y = W x`` with ``W = P L (U + diag(s))``, LU-parameterised (Glow's 1x1
    convolution on flattened features): ``log|det W| = sum log|s|`` in O(d)."""

    def __init__(self, d: int, seed: int = 0):
        super().__init__()
        d = checks.integer(d, "d")
        g = torch.Generator().manual_seed(checks.integer(seed, "seed", low=0))
        q, _ = torch.linalg.qr(torch.randn(d, d, generator=g))
        p, lower, upper = torch.linalg.lu(q)
        s = torch.diagonal(upper)
        self.register_buffer("perm", p)
        # P as an index (P x = x[index]): a gather, not a d x d product.
        self.register_buffer("perm_index", p.argmax(1), persistent=False)
        self.register_buffer("perm_inverse", torch.argsort(p.argmax(1)), persistent=False)
        self.register_buffer("sign_s", torch.sign(s))
        self.register_buffer("l_mask", torch.tril(torch.ones(d, d), -1))
        # Constants of _factors, kept so that a pass builds none of them (not saved).
        self.register_buffer("u_mask", self.l_mask.T.contiguous(), persistent=False)
        self.register_buffer("eye", torch.eye(d), persistent=False)
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(s.abs()))

    def _factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``L`` (unit lower triangular) and ``U + diag(s)`` (upper triangular)."""
        # Fused as a + b * mask: the masks hold 0 and 1 and do not overlap a's nonzero
        # entries, so each entry is a single exact term, as with a separate product and sum.
        lower = torch.addcmul(self.eye, self.lower, self.l_mask)
        upper = torch.addcmul(torch.diag(self.sign_s * self.log_s.exp()), self.upper, self.u_mask)
        return lower, upper

    def weight(self) -> torch.Tensor:
        """The dense ``W = P L U`` (for inspection; the passes apply the factors)."""
        lower, upper = self._factors()
        return self.perm @ lower @ upper

    def forward(self, x):
        # y = P L U x, factor by factor: two triangular products (2 B d^2) and a gather,
        # instead of building W (2 d^3) at every pass.
        x = _check(x, len(self.log_s))
        lower, upper = self._factors()
        y = (x @ upper.T @ lower.T)[:, self.perm_index]
        return y, self.log_s.sum().expand(len(x))

    def inverse(self, y):
        # x = U^-1 L^-1 P^T y: a gather and two triangular solves.
        y = _check(y, len(self.log_s), "y")
        lower, upper = self._factors()
        z = y[:, self.perm_inverse].T
        z = torch.linalg.solve_triangular(lower, z, upper=False, unitriangular=True)
        x = torch.linalg.solve_triangular(upper, z, upper=True).T
        return x, (-self.log_s.sum()).expand(len(y))


class Permute(Saveable, nn.Module):
    """A fixed permutation of the features (``"reverse"`` or random with ``seed``)."""

    def __init__(self, d: int, order: str = "reverse", seed: int = 0):
        super().__init__()
        d = checks.integer(d, "d")
        checks.choice(order, "order", ("reverse", "random"))
        seed = checks.integer(seed, "seed", low=0)
        if order == "reverse":
            perm = torch.arange(d - 1, -1, -1)
        elif order == "random":
            perm = torch.randperm(d, generator=torch.Generator().manual_seed(seed))
        else:
            raise ValueError(f"order must be 'reverse' or 'random', got {order!r}")
        self.register_buffer("perm", perm)
        self.register_buffer("inv", torch.argsort(perm))

    def forward(self, x):
        x = _check(x, len(self.perm))
        return x[:, self.perm], x.new_zeros(len(x))

    def inverse(self, y):
        y = _check(y, len(self.perm), "y")
        return y[:, self.inv], y.new_zeros(len(y))


class LogitTransform(Saveable, nn.Module):
    """Dequantized pixels in ``[0, levels)`` to the real line, with its Jacobian.

    ``u = alpha + (1 - 2 alpha) x / levels`` (squeezed away from 0 and 1), then
    ``y = logit(u)``. Its ``logdet`` makes the flow's ``log_prob`` a density on the
    original ``[0, levels)^d`` scale, so bits/dim compare with other models'.
    """

    def __init__(self, levels: int, alpha: float = 0.05):
        super().__init__()
        self.levels = checks.integer(levels, "levels", low=2)
        self.alpha = checks.number(alpha, "alpha", low=0, high=0.5, low_open=True, high_open=True)

    def forward(self, x):
        x = checks.tensor(x, "x", ndim=2, min_len=0)
        if checks.values_checked() and x.numel():
            lo, hi = float(x.detach().min()), float(x.detach().max())
            if lo < 0 or hi > self.levels:
                raise ValueError(
                    f"x must lie in [0, {self.levels}] (dequantized grey levels), got values "
                    f"in [{lo:g}, {hi:g}]; dequantize integer data first"
                )
        _dequantized(x, self.levels)
        scale = (1 - 2 * self.alpha) / self.levels
        u = self.alpha + scale * x
        y = torch.log(u) - torch.log1p(-u)
        logdet = (math.log(scale) - torch.log(u) - torch.log1p(-u)).sum(-1)
        return y, logdet

    def inverse(self, y):
        y = checks.tensor(y, "y", ndim=2, min_len=0, dtype="float")
        u = torch.sigmoid(y)
        scale = (1 - 2 * self.alpha) / self.levels
        x = (u - self.alpha) / scale
        logdet = (torch.log(u) + torch.log1p(-u) - math.log(scale)).sum(-1)
        return x, logdet


def _mask(mask) -> torch.Tensor:
    m = checks.tensor(mask, "mask", ndim=1, dtype="float")
    if not ((m == 0) | (m == 1)).all() or m.all() or not m.any():
        raise ValueError(
            "mask must be 0/1 with both values present (1 marks the half that passes "
            "unchanged); build one with coupling_mask"
        )
    return m


def _in_range(x: torch.Tensor, levels: int, name: str) -> None:
    """Refuse dequantized values outside ``[0, levels]`` (a value check)."""
    if checks.values_checked() and x.numel():
        lo, hi = float(x.min()), float(x.max())
        if lo < 0 or hi > levels:
            raise ValueError(
                f"{name} must be grey levels 0..{levels - 1} or dequantized values in "
                f"[0, {levels}], got values in [{lo:g}, {hi:g}]; this flow was built for "
                f"levels={levels}"
            )


def _dequantized(x: torch.Tensor, levels: int) -> None:
    """Refuse grey levels that were never dequantized: a density of continuous data
    evaluated at integers is not the likelihood of the discrete data."""
    if not x.is_floating_point():
        raise checks.InputTypeError(
            f"x holds integer grey levels ({x.dtype}); this flow is a density of "
            f"dequantized pixels in [0, {levels}): pass data.dequantize(x, {levels}, "
            "generator) to log_prob, or the integers to loss (which dequantizes)"
        )
    if checks.values_checked() and x.numel() > 1 and bool((x == x.round()).all()):
        raise ValueError(
            "x holds only whole numbers: grey levels that were never dequantized. Pass "
            f"data.dequantize(x, {levels}, generator), uniform noise in [0, 1) added to "
            "each level, so that the density's likelihood bounds the discrete one"
        )


class Flow(Saveable, nn.Module):
    """A stack of transforms and a standard normal base density.

    Args:
        transforms: applied in order from data to latent.
        shape: the shape of one example, e.g. ``(2,)`` or ``(8, 8)``.
        dequantize: for integer data with this many levels, :meth:`loss` adds
            uniform noise to each batch (``log_prob`` takes the continuous values).
    """

    batch_parts = 1  # fit passes the data alone (labels are dropped)

    def __init__(
        self, transforms: Sequence[nn.Module], shape: Sequence[int], dequantize: int | None = None
    ):
        super().__init__()
        transforms = list(transforms)
        for i, t in enumerate(transforms):
            if not (isinstance(t, nn.Module) and callable(getattr(t, "inverse", None))):
                raise checks.InputTypeError(
                    f"transforms[{i}] must be an nn.Module with forward and inverse, "
                    f"got {checks.describe(t)}"
                )
        self.transforms = nn.ModuleList(transforms)
        self.shape = checks.sizes(shape, "shape", allow_empty=False, example="(2,)")
        self.d = math.prod(self.shape)
        if dequantize is not None:
            dequantize = checks.integer(dequantize, "dequantize", low=2)
        self.dequantize = dequantize

    def _flat(self, x, generator=None, name: str = "x", min_len: int = 0) -> torch.Tensor:
        """``x`` flattened ``(B, d)``, in the model's dtype, on its device.

        A flow of continuous data takes floats (integers and NumPy arrays converted). A
        flow of images (``dequantize``) takes either the data set's grey levels, in any
        dtype that holds whole numbers (``x``, ``x.float()``, a NumPy array), which it
        dequantizes here with ``generator``, or values that are already dequantized
        (floats in ``[0, levels]`` with fractional parts), which it takes as they are. A
        singleton channel axis ``(B, 1, H, W)`` is dropped. Inside
        :func:`selfsup._checks.trusted` (a training step) the choice between the two is
        made on the device, without reading the values back.
        """
        if self.dequantize is None:
            x = checks.images(x, name, self.shape, "real", min_len=min_len, like=self)
            return x.reshape(len(x), self.d)
        levels = self.dequantize
        t = checks.as_images(x, name, self.shape, min_len=min_len)  # in the dtype it came in
        if t.is_floating_point() and not checks.values_checked():
            # grey levels or dequantized values: decided on the device, no read-back
            noisy = dequantize(t.long(), levels, generator)
            is_whole = (t == t.round()).all()
            t = torch.where(is_whole, noisy, t.to(noisy.dtype))
        elif not t.is_floating_point() or checks.whole(t):
            t = checks.images(t, name, self.shape, "levels", levels, min_len=min_len)
            t = dequantize(t, levels, generator)
        else:
            t = checks.tensor(t, name, shape=self.shape, min_len=min_len, dtype="float")
            _in_range(t, levels, name)
        return checks.tensor(t, name, min_len=0, like=self, finite=False).reshape(len(t), self.d)

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def transform(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``z = f(x)`` ``(B, d)`` and ``log|det df/dx|`` ``(B,)``; integer images are
        dequantized first (with ``generator``)."""
        return self._forward(self._flat(x, generator))

    def _forward(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z, total = flat, 0.0
        with checks.trusted():  # the input is checked; the transforms check only shapes
            for transform in self.transforms:
                z, logdet = transform(z)
                total = total + logdet
        return z, total

    def encode(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """The code ``z = f(x)``, ``(B, d)``: the flow's representation of ``x``. Integer
        images are dequantized first, with ``generator`` (see :meth:`_flat`)."""
        return self.transform(x, generator=generator)[0]

    def log_prob(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``log p(x)`` in nats, ``(B,)``: exact for continuous ``x``. For integer images
        (a flow with ``dequantize``), ``log p(x + u)`` with uniform noise ``u`` drawn with
        ``generator``: a one-draw estimate of a **lower bound** on the discrete
        log-likelihood (:func:`selfsup.data.dequantize`); already dequantized values
        are taken as they are. See :meth:`_flat` for the inputs taken."""
        return self._log_prob(self._flat(x, generator))

    def _log_prob(self, flat: torch.Tensor) -> torch.Tensor:
        z, logdet = self._forward(flat)
        return -0.5 * (z**2).sum(-1) - 0.5 * self.d * math.log(2 * math.pi) + logdet

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood in nats per example of ``batch`` ``(B, *shape)``,
        ``B >= 1``: the inputs :meth:`log_prob` takes (integer images get fresh
        dequantization noise in every batch)."""
        return -self._log_prob(self._flat(batch, name="batch", min_len=1)).mean()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``x = f^-1(z)``, shaped like the data."""
        return self.trajectory(z)[-1]

    def trajectory(self, z: torch.Tensor) -> list[torch.Tensor]:
        """``z`` and its image after each inverse transform, ending with ``x``."""
        z = checks.tensor(z, "z", shape=(self.d,), min_len=0, dtype="float", like=self)
        steps = [z]
        with checks.trusted():
            for transform in reversed(self.transforms):
                z, _ = transform.inverse(z)
                steps.append(z)
        return [*steps[:-1], steps[-1].reshape(len(z), *self.shape)]

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples ``x = f^-1(z)``, ``z ~ N(0, I)``: floats, or for a flow of images
        (``dequantize``) integer images, rounded down onto the grey levels and clamped to
        ``0..levels-1``."""
        n = checks.sample_count(n)
        g = checks.generator(generator)
        x = self.decode(tensors.randn((n, self.d), g, self._device()))
        if self.dequantize is None:
            return x
        return x.clamp(0, self.dequantize - 1).floor().long()


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
    shape = checks.sizes(shape, "shape", allow_empty=False, example="(2,)")
    layers = checks.integer(layers, "layers")
    hidden = checks.sizes(hidden, "hidden", example="(64, 64)")
    checks.choice(mask, "mask", ("half", "checkerboard", "channel"))
    d = math.prod(shape)
    transforms: list[nn.Module] = [LogitTransform(levels)] if levels is not None else []
    for i in range(layers):
        transforms.append(ActNorm(d))
        if linear:
            transforms.append(InvertibleLinear(d, seed=i))
        transforms.append(AffineCoupling(coupling_mask(mask, shape, flip=i % 2 == 1), hidden))
    return Flow(transforms, shape, dequantize=levels)
