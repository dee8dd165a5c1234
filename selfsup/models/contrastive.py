"""Contrastive learning: InfoNCE, SimCLR, CLIP-style two towers, and how to judge them.

Contrastive methods give up on density and sampling and learn only a
representation: embeddings of two views of the same example (a positive pair)
should be closer than embeddings of different examples (negatives). With
``M_ij = exp(u_i . v_j / tau)``, the InfoNCE loss asks each row of ``M`` to put its
mass on the diagonal.

Also here: Wang & Isola's alignment and uniformity. The augmentations live with
the data (:class:`selfsup.data.Augment`), the few-label linear probe with the
metrics (:func:`selfsup.metrics.linear_probe`); both are re-exported here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks as checks
from .. import tensors
from ..data import Augment
from ..metrics import ProbeScore, linear_probe
from ..saving import Saveable
from .layers import mlp

__all__ = [
    "Augment",
    "ConvEncoder",
    "ProbeScore",
    "SimCLR",
    "TwoTower",
    "alignment",
    "clip_loss",
    "info_nce",
    "linear_probe",
    "nt_xent",
    "uniformity",
]


def _embeddings(z, name: str, min_len: int = 0) -> torch.Tensor:
    """Float embeddings ``(N, r)``. Integer ones are refused: they are almost always
    labels or indices passed by mistake (their losses come out as constants such as
    ``log N``), and an embedding network's outputs are floats."""
    z = checks.tensor(z, name, ndim=2, min_len=min_len)
    if not z.is_floating_point():
        raise checks.InputTypeError(
            f"{name} must be float embeddings (N, r), got {checks.describe(z)}: integers are "
            f"labels or indices, not a network's embeddings; pass the model's outputs (or "
            f"{name}.float() if these integers really are the embeddings)"
        )
    return z


def _pair(u: torch.Tensor, v: torch.Tensor, names=("u", "v")) -> None:
    u, v = _embeddings(u, names[0], 1), _embeddings(v, names[1], 1)
    if u.shape != v.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape, "
            f"got {tuple(u.shape)} and {tuple(v.shape)}"
        )
    if len(u) < 2:
        raise ValueError(
            "a contrastive loss needs at least 2 pairs (the others are the negatives), "
            f"got {len(u)}; pass a larger batch"
        )
    return u, v


def _check_temperature(temperature: float) -> float:
    return checks.number(temperature, "temperature", low=0, low_open=True, fix="e.g. 0.1")


def info_nce(
    u: torch.Tensor,
    v: torch.Tensor,
    temperature: float = 0.1,
    symmetric: bool = False,
    normalize: bool = True,
) -> torch.Tensor:
    """InfoNCE: row ``i`` of ``M_ij = exp(u_i . v_j / tau)`` should pick column ``i``.

    ``-1/N sum_i log(M_ii / sum_j M_ij)``, which is the cross-entropy of the logits
    ``u v^T / tau`` with targets ``0..N-1``. With ``symmetric`` the same is averaged
    with the columns' version. With ``normalize`` (default) the embeddings are
    L2-normalised first, so the loss does not depend on their scale.

    Args:
        u, v: paired embeddings ``(N, r)``; ``(u_i, v_i)`` are positives.
    """
    u, v = _pair(u, v)
    _check_temperature(temperature)
    if normalize:
        u, v = F.normalize(u, dim=-1), F.normalize(v, dim=-1)
    logits = u @ v.T / temperature
    targets = torch.arange(len(u), device=u.device)
    loss = F.cross_entropy(logits, targets)
    return 0.5 * (loss + F.cross_entropy(logits.T, targets)) if symmetric else loss


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """SimCLR's normalised temperature-scaled cross-entropy.

    The ``2N`` embeddings are L2-normalised; each one's positive is its partner view
    and its ``2N - 2`` negatives are all other embeddings (itself excluded). The
    loss is averaged over all ``2N`` anchors.
    """
    z1, z2 = _pair(z1, z2, ("z1", "z2"))
    _check_temperature(temperature)
    n = len(z1)
    # BEGIN SOLUTION
    z = F.normalize(torch.cat([z1, z2]), dim=-1)
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n, device=z.device), torch.arange(n, device=z.device)])
    return F.cross_entropy(logits, targets)
    # END SOLUTION


