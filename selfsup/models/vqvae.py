"""Vector quantization and the VQ-VAE.

A VQ-VAE replaces the VAE's Gaussian noise on the code by *quantization*: each
encoder output vector is snapped to the nearest of ``K`` learned code vectors, so
the code of an image is a grid of integers, at most ``log2 K`` bits per position. A prior
over these integers (an autoregressive model) then makes it a generative model.

:class:`VectorQuantizer` follows van den Oord et al. (2017): nearest-code lookup,
the straight-through gradient, codebook and commitment losses (or EMA codebook
updates with Laplace smoothing), plus restarts of dead codes and usage statistics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["VQOutput", "VQVAE", "VectorQuantizer"]


class VQOutput(NamedTuple):
    quantized: torch.Tensor  # like the input; its gradient passes straight to the input
    indices: torch.Tensor  # the input's shape without the last axis, int64
    codebook_loss: torch.Tensor  # ||sg[z_e] - e||^2 (zero with EMA updates)
    commitment_loss: torch.Tensor  # ||z_e - sg[e]||^2
    loss: torch.Tensor  # codebook_loss + beta * commitment_loss
    perplexity: (
        torch.Tensor
    )  # exp(entropy of the batch's code usage): the effective number of codes


class VectorQuantizer(nn.Module):
    """Nearest-neighbour quantization onto ``num_codes`` vectors of size ``dim``.

    Args:
        num_codes: ``K``, the codebook size.
        dim: the size of each code vector (the last axis of the input).
        beta: the weight of the commitment loss.
        ema: update the codebook by exponential moving averages of the assigned
            encoder outputs (with Laplace smoothing) instead of by gradients.
        decay: the EMA decay.
        restart_dead: in training, replace codes whose usage (an EMA of assignment
            frequencies) falls below ``dead_threshold / K`` by random encoder outputs.
    """

    def __init__(
        self,
        num_codes: int,
        dim: int,
        beta: float = 0.25,
        ema: bool = False,
        decay: float = 0.99,
        eps: float = 1e-5,
        restart_dead: bool = False,
        dead_threshold: float = 0.03,
    ):
        super().__init__()
        if not (
            isinstance(num_codes, int) and num_codes >= 2 and isinstance(dim, int) and dim >= 1
        ):
            raise ValueError(f"need num_codes >= 2 and dim >= 1, got {num_codes!r} and {dim!r}")
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {decay!r}")
        self.num_codes, self.dim, self.beta = num_codes, dim, beta
        self.ema, self.decay, self.eps = ema, decay, eps
        self.restart_dead, self.dead_threshold = restart_dead, dead_threshold
        codebook = torch.randn(num_codes, dim) / math.sqrt(dim)
        if ema:
            self.register_buffer("codebook", codebook)
            self.register_buffer("ema_count", torch.ones(num_codes))
            self.register_buffer("ema_sum", codebook.clone())
        else:
            self.codebook = nn.Parameter(codebook)
        self.register_buffer("usage", torch.full((num_codes,), 1.0 / num_codes))

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code (squared Euclidean distance) for each row."""
        # BEGIN SOLUTION
        distances = (
            (flat**2).sum(1, keepdim=True)
            - 2 * flat @ self.codebook.T
            + (self.codebook**2).sum(1)[None]
        )
        return distances.argmin(1)
        # END SOLUTION

    def forward(self, z_e: torch.Tensor) -> VQOutput:
        if not isinstance(z_e, torch.Tensor) or z_e.shape[-1] != self.dim:
            got = tuple(z_e.shape) if isinstance(z_e, torch.Tensor) else type(z_e).__name__
            raise ValueError(f"z_e must be a tensor of shape (..., {self.dim}), got {got}")
        if not torch.isfinite(z_e).all():
            raise ValueError("z_e contains NaN or inf")
        flat = z_e.reshape(-1, self.dim)
        indices = self.nearest(flat)
        codes = self.codebook[indices]
        commitment = F.mse_loss(flat, codes.detach())
        codebook_loss = flat.new_zeros(()) if self.ema else F.mse_loss(codes, flat.detach())
        # Counts by bincount, not a (N, K) one-hot matrix: K times less memory traffic.
        counts = torch.bincount(indices, minlength=self.num_codes).to(flat.dtype)
        frequency = counts / len(flat)
        perplexity = torch.exp(-(frequency * torch.log(frequency + 1e-10)).sum())
        if self.training:
            with torch.no_grad():
                self.usage.mul_(self.decay).add_((1 - self.decay) * frequency)
                if self.ema:
                    self._ema_update(flat.detach(), indices, counts)
                if self.restart_dead:
                    self._restart(flat.detach())
        quantized = flat + (codes - flat).detach()  # straight-through
        return VQOutput(
            quantized.reshape(z_e.shape),
            indices.reshape(z_e.shape[:-1]),
            codebook_loss,
            commitment,
            codebook_loss + self.beta * commitment,
            perplexity,
        )

    def _ema_update(self, flat: torch.Tensor, indices: torch.Tensor, counts: torch.Tensor) -> None:
        sums = torch.zeros_like(self.ema_sum).index_add_(0, indices, flat)  # per-code sums
        self.ema_count.mul_(self.decay).add_((1 - self.decay) * counts)
        self.ema_sum.mul_(self.decay).add_((1 - self.decay) * sums)
        n = self.ema_count.sum()
        smoothed = (self.ema_count + self.eps) / (n + self.num_codes * self.eps) * n  # Laplace
        self.codebook.copy_(self.ema_sum / smoothed[:, None])

    def _restart(self, flat: torch.Tensor) -> None:
        dead = torch.nonzero(self.usage < self.dead_threshold / self.num_codes).squeeze(1)
        if len(dead) == 0:
            return
        picks = flat[torch.randint(len(flat), (len(dead),), device=flat.device)]
        self.codebook.data[dead] = picks
        self.usage[dead] = 1.0 / self.num_codes
        if self.ema:
            self.ema_sum[dead] = picks
            self.ema_count[dead] = 1.0

    def dead_codes(self) -> int:
        """How many codes have (EMA) usage below ``dead_threshold / K``."""
        return int((self.usage < self.dead_threshold / self.num_codes).sum())

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """The code vectors of integer ``indices``, shape ``(*indices.shape, dim)``."""
        if (
            indices.is_floating_point()
            or int(indices.min()) < 0
            or int(indices.max()) >= self.num_codes
        ):
            raise ValueError(f"indices must be integers in 0..{self.num_codes - 1}")
        return self.codebook[indices]


