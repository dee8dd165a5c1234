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

from .. import _checks as checks
from .. import tensors
from ..saving import Saveable

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


class VectorQuantizer(Saveable, nn.Module):
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
        init: ``"random"``, codes drawn from ``N(0, I / dim)``; or ``"data"``, codes set
            to ``K`` random encoder outputs of the first training batch (drawn without
            replacement when the batch holds at least ``K`` vectors), so that every code
            starts where the encoder's outputs are, whatever their scale. A large
            codebook started at random can lose all codes but one before the encoder's
            outputs spread out; the data start is a common remedy (as in k-means
            initialisation of the codebook).
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
        init: str = "random",
    ):
        super().__init__()
        num_codes = checks.integer(num_codes, "num_codes", low=2)
        dim = checks.integer(dim, "dim")
        beta = checks.number(beta, "beta", low=0)
        decay = checks.number(decay, "decay", low=0, high=1, low_open=True, high_open=True)
        eps = checks.number(eps, "eps", low=0)
        dead_threshold = checks.number(dead_threshold, "dead_threshold", low=0, high=1)
        self.init = checks.choice(init, "init", ("random", "data"))
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
        # A Python flag, so that a training step reads nothing from the device; the
        # buffer (saved with the weights) is read once, at the first training step.
        self._ready = init != "data"
        if init == "data":
            self.register_buffer("initialized", torch.tensor(False))

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code (squared Euclidean distance) for each row ``(N, dim)``."""
        flat = checks.tensor(flat, "flat", shape=(self.dim,), min_len=0, dtype="float",
                             like=self.codebook)  # fmt: skip
        # BEGIN SOLUTION
        distances = (
            (flat**2).sum(1, keepdim=True)
            - 2 * flat @ self.codebook.T
            + (self.codebook**2).sum(1)[None]
        )
        return distances.argmin(1)
        # END SOLUTION

    def forward(self, z_e: torch.Tensor) -> VQOutput:
        """Quantize ``z_e`` ``(..., dim)`` (floats, converted to the codebook's dtype and
        device): a :class:`VQOutput`; the losses are mean squared errors per element."""
        z_e = checks.tensor(z_e, "z_e", min_len=0, dtype="float", like=self.codebook)
        if z_e.ndim < 1 or z_e.shape[-1] != self.dim:
            raise ValueError(
                f"z_e must be a tensor of shape (..., {self.dim}), got {tuple(z_e.shape)}"
            )
        if z_e.numel() == 0:
            raise ValueError(
                "z_e is empty: quantizing no vectors has no perplexity and would corrupt the "
                "usage statistics; pass at least one vector"
            )
        flat = z_e.reshape(-1, self.dim)
        if not self._ready and self.training:
            if not self.initialized:
                self._initialize(flat.detach())
            self._ready = True
        # The nearest code in float32 whatever the autocast: in bfloat16 the distances'
        # round-off reorders near codes.
        with checks.trusted(), torch.autocast(flat.device.type, enabled=False):
            indices = self.nearest(flat.float())
        codes = self.codebook[indices]
        commitment = F.mse_loss(flat, codes.detach())
        codebook_loss = flat.new_zeros(()) if self.ema else F.mse_loss(codes, flat.detach())
        # Counts by index_add, not a (N, K) one-hot matrix: K times less memory traffic;
        # in float32 (exact to 2**24) and of a fixed size, which torch.compile can trace.
        ones = torch.ones(len(indices), device=indices.device)
        counts = torch.zeros(self.num_codes, device=indices.device).index_add_(0, indices, ones)
        frequency = counts / len(flat)
        perplexity = torch.exp(-(frequency * torch.log(frequency + 1e-10)).sum())
        if self.training:
            with torch.no_grad():
                self.usage.mul_(self.decay).add_((1 - self.decay) * frequency)
                if self.ema:  # the running sums keep the codebook's dtype
                    self._ema_update(flat.detach().to(self.ema_sum.dtype), indices, counts)
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

    @torch.no_grad()
    def _initialize(self, flat: torch.Tensor) -> None:
        """The data start: the codes become random rows of ``flat``."""
        n = len(flat)
        if n >= self.num_codes:
            picks = torch.randperm(n, device=flat.device)[: self.num_codes]
        else:
            picks = torch.randint(n, (self.num_codes,), device=flat.device)
        codes = flat[picks].to(self.codebook.dtype)
        self.codebook.data.copy_(codes)
        if self.ema:
            self.ema_sum.copy_(codes)
            self.ema_count.fill_(1.0)
        self.initialized.fill_(True)

    def _ema_update(self, flat: torch.Tensor, indices: torch.Tensor, counts: torch.Tensor) -> None:
        sums = torch.zeros_like(self.ema_sum).index_add_(0, indices, flat)  # per-code sums
        self.ema_count.mul_(self.decay).add_((1 - self.decay) * counts)
        self.ema_sum.mul_(self.decay).add_((1 - self.decay) * sums)
        n = self.ema_count.sum()
        smoothed = (self.ema_count + self.eps) / (n + self.num_codes * self.eps) * n  # Laplace
        self.codebook.copy_(self.ema_sum / smoothed[:, None])

    def _restart(self, flat: torch.Tensor) -> None:
        if flat.device != torch.device("cpu"):
            self._restart_on_device(flat)
            return
        dead = torch.nonzero(self.usage < self.dead_threshold / self.num_codes).squeeze(1)
        if len(dead) == 0:
            return
        picks = flat[torch.randint(len(flat), (len(dead),), device=flat.device)]
        self.codebook.data[dead] = picks
        self.usage[dead] = 1.0 / self.num_codes
        if self.ema:
            self.ema_sum[dead] = picks
            self.ema_count[dead] = 1.0

    def _restart_on_device(self, flat: torch.Tensor) -> None:
        """:meth:`_restart` with no read of the device (``nonzero`` waits for a GPU): a
        pick for every code, kept where the code is dead."""
        dead = self.usage < self.dead_threshold / self.num_codes
        picks = flat[torch.randint(len(flat), (self.num_codes,), device=flat.device)]
        self.codebook.data.copy_(torch.where(dead[:, None], picks, self.codebook.data))
        self.usage.copy_(torch.where(dead, 1.0 / self.num_codes, self.usage))
        if self.ema:
            self.ema_sum.copy_(torch.where(dead[:, None], picks, self.ema_sum))
            self.ema_count.copy_(torch.where(dead, 1.0, self.ema_count))

    def dead_codes(self) -> int:
        """How many codes have (EMA) usage below ``dead_threshold / K``."""
        return int((self.usage < self.dead_threshold / self.num_codes).sum())

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """The code vectors of integer ``indices``, shape ``(*indices.shape, dim)``."""
        indices = checks.tensor(indices, "indices", min_len=0, dtype="int")
        if (
            checks.values_checked()
            and indices.numel()
            and (int(indices.min()) < 0 or int(indices.max()) >= self.num_codes)
        ):
            raise ValueError(
                f"indices must be integers in 0..{self.num_codes - 1}, got values in "
                f"{int(indices.min())}..{int(indices.max())}"
            )
        return self.codebook[indices.to(self.codebook.device)]


class VQVAE(Saveable, nn.Module):
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
        self.shape = checks.sizes(shape, "shape", allow_empty=False)
        if len(self.shape) != 2:
            raise ValueError(f"shape must be (H, W), got {shape!r}")
        levels = checks.integer(levels, "levels", low=2)
        num_codes = checks.integer(num_codes, "num_codes", low=2)
        code_dim = checks.integer(code_dim, "code_dim")
        width = checks.integer(width, "width")
        downsample = checks.integer(downsample, "downsample", low=0)
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

    batch_parts = 1  # fit passes the images alone (labels are dropped)

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def _check(self, x, name: str = "x") -> torch.Tensor:
        """Integer images ``(B, H, W)`` (converted as :func:`selfsup._checks.images`
        converts), on the model's device."""
        return checks.images(x, name, self.shape, "levels", self.levels, device=self._device())

    def quantize(self, x: torch.Tensor) -> VQOutput:
        """The quantizer's output for integer images ``x`` ``(B, H, W)``."""
        weight = self.encoder[0].weight
        z_e = self.encoder(self._check(x).to(weight.dtype)[:, None] / (self.levels - 1))
        with checks.trusted():
            return self.quantizer(z_e.permute(0, 2, 3, 1))  # channels last

    @torch.no_grad()
    def encode(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """The discrete code of each image: integers ``(B, h, w)`` in ``0..K-1``
        (deterministic in eval mode: ``generator`` is accepted, as by every encoder, and
        unused; in training mode the quantizer also updates its codebook statistics)."""
        checks.generator(generator)
        return self.quantize(x).indices

    def _logits(self, z_q: torch.Tensor) -> torch.Tensor:
        return self.decoder(z_q.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # (B, H, W, levels)

    @torch.no_grad()
    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """The decoder's mean image ``E[x | code]``, ``(B, H, W)``, in grey levels."""
        indices = checks.tensor(indices, "indices", shape=self.code_shape, min_len=0, dtype="int")
        probs = torch.softmax(self._logits(self.quantizer.lookup(indices)), -1)
        values = torch.arange(self.levels, dtype=probs.dtype, device=probs.device)
        return (probs * values).sum(-1)

    def reconstruction_log_prob(self, x: torch.Tensor, out: VQOutput | None = None) -> torch.Tensor:
        """``log p(x | quantized code of x)`` per image, in nats."""
        x = self._check(x)
        with checks.trusted():
            out = self.quantize(x) if out is None else out
        logp = torch.log_softmax(self._logits(out.quantized), -1)
        return logp.gather(-1, x.long()[..., None]).squeeze(-1).sum((1, 2))

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        """Negative reconstruction log-likelihood (nats per image) plus the VQ losses,
        summed (not averaged) over the code's elements so both are per image."""
        batch = self._check(batch, "batch")
        with checks.trusted():
            out = self.quantize(batch)
            elements = math.prod(self.code_shape) * self.quantizer.dim
            return -self.reconstruction_log_prob(batch, out).mean() + elements * out.loss

    @torch.no_grad()
    def sample(
        self, n: int, *, mean: bool = False, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Images from codes drawn *uniformly and independently* per position: what a
        VQ-VAE without a learned prior generates. Integer images ``(n, H, W)`` drawn from
        the decoder's categorical distribution, or with ``mean`` its mean images (floats)."""
        n = checks.sample_count(n)
        checks.generator(generator)
        where = tensors.draw_device(generator, self._device())
        shape = (n, *self.code_shape)
        idx = torch.randint(self.num_codes, shape, generator=generator, device=where)
        idx = idx.to(self._device())
        if mean:
            return self.decode(idx)
        probs = torch.softmax(self._logits(self.quantizer.lookup(idx)), -1)
        draws = torch.multinomial(probs.reshape(-1, self.levels).to(where), 1, generator=generator)
        return draws.reshape(n, *self.shape).to(self._device())
