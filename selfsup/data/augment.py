"""Random views of images for contrastive learning, in pure torch."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks as checks
from .. import tensors
from ..saving import Saveable

__all__ = ["Augment"]


class Augment(Saveable, nn.Module):
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
        self.rotate = checks.number(rotate, "rotate", low=0, high=180)
        self.shift = checks.number(shift, "shift", low=0)
        self.noise = checks.number(noise, "noise", low=0)
        self.cutout = checks.integer(cutout, "cutout", low=0)
        self.cutout_p = checks.probability(cutout_p, "cutout_p")

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = checks.images(x, "x", None, "unit", ndim=3, min_len=0)
        checks.generator(generator)
        b, h, w = x.shape
        if self.cutout > min(h, w):
            raise ValueError(f"cutout={self.cutout} does not fit in {h}x{w} images")
        dev = x.device

        def rand(*shape):
            return tensors.rand(shape, generator, dev)

        angle = (2 * rand(b) - 1) * math.radians(self.rotate)
        shift = (2 * rand(b, 2) - 1) * self.shift * 2
        shift = torch.stack([shift[:, 0] / w, shift[:, 1] / h], 1)  # no tensor from the host
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack(
            [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
        )
        grid = F.affine_grid(theta, (b, 1, h, w), align_corners=False)
        out = F.grid_sample(x[:, None], grid, align_corners=False, padding_mode="zeros")[:, 0]
        if self.noise > 0:
            out = out + self.noise * tensors.randn(out.shape, generator, dev)
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