class VQVAE(nn.Module):
    """A convolutional VQ-VAE for single-channel integer images.

    The encoder halves the resolution ``downsample`` times (8x8 -> 4x4 by default),
    the quantizer turns each position into one of ``num_codes`` integers, and the
    decoder outputs a categorical distribution over ``levels`` grey levels per pixel,
    so the reconstruction term is a log-likelihood in nats, as in :class:`VAE`.

    Protocol: ``encode(x) -> indices (B, h, w)``, ``decode(indices) -> mean image``,
    ``loss(batch)``; ``code_shape`` and ``num_codes`` describe the discrete codes for
    a prior (see the autoregressive chapter).
    """

    def __init__(
        self,
        shape: Sequence[int],
        num_codes: int = 32,
        code_dim: int = 16,
        levels: int = 17,
        width: int = 64,
        downsample: int = 1,
        **quantizer,
    ):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        if len(self.shape) != 2:
            raise ValueError(f"shape must be (H, W), got {shape!r}")
        if not (isinstance(levels, int) and levels >= 2):
            raise ValueError(f"levels must be an int >= 2, got {levels!r}")
        h, w = self.shape
        if h % 2**downsample or w % 2**downsample:
            raise ValueError(f"H and W must be divisible by 2**downsample = {2**downsample}")
        self.levels, self.num_codes = levels, num_codes
        self.code_shape = (h // 2**downsample, w // 2**downsample)
        enc: list[nn.Module] = [nn.Conv2d(1, width, 3, padding=1), nn.ReLU()]
        dec: list[nn.Module] = [nn.Conv2d(code_dim, width, 3, padding=1), nn.ReLU()]
        for _ in range(downsample):
            enc += [nn.Conv2d(width, width, 4, stride=2, padding=1), nn.ReLU()]
            dec += [nn.ConvTranspose2d(width, width, 4, stride=2, padding=1), nn.ReLU()]
        enc += [nn.Conv2d(width, code_dim, 1)]
        dec += [nn.Conv2d(width, levels, 1)]
        self.encoder, self.decoder = nn.Sequential(*enc), nn.Sequential(*dec)
        self.quantizer = VectorQuantizer(num_codes, code_dim, **quantizer)

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or tuple(x.shape[1:]) != self.shape:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be a tensor of shape (B, {self.shape}), got {got}")
        if x.is_floating_point() or int(x.min()) < 0 or int(x.max()) >= self.levels:
            raise ValueError(f"x must be integers in 0..{self.levels - 1}")
        return x

    def quantize(self, x: torch.Tensor) -> VQOutput:
        z_e = self.encoder(self._check(x).float()[:, None] / (self.levels - 1))
        return self.quantizer(z_e.permute(0, 2, 3, 1))  # channels last

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The discrete code of each image: integers ``(B, h, w)`` in ``0..K-1``."""
        return self.quantize(x).indices

    def _logits(self, z_q: torch.Tensor) -> torch.Tensor:
        return self.decoder(z_q.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # (B, H, W, levels)

    @torch.no_grad()
    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """The decoder's mean image ``E[x | code]``, ``(B, H, W)``, in grey levels."""
        probs = torch.softmax(self._logits(self.quantizer.lookup(indices)), -1)
        return (probs * torch.arange(self.levels, dtype=probs.dtype)).sum(-1)

    def reconstruction_log_prob(self, x: torch.Tensor, out: VQOutput | None = None) -> torch.Tensor:
        """``log p(x | quantized code of x)`` per image, in nats."""
        out = self.quantize(x) if out is None else out
        logp = torch.log_softmax(self._logits(out.quantized), -1)
        return logp.gather(-1, x.long()[..., None]).squeeze(-1).sum((1, 2))

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        """Negative reconstruction log-likelihood (nats per image) plus the VQ losses,
        summed (not averaged) over the code's elements so both are per image."""
        out = self.quantize(batch)
        elements = math.prod(self.code_shape) * self.quantizer.dim
        return -self.reconstruction_log_prob(batch, out).mean() + elements * out.loss

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode codes drawn *uniformly and independently* per position: what a
        VQ-VAE without a learned prior generates (mean images)."""
        idx = torch.randint(self.num_codes, (n, *self.code_shape), generator=generator)
        return self.decode(idx)
