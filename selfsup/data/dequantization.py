"""Uniform dequantization: integer data made continuous, for continuous likelihoods."""

from __future__ import annotations

import torch

from .. import _checks as checks
from .. import tensors

__all__ = ["dequantize"]


def dequantize(
    x: torch.Tensor, levels: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Uniform dequantization: ``x + u`` with ``u ~ U[0, 1)`` for each entry.

    Integer data with values ``0..levels-1`` become continuous data on
    ``[0, levels)``. For any density ``q`` on the dequantized data,
    ``log P(x) >= E_u log q(x + u)`` where ``P`` is the discrete model that ``q``
    induces by integrating over each unit cube: a continuous model's
    log-likelihood on dequantized data is a *lower bound* on a discrete
    log-likelihood, so its bits/dim are comparable with discrete models' and can
    only look worse.

    Args:
        x: integer tensor, any shape, values in ``0..levels-1``.
        levels: the number of discrete values.
        generator: an optional torch generator for the noise.
    Returns:
        a float32 tensor of the shape of ``x``.
    """

    levels = checks.integer(levels, "levels", low=2)
    x = checks.tensor(x, "x", min_len=0)
    if x.is_floating_point() or x.dtype == torch.bool:
        raise checks.InputTypeError(
            f"x must be an integer tensor (grey levels), got {checks.describe(x)}; "
            "dequantize discrete data only"
        )
    if x.numel() and checks.values_checked() and (int(x.min()) < 0 or int(x.max()) >= levels):
        raise ValueError(
            f"x has values in [{int(x.min())}, {int(x.max())}], outside 0..{levels - 1}; "
            "check levels"
        )
    noise = tensors.rand(x.shape, checks.generator(generator), x.device)
    return x.float() + noise