def clip_loss(
    image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: float | torch.Tensor
) -> torch.Tensor:
    """CLIP's symmetric loss: normalise both, logits ``= scale * a b^T``, and average
    the cross-entropies over rows (a -> b) and columns (b -> a)."""
    image_emb, text_emb = _pair(image_emb, text_emb, ("image_emb", "text_emb"))
    if isinstance(logit_scale, torch.Tensor) and logit_scale.numel() == 1:
        scale = logit_scale.reshape(())  # keeps its gradient (a learned scale)
        if checks.values_checked() and not (torch.isfinite(scale) and scale > 0):
            raise ValueError(f"logit_scale must be a positive number, got {float(scale)!r}")
    else:
        scale = checks.number(logit_scale, "logit_scale", low=0, low_open=True)
    a, b = F.normalize(image_emb, dim=-1), F.normalize(text_emb, dim=-1)
    logits = scale * a @ b.T
    targets = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets))


def alignment(z1: torch.Tensor, z2: torch.Tensor, alpha: float = 2.0) -> float:
    """``E ||f(x) - f(y)||^alpha`` over positive pairs of L2-normalised embeddings (lower
    is better aligned), Wang & Isola (2020)."""
    z1, z2 = _pair(z1, z2, ("z1", "z2"))
    alpha = checks.number(alpha, "alpha", low=0, low_open=True)
    a, b = F.normalize(z1, dim=-1), F.normalize(z2, dim=-1)
    return float((a - b).norm(dim=1).pow(alpha).mean())


def uniformity(z: torch.Tensor, t: float = 2.0) -> float:
    """``log E exp(-t ||f(x) - f(y)||^2)`` over all pairs of L2-normalised embeddings
    (lower is more uniform on the sphere), Wang & Isola (2020)."""
    z = _embeddings(z, "z", min_len=2)
    t = checks.number(t, "t", low=0, low_open=True)
    a = F.normalize(z, dim=-1)
    sq = torch.pdist(a).pow(2)
    return float(torch.logsumexp(-t * sq, 0) - math.log(len(sq)))


