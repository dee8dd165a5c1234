"""Building blocks shared by the models."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks as checks

__all__ = ["TimeMLP", "mlp", "time_embedding"]


def mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear layers of the given sizes with ``activation`` between them (not after the last)."""
    sizes = checks.sizes(sizes, "sizes", allow_empty=False, example="(64, 128, 10)")
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least an input and an output width, got {sizes}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def time_embedding(s: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features ``(B, dim)`` of a per-example scalar ``s`` ``(B,)`` in about
    ``[0, 1]`` (a diffusion's normalised log-SNR, a flow's time): ``sin`` and ``cos`` at
    ``dim / 2`` frequencies from 1 to 1000, as in the transformer's positions."""
    half = dim // 2
    freqs = torch.exp(torch.linspace(0.0, math.log(1000.0), half, device=s.device, dtype=s.dtype))
    angles = s[:, None] * freqs[None] * math.pi
    return torch.cat([angles.sin(), angles.cos()], 1)


class TimeMLP(nn.Module):
    """An MLP from ``(x, s)`` to ``(B, out)`` (default: ``x``'s width): ``x`` ``(B, d)`` flattened,
    ``s`` ``(B,)`` a time (or noise level) in about ``[0, 1]``, fed through
    :func:`time_embedding` and added to every hidden layer (a per-layer projection).

    The denoiser of :class:`selfsup.models.diffusion.Diffusion` and the velocity field of
    :class:`selfsup.models.flow_matching.FlowMatching` on small inputs.
    """

    def __init__(
        self, d: int, hidden: Sequence[int] = (256, 256), embed: int = 64, out: int | None = None
    ):
        super().__init__()
        d = checks.integer(d, "d")
        out = d if out is None else checks.integer(out, "out")
        hidden = checks.sizes(hidden, "hidden", allow_empty=False, example="(256, 256)")
        embed = checks.integer(embed, "embed", low=2)
        self.d, self.embed = d, embed - embed % 2
        widths = [d, *hidden]
        self.layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.times = nn.ModuleList(nn.Linear(self.embed, b) for b in hidden)
        self.out = nn.Linear(widths[-1], out)
        nn.init.zeros_(self.out.weight)  # starts at 0: no prediction, a stable start
        nn.init.zeros_(self.out.bias)

    def hidden(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """The last hidden layer ``(B, hidden[-1])`` (the features before the output)."""
        e = time_embedding(s.to(x.dtype), self.embed)
        h = x
        for layer, time in zip(self.layers, self.times, strict=True):
            h = F.silu(layer(h) + time(e))
        return h

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(x, s))
