"""Contrastive learning: InfoNCE, SimCLR, CLIP-style two towers, and how to judge them.

Contrastive methods give up on density and sampling and learn only a
representation: embeddings of two views of the same example (a positive pair)
should be closer than embeddings of different examples (negatives). With
``M_ij = exp(u_i . v_j / tau)``, the InfoNCE loss asks each row of ``M`` to put its
mass on the diagonal.

Also here: image augmentations in pure torch (no torchvision), the few-label
linear probe, and Wang & Isola's alignment and uniformity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .autoencoder import mlp

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


def _pair(u: torch.Tensor, v: torch.Tensor, names=("u", "v")) -> None:
    for name, t in zip(names, (u, v), strict=True):
        if not isinstance(t, torch.Tensor) or t.ndim != 2:
            raise ValueError(f"{name} must be a tensor of shape (N, r)")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name} contains NaN or inf")
    if u.shape != v.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape, "
            f"got {tuple(u.shape)} and {tuple(v.shape)}"
        )
    if len(u) < 2:
        raise ValueError("a contrastive loss needs at least 2 pairs (the others are the negatives)")


def _check_temperature(temperature: float) -> None:
    if not (
        isinstance(temperature, (int, float)) and temperature > 0 and math.isfinite(temperature)
    ):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")


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
    _pair(u, v)
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
    _pair(z1, z2, ("z1", "z2"))
    _check_temperature(temperature)
    n = len(z1)
    # BEGIN SOLUTION
    z = F.normalize(torch.cat([z1, z2]), dim=-1)
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, targets)
    # END SOLUTION


def clip_loss(
    image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: float | torch.Tensor
) -> torch.Tensor:
    """CLIP's symmetric loss: normalise both, logits ``= scale * a b^T``, and average
    the cross-entropies over rows (a -> b) and columns (b -> a)."""
    _pair(image_emb, text_emb, ("image_emb", "text_emb"))
    scale = torch.as_tensor(logit_scale)
    if not (torch.isfinite(scale).all() and (scale > 0).all()):
        raise ValueError(f"logit_scale must be a positive number, got {logit_scale!r}")
    a, b = F.normalize(image_emb, dim=-1), F.normalize(text_emb, dim=-1)
    logits = scale * a @ b.T
    targets = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets))


def alignment(z1: torch.Tensor, z2: torch.Tensor, alpha: float = 2.0) -> float:
    """``E ||f(x) - f(y)||^alpha`` over positive pairs of L2-normalised embeddings (lower
    is better aligned), Wang & Isola (2020)."""
    _pair(z1, z2, ("z1", "z2"))
    a, b = F.normalize(z1, dim=-1), F.normalize(z2, dim=-1)
    return float((a - b).norm(dim=1).pow(alpha).mean())


def uniformity(z: torch.Tensor, t: float = 2.0) -> float:
    """``log E exp(-t ||f(x) - f(y)||^2)`` over all pairs of L2-normalised embeddings
    (lower is more uniform on the sphere), Wang & Isola (2020)."""
    if not isinstance(z, torch.Tensor) or z.ndim != 2 or len(z) < 2:
        raise ValueError("z must be a tensor of shape (N, r) with N >= 2")
    a = F.normalize(z, dim=-1)
    sq = torch.pdist(a).pow(2)
    return float(torch.logsumexp(-t * sq, 0) - math.log(len(sq)))


class Augment(nn.Module):
    """Random views of images ``(B, H, W)`` with values in ``[0, 1]``, in pure torch.

    Each image gets, independently: a small rotation (up to ``rotate`` degrees), a
    shift of up to ``shift`` pixels (as a fraction of the size for any image size),
    Gaussian pixel noise of std ``noise``, and a zeroed ``cutout x cutout`` square
    with probability ``cutout_p``. Output: same shape, clamped to ``[0, 1]``.
    """

    def __init__(
        self,
        rotate: float = 15.0,
        shift: float = 1.0,
        noise: float = 0.05,
        cutout: int = 2,
        cutout_p: float = 0.5,
    ):
        super().__init__()
        self.rotate, self.shift, self.noise = rotate, shift, noise
        self.cutout, self.cutout_p = cutout, cutout_p

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim != 3 or not x.is_floating_point():
            raise ValueError("x must be float images (B, H, W) with values in [0, 1]")
        b, h, w = x.shape
        dev = x.device

        def rand(*shape):
            return torch.rand(shape, generator=generator, device=dev)

        angle = (2 * rand(b) - 1) * math.radians(self.rotate)
        shift = (2 * rand(b, 2) - 1) * self.shift * 2 / torch.tensor([w, h], device=dev)
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack(
            [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
        )
        grid = F.affine_grid(theta, (b, 1, h, w), align_corners=False)
        out = F.grid_sample(x[:, None], grid, align_corners=False, padding_mode="zeros")[:, 0]
        if self.noise > 0:
            out = out + self.noise * torch.randn(out.shape, generator=generator, device=dev)
        if self.cutout > 0 and self.cutout_p > 0:
            ys = (rand(b) * (h - self.cutout + 1)).long()
            xs = (rand(b) * (w - self.cutout + 1)).long()
            rows = torch.arange(h, device=dev)[None, :, None]
            cols = torch.arange(w, device=dev)[None, None, :]
            box = (
                (rows >= ys[:, None, None])
                & (rows < ys[:, None, None] + self.cutout)
                & (cols >= xs[:, None, None])
                & (cols < xs[:, None, None] + self.cutout)
            )
            apply = (rand(b) < self.cutout_p)[:, None, None]
            out = out.masked_fill(box & apply, 0.0)
        return out.clamp(0, 1)


class ConvEncoder(nn.Module):
    """A small convolutional encoder for single-channel images of any size."""

    def __init__(self, out_dim: int = 128, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),
            nn.Linear(2 * width * 16, out_dim),
        )  # fmt: skip
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x[:, None] if x.ndim == 3 else x)


class SimCLR(nn.Module):
    """SimCLR: an encoder ``f`` (the representation) and a projection head ``g``
    trained with :func:`nt_xent` on two augmented views of each image.

    Args:
        encoder: maps images to ``(B, encoder_dim)``; must have ``out_dim``.
        projection_dim: the output size of the MLP head ``g``.
        temperature: of the NT-Xent loss.
        augment: the view generator (default :class:`Augment`).
    """

    def __init__(
        self,
        encoder: nn.Module,
        projection_dim: int = 64,
        temperature: float = 0.5,
        augment: nn.Module | None = None,
    ):
        super().__init__()
        _check_temperature(temperature)
        self.encoder = encoder
        dim = int(encoder.out_dim)
        self.head = mlp([dim, dim, projection_dim])
        self.temperature = temperature
        self.augment = augment if augment is not None else Augment()

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The representation ``f(x)`` (before the head), ``(B, encoder_dim)``."""
        self.eval()
        return self.encoder(x.float())

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        x = batch.float()
        z1 = self.head(self.encoder(self.augment(x)))
        z2 = self.head(self.encoder(self.augment(x)))
        return nt_xent(z1, z2, self.temperature)


