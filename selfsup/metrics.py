"""Likelihood units.

The book reports log-likelihoods per example in **nats** (``model.log_prob``) and
converts them for comparison across data sets:

- ``bits = nats / ln 2``;
- bits per dimension: ``NLL_bits / d``, the average code length per pixel; a
  uniform model of 17-level pixels scores ``log2 17 = 4.087``.

Continuous densities of discrete data are evaluated on uniformly dequantized data
(:func:`selfsup.data.dequantize`), which bounds the discrete likelihood from below,
so their bits/dim are comparable with discrete models' and never flattered.
"""

from __future__ import annotations

import math

import torch

__all__ = ["bits_per_dim", "nats_to_bits"]


def nats_to_bits(nats):
    """Convert nats to bits (divide by ``ln 2``); floats, arrays or tensors."""
    return nats / math.log(2)


def bits_per_dim(nll_nats, dims: int) -> float:
    """Mean negative log-likelihood in bits per dimension.

    Args:
        nll_nats: negative log-likelihoods per example in nats, shape ``(B,)`` (or
            a scalar mean).
        dims: the number of dimensions of one example (64 for 8x8 digits).
    """
    if not (isinstance(dims, int) and dims >= 1):
        raise ValueError(f"dims must be a positive int, got {dims!r}")
    nll = torch.as_tensor(nll_nats, dtype=torch.float64)
    if torch.isnan(nll).any():
        raise ValueError("nll_nats contains NaN")
    return float(nats_to_bits(nll.mean()) / dims)