class _GridPool(nn.Module):
    """``nn.AdaptiveAvgPool2d(size)``, through ``avg_pool2d`` when the image divides
    evenly: the same windows and the same numbers up to round-off (bit for bit at 8x8 on
    the CPU). On the CPU the SimCLR step on the 8x8 digits (two views of 256, one thread)
    took a third less time than with the adaptive pooling."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.size or w % self.size:
            return F.adaptive_avg_pool2d(x, self.size)
        return F.avg_pool2d(x, (h // self.size, w // self.size))


class ConvEncoder(Saveable, nn.Module):
    """A small convolutional encoder for single-channel images of any size."""

    def __init__(self, out_dim: int = 128, width: int = 32):
        super().__init__()
        out_dim, width = checks.integer(out_dim, "out_dim"), checks.integer(width, "width")
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(),
            _GridPool(4), nn.Flatten(),
            nn.Linear(2 * width * 16, out_dim),
        )  # fmt: skip
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checks.tensor(x, "x", ndim=(3, 4), min_len=0, dtype="float", like=self)
        return self.net(x[:, None] if x.ndim == 3 else x)


class SimCLR(Saveable, nn.Module):
    """SimCLR: an encoder ``f`` (the representation) and a projection head ``g``
    trained with :func:`nt_xent` on two augmented views of each image.

    Args:
        encoder: maps images to ``(B, encoder_dim)``; must have ``out_dim``.
        projection_dim: the output size of the MLP head ``g``.
        temperature: of the NT-Xent loss.
        augment: the view generator (default :class:`Augment`), on floats in ``[0, 1]``.
        levels: the data set's number of grey levels: the model then takes its integer
            images (``0..levels-1``) and scales them to ``[0, 1]`` itself. ``None``: it
            takes floats in ``[0, 1]``.
    """

    def __init__(
        self,
        encoder: nn.Module,
        projection_dim: int = 64,
        temperature: float = 0.5,
        augment: nn.Module | None = None,
        levels: int | None = None,
    ):
        super().__init__()
        self.temperature = _check_temperature(temperature)
        if not isinstance(encoder, nn.Module) or not hasattr(encoder, "out_dim"):
            raise checks.InputTypeError(
                "encoder must be an nn.Module with an out_dim attribute (its output size), "
                f"got {checks.describe(encoder)}"
            )
        self.encoder = encoder
        dim = checks.integer(encoder.out_dim, "encoder.out_dim")
        self.head = mlp([dim, dim, checks.integer(projection_dim, "projection_dim")])
        self.augment = augment if augment is not None else Augment()
        self.levels = None if levels is None else checks.integer(levels, "levels", low=2)

    min_batch_size = 2  # NT-Xent needs negatives: fit never makes a batch of one
    batch_parts = 1  # fit passes the images alone (labels are dropped)

    def _images(self, x, name: str, min_len: int = 0) -> torch.Tensor:
        """Images ``(B, H, W)`` (or ``(B, 1, H, W)``) as floats in ``[0, 1]``, in the
        model's dtype, on its device: the data set's grey levels (any dtype that holds
        whole numbers) with ``levels``, else floats in ``[0, 1]``."""
        return checks.unit_images(x, name, None, self.levels, ndim=3, min_len=min_len,
                                  like=self)  # fmt: skip

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The representation ``f(x)`` (before the head), ``(B, encoder_dim)``, of images
        (the data set's grey levels, or floats in ``[0, 1]`` without ``levels``)."""
        x = self._images(x, "x")
        with tensors.eval_mode(self), checks.trusted():
            return self.encoder(x)

    def projections(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(g(f(v1)), g(f(v2)))``: the head's outputs, ``(B, projection_dim)`` each, for
        two augmented views of each image in ``x`` (as :meth:`embed` takes them). What the loss
        compares; with gradients, so wrap it in ``torch.no_grad()`` to inspect it."""
        return self._projections(self._images(x, "x"), generator)

    def _projections(self, x: torch.Tensor, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        checks.generator(generator)
        with checks.trusted():
            return tuple(
                self.head(self.encoder(self.augment(x, generator=generator))) for _ in range(2)
            )

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        """NT-Xent of two augmented views of each image in ``batch`` ``(B, H, W)``
        (as :meth:`embed` takes them, ``B >= 2``)."""
        z1, z2 = self._projections(self._images(batch, "batch", min_len=2))
        with checks.trusted():
            return nt_xent(z1, z2, self.temperature)


class TwoTower(Saveable, nn.Module):
    """CLIP-style: two encoders for two modalities, trained with :func:`clip_loss`
    and a learned ``logit_scale`` (initialised to 1 / 0.07, capped at 100)."""

    def __init__(self, encoder_a: nn.Module, encoder_b: nn.Module, init_temperature: float = 0.07):
        super().__init__()
        init_temperature = checks.number(init_temperature, "init_temperature", low=0,
                                         low_open=True)  # fmt: skip
        self.encoder_a, self.encoder_b = encoder_a, encoder_b
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / init_temperature)))

    def logit_scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=100.0)

    @torch.no_grad()
    def embed(self, x: torch.Tensor, modality: str = "a") -> torch.Tensor:
        """L2-normalised embeddings of one modality, ``"a"`` or ``"b"``."""
        checks.choice(modality, "modality", ("a", "b"))
        x = checks.tensor(x, "x", min_len=0, dtype="float", like=self)
        encoder = self.encoder_a if modality == "a" else self.encoder_b
        with tensors.eval_mode(self):
            return F.normalize(encoder(x), dim=-1)

    min_batch_size = 2  # the other pairs of the batch are the negatives
    batch_parts = 2  # fit passes (x_a, x_b) and drops any further parts (labels)

    def loss(self, batch) -> torch.Tensor:
        """:func:`clip_loss` of a batch of pairs ``(x_a, x_b)``, each ``(B, ...)``,
        ``B >= 2``, with the learned scale."""
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
            raise checks.InputTypeError(
                f"batch must be a pair (x_a, x_b) of paired examples, got {checks.describe(batch)}"
            )
        xa = checks.tensor(batch[0], "batch[0]", min_len=2, dtype="float", like=self)
        xb = checks.tensor(batch[1], "batch[1]", min_len=2, dtype="float", like=self)
        return clip_loss(self.encoder_a(xa), self.encoder_b(xb), self.logit_scale())