class TwoTower(nn.Module):
    """CLIP-style: two encoders for two modalities, trained with :func:`clip_loss`
    and a learned ``logit_scale`` (initialised to 1 / 0.07, capped at 100)."""

    def __init__(self, encoder_a: nn.Module, encoder_b: nn.Module, init_temperature: float = 0.07):
        super().__init__()
        self.encoder_a, self.encoder_b = encoder_a, encoder_b
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / init_temperature)))

    def logit_scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=100.0)

    @torch.no_grad()
    def embed(self, x: torch.Tensor, modality: str = "a") -> torch.Tensor:
        """L2-normalised embeddings of one modality, ``"a"`` or ``"b"``."""
        if modality not in ("a", "b"):
            raise ValueError(f"modality must be 'a' or 'b', got {modality!r}")
        self.eval()
        encoder = self.encoder_a if modality == "a" else self.encoder_b
        return F.normalize(encoder(x.float()), dim=-1)

    def loss(self, batch) -> torch.Tensor:
        xa, xb = batch
        return clip_loss(self.encoder_a(xa.float()), self.encoder_b(xb.float()), self.logit_scale())


class ProbeScore(NamedTuple):
    """Few-label linear-probe accuracy: mean and standard deviation over seeds."""

    mean: float
    std: float


def linear_probe(
    train_feats,
    train_labels,
    test_feats,
    test_labels,
    labels_per_class: int,
    seeds: Sequence[int] = range(10),
) -> ProbeScore:
    """Accuracy of a logistic regression trained on ``labels_per_class`` labelled
    examples per class (drawn per seed), on standardised features.

    Args:
        train_feats, test_feats: ``(n, f)`` features; labels ``(n,)``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def arr(x, name):
        a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        a = a.reshape(len(a), -1).astype(np.float64)
        if not np.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or inf")
        return a

    xtr, xte = arr(train_feats, "train_feats"), arr(test_feats, "test_feats")
    ytr, yte = np.asarray(train_labels).ravel(), np.asarray(test_labels).ravel()
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise ValueError("features and labels must have the same length")
    classes, counts = np.unique(ytr, return_counts=True)
    if not (isinstance(labels_per_class, int) and 1 <= labels_per_class <= counts.min()):
        raise ValueError(
            f"labels_per_class must be an int in [1, {counts.min()}], got {labels_per_class!r}"
        )
    scores = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        idx = np.concatenate(
            [rng.choice(np.flatnonzero(ytr == c), labels_per_class, replace=False) for c in classes]
        )
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
        clf.fit(xtr[idx], ytr[idx])
        scores.append((clf.predict(xte) == yte).mean())
    return ProbeScore(float(np.mean(scores)), float(np.std(scores)))
