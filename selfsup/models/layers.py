"""Building blocks shared by the models."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from .. import _checks as checks

__all__ = ["mlp"]


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
