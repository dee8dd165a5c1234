"""Diffusion models: the hierarchical VAE with T latent layers and a fixed encoder.

A diffusion model is the lecture's hierarchical VAE taken to its limit
(Ho et al., 2020; Kingma et al., 2021, "VDM"; Luo, 2022):

- its latents ``z_t``, ``0 <= t <= 1``, each have the data's size;
- its encoder is not learned: ``q(z_t | x) = N(alpha_t x, sigma_t^2 I)``, a
  variance-preserving process (``alpha_t^2 + sigma_t^2 = 1``) that fades the data into
  ``N(0, I)``;
- its decoder runs the process backwards, one small step at a time, through a network
  that predicts the noise ``eps`` in ``z_t = alpha_t x + sigma_t eps``;
- its ELBO is a sum of KL divergences between Gaussians, each a weighted denoising loss.

The noise schedule is the log signal-to-noise ratio's negative,
``gamma(t) = log(sigma_t^2 / alpha_t^2)``, increasing from ``gamma_min`` (nearly the
data) to ``gamma_max`` (nearly pure noise). Time is continuous, as in VDM: the
continuous-time bound depends on the schedule only through its two ends (VDM's
invariance), which makes it the natural unit, and any number of discrete steps ``T``
can be taken from the same model, for the ``T``-step bound and for sampling. Two
schedules are built in: ``"cosine"`` (Nichol & Dhariwal, 2021: ``alpha_t`` a cosine of
``t``, clipped to the two ends) and ``"linear"`` (VDM's fixed schedule, linear in
``gamma``).

The bound, in nats per example, with every term (:meth:`Diffusion.bound`):

    log p(x) >= E log p(x | z_0) - KL(q(z_1 | x) || N(0, I)) - L_diffusion(x)

- reconstruction: for integer images with ``levels`` values (scaled to ``[-1, 1]``
  inside), a categorical decoder over the levels at ``t = 0``, so the bound is a bound
  on the *discrete* probability of the image, in the units of the VAE's bound and
  MADE's exact likelihood; for continuous data (``levels=None``) a Gaussian density;
- prior: the KL at ``t = 1``, in closed form;
- diffusion: with ``T`` steps, ``T/2 E_i (exp(gamma(t_i) - gamma(t_{i-1})) - 1)
  ||eps - eps_hat(z_{t_i}, t_i)||^2``; in continuous time (``T -> infinity``)
  ``1/2 int gamma'(t) ||eps - eps_hat||^2 dt``, estimated with ``gamma`` drawn
  uniformly between its ends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from .. import _checks as checks
from .. import tensors
from ..saving import Saveable
from .layers import TimeMLP

__all__ = ["SAMPLERS", "SCHEDULES", "WEIGHTINGS", "Bound", "Diffusion"]

SCHEDULES = ("cosine", "linear")
WEIGHTINGS = ("elbo", "simple")
SAMPLERS = ("ancestral", "ddim")
LOG_2PI = math.log(2 * math.pi)


class Bound(NamedTuple):
    """Per-example terms of the diffusion model's ELBO, each ``(B,)`` in nats."""

    bound: torch.Tensor  # reconstruction - prior - diffusion: a lower bound on log p(x)
    reconstruction: torch.Tensor  # E log p(x | z_0), one draw of z_0
    prior: torch.Tensor  # KL(q(z_1 | x) || N(0, I)), closed form
    diffusion: torch.Tensor  # the denoising terms (T steps, or continuous time)


class _Noise:
    """Gaussian numbers for ``steps`` draws of ``shape``, drawn a few large pieces at a
    time on the generator's device and moved once a piece (no copy per step)."""

    PIECE = 1 << 24

    def __init__(self, shape: tuple[int, ...], steps: int, generator, device):
        self.shape, self.steps, self.generator, self.device = shape, steps, generator, device
        self.per = max(1, self.PIECE // max(1, math.prod(shape)))
        self.piece, self.start = None, 0

    def next(self, i: int) -> torch.Tensor:
        if self.piece is None or i >= self.start + len(self.piece):
            self.start = i
            size = (min(self.per, self.steps - i), *self.shape)
            self.piece = tensors.randn(size, self.generator, self.device)
        return self.piece[i - self.start]


class Diffusion(Saveable, nn.Module):
    """A variance-preserving diffusion model in continuous time (module doc).

    Args:
        shape: one example's shape, e.g. ``(2,)`` for the 2-D toys or ``(8, 8)``.
        levels: ``None`` for continuous data (floats, used as they are); an integer for
            images with values ``0..levels-1``, scaled to ``[-1, 1]`` inside and scored
            by a discrete decoder.
        hidden, embed: the denoiser's widths (a :class:`~selfsup.models.layers.TimeMLP`
            on the flattened data, conditioned on the noise level), unless ``network``
            is given: any module ``network(z, s) -> eps_hat`` with ``z`` ``(B, d)`` and
            ``s`` ``(B,)`` the normalised noise level in ``[0, 1]``.
        schedule: ``"cosine"`` or ``"linear"`` (module doc).
        gamma_min, gamma_max: the log noise-to-signal ratio at ``t = 0`` and ``t = 1``.
            The defaults are VDM's: at ``gamma_max = 5`` the prior term is small, at
            ``gamma_min = -13.3`` a grey level is resolved exactly.
        weighting: what :meth:`loss` minimises: ``"elbo"``, the negative bound (noise
            levels drawn uniformly in ``gamma``: the bound's own weights), or
            ``"simple"``, Ho et al.'s unweighted noise-prediction error with ``t``
            uniform, which weights the noise levels by the schedule instead.
    """

    #: Up to this many grey levels the denoiser corrects every level's logit; beyond it
    #: (MNIST's 256) two numbers per pixel, so the output stays twice the image's size.
    FULL_LOGITS = 32

    def __init__(
        self,
        shape: Sequence[int],
        levels: int | None = None,
        *,
        hidden: Sequence[int] = (512, 512),
        embed: int = 64,
        schedule: str = "cosine",
        gamma_min: float = -13.3,
        gamma_max: float = 5.0,
        weighting: str = "elbo",
        network: nn.Module | None = None,
    ):
        super().__init__()
        self.shape = checks.sizes(shape, "shape", allow_empty=False)
        self.levels = None if levels is None else checks.integer(levels, "levels", low=2)
        self.schedule = checks.choice(schedule, "schedule", SCHEDULES)
        self.weighting = checks.choice(weighting, "weighting", WEIGHTINGS)
        self.gamma_min = checks.number(gamma_min, "gamma_min")
        self.gamma_max = checks.number(gamma_max, "gamma_max")
        if not self.gamma_min < self.gamma_max:
            raise ValueError(
                f"gamma_min must be below gamma_max, got {gamma_min} and {gamma_max}; "
                "the noise grows with t (e.g. gamma_min=-13.3, gamma_max=5)"
            )
        self.d = math.prod(self.shape)
        if network is not None and not isinstance(network, nn.Module):
            raise checks.InputTypeError(
                f"network must be an nn.Module network(z, s), got {checks.describe(network)}"
            )
        # For images the built-in denoiser predicts each pixel's grey level as a
        # distribution over the levels (see eps): a correction to each level's logit, or,
        # with many levels, two numbers per pixel (a quadratic in the level's value).
        self.categorical = self.levels is not None and network is None
        self.compact = self.categorical and self.levels > self.FULL_LOGITS
        per_pixel = 2 if self.compact else (self.levels or 1) if self.categorical else 1
        out = self.d * per_pixel
        self.network = network if network is not None else TimeMLP(self.d, hidden, embed, out=out)
        # The cosine schedule's angle range: gamma(t) = 2 log tan(theta(t)).
        self._theta = (
            math.atan(math.exp(self.gamma_min / 2)),
            math.atan(math.exp(self.gamma_max / 2)),
        )

    # ----------------------------------------------------------------- the process

    @property
    def bin_width(self) -> float | None:
        """The width of one grey level in the model's space (``2 / (levels - 1)``);
        ``None`` for continuous data."""
        return None if self.levels is None else 2.0 / (self.levels - 1)

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def gamma(self, t: torch.Tensor) -> torch.Tensor:
        """``gamma(t) = log(sigma_t^2 / alpha_t^2)`` for times ``t`` in ``[0, 1]``."""
        if self.schedule == "linear":
            return self.gamma_min + (self.gamma_max - self.gamma_min) * t
        lo, hi = self._theta
        return 2 * torch.log(torch.tan(lo + (hi - lo) * t))

    def gamma_slope(self, t: torch.Tensor) -> torch.Tensor:
        """``gamma'(t)``, the schedule's derivative (the continuous-time bound's weight
        on the noise-prediction error at time ``t``)."""
        if self.schedule == "linear":
            return torch.full_like(t, self.gamma_max - self.gamma_min)
        lo, hi = self._theta
        return 4 * (hi - lo) / torch.sin(2 * (lo + (hi - lo) * t))

    def _level(self, gamma: torch.Tensor) -> torch.Tensor:
        """The denoiser's input for a noise level: ``gamma`` mapped to ``[0, 1]``."""
        return (gamma - self.gamma_min) / (self.gamma_max - self.gamma_min)

    @staticmethod
    def alpha_sigma(gamma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(alpha, sigma)`` of a noise level: ``alpha^2 = sigmoid(-gamma)``,
        ``sigma^2 = sigmoid(gamma)``."""
        return torch.sigmoid(-gamma).sqrt(), torch.sigmoid(gamma).sqrt()

    def scale(self, x) -> torch.Tensor:
        """The data ``(B, *shape)`` in the model's space, flattened ``(B, d)``: integer
        images to ``2 x / (levels - 1) - 1`` in ``[-1, 1]``, continuous data as is."""
        if self.levels is None:
            t = checks.images(x, "x", self.shape, "real", min_len=0, device=self._device())
            return t.reshape(len(t), self.d).to(self._dtype())
        t = checks.images(x, "x", self.shape, "levels", self.levels, min_len=0,
                          device=self._device())  # fmt: skip
        return t.reshape(len(t), self.d).to(self._dtype()) * self.bin_width - 1.0

    def _dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def eps(self, z: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        """The denoiser's prediction of the noise in ``z`` ``(B, d)`` at noise levels
        ``gamma`` ``(B,)`` (inputs on the CPU are moved to the model's device)."""
        device = self._device()
        z, gamma = z.to(device), gamma.to(device)
        out = self.network(z, self._level(gamma))
        if not self.categorical:
            return out
        # Images: the denoiser's estimate of x is a posterior mean over the grey levels,
        # whose logits are each pixel's own Gaussian likelihood of every level,
        # -(z - alpha v)^2 / (2 sigma^2), plus the network's correction from the context.
        # Near t = 0 the likelihood alone finds the level (exactly, as sigma -> 0); the
        # network learns what the neighbours say when the noise hides it. The noise
        # estimate follows from x_hat: eps_hat = (z - alpha x_hat) / sigma.
        alpha, sigma = (v[:, None, None] for v in self.alpha_sigma(gamma))
        grid = torch.linspace(-1, 1, self.levels, device=z.device, dtype=z.dtype)
        own = -0.5 * ((z[..., None] - alpha * grid) / sigma) ** 2
        if self.compact:  # a Gaussian-shaped prior over the levels, per pixel
            a, b = out.reshape(len(z), self.d, 2).unbind(-1)
            correction = a[..., None] * grid + b[..., None] * grid**2
        else:
            correction = out.reshape(len(z), self.d, self.levels)
        probs = torch.softmax(own + correction, -1)
        x_hat = probs @ grid
        return (z - alpha[..., 0] * x_hat) / sigma[..., 0]

    def ode_velocity(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``dz/dt`` of the probability-flow ODE at times ``t`` ``(B,)`` (0: data, 1:
        noise), ``z`` ``(B, d)``: the deterministic process with the same marginals as
        the noising one when the denoiser is exact (Song et al., 2021). With the score
        ``-eps_hat / sigma_t`` it is ``gamma'(t) / 2 (sigma_t eps_hat - sigma_t^2 z)``."""
        device = self._device()
        z, t = z.to(device), t.to(device)
        gamma, slope = self.gamma(t), self.gamma_slope(t)
        _, sigma = self.alpha_sigma(gamma)
        eps = self.eps(z, gamma)
        return 0.5 * slope[:, None] * (sigma[:, None] * eps - sigma[:, None] ** 2 * z)

    # ------------------------------------------------------------------ the bound

    def _reconstruction(self, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``log p(x | z_0)`` per example with ``z_0 = alpha_0 x0 + sigma_0 noise``."""
        gamma0 = torch.full((1,), self.gamma_min, device=x0.device, dtype=x0.dtype)
        alpha0, sigma0 = self.alpha_sigma(gamma0)
        z0 = alpha0 * x0 + sigma0 * noise
        scale = sigma0 / alpha0  # the decoder's spread in data units
        if self.levels is None:
            return (
                -0.5 * ((z0 / alpha0 - x0) / scale) ** 2 - torch.log(scale) - 0.5 * LOG_2PI
            ).sum(-1)
        grid = torch.linspace(-1, 1, self.levels, device=x0.device, dtype=x0.dtype)
        logits = -0.5 * ((z0 / alpha0)[..., None] - grid) ** 2 / scale**2
        index = ((x0 + 1) / self.bin_width).round().long()
        logp = torch.log_softmax(logits, -1).gather(-1, index[..., None]).squeeze(-1)
        return logp.sum(-1)

    def _prior(self, x0: torch.Tensor) -> torch.Tensor:
        """``KL(q(z_1 | x) || N(0, I))`` per example, closed form."""
        gamma1 = torch.full((1,), self.gamma_max, device=x0.device, dtype=x0.dtype)
        alpha1, sigma1 = self.alpha_sigma(gamma1)
        var = sigma1**2
        return 0.5 * (var + alpha1**2 * x0**2 - 1 - torch.log(var)).sum(-1)

    def _diffusion(
        self, x0: torch.Tensor, u: torch.Tensor, noise: torch.Tensor, steps
    ) -> torch.Tensor:
        """The denoising terms per example from uniform draws ``u`` ``(B,)`` and noise
        ``(B, d)``: continuous time (``steps=None``) or ``steps`` discrete steps."""
        # BEGIN SOLUTION
        if steps is None:
            span = self.gamma_max - self.gamma_min
            gamma = self.gamma_min + span * u  # uniform in gamma: the bound's own weights
            weight = 0.5 * span
        else:
            i = (u * steps).floor().clamp(max=steps - 1) + 1  # uniform on 1..T
            gamma, gamma_s = self.gamma(i / steps), self.gamma((i - 1) / steps)
            weight = 0.5 * steps * torch.expm1(gamma - gamma_s)
        alpha, sigma = self.alpha_sigma(gamma)
        z = alpha[:, None] * x0 + sigma[:, None] * noise
        error = (noise - self.eps(z, gamma)).pow(2).sum(-1)
        return weight * error
        # END SOLUTION

    def bound(
        self, x, *, generator: torch.Generator | None = None, steps: int | None = None
    ) -> Bound:
        """Every term of the ELBO per example (:class:`Bound`), one draw of the noise
        level and the noise each: an unbiased estimate of the bound, reproducible under
        ``generator``. ``steps``: ``None`` for continuous time, or the number ``T`` of
        discrete steps (the ``T``-step model's bound, lower than the continuous one
        when the denoised estimate's expected error grows with the noise, as for the
        optimal denoiser; VDM)."""
        checks.generator(generator)
        if steps is not None:
            steps = checks.integer(steps, "steps")
        x0 = self.scale(x)
        b, device = len(x0), x0.device
        u = tensors.rand((b,), generator, device, dtype=x0.dtype)
        noise = tensors.randn((2, b, self.d), generator, device, dtype=x0.dtype)
        reconstruction = self._reconstruction(x0, noise[0])
        prior = self._prior(x0)
        diffusion = self._diffusion(x0, u, noise[1], steps)
        return Bound(reconstruction - prior - diffusion, reconstruction, prior, diffusion)

    def log_prob(
        self,
        x,
        *,
        generator: torch.Generator | None = None,
        steps: int | None = None,
        samples: int = 16,
    ) -> torch.Tensor:
        """A lower bound on ``log p(x)``, ``(B,)`` nats: the ELBO with every term,
        averaged over ``samples`` draws of the noise level and noise per example (each
        unbiased, so the mean is an unbiased estimate of the bound with less spread).

        For integer images it bounds the *discrete* probability of the image. Without
        gradients (a likelihood, not a training loss)."""
        samples = checks.integer(samples, "samples")
        with torch.no_grad(), tensors.eval_mode(self):
            total = None
            for _ in range(samples):
                b = self.bound(x, generator=generator, steps=steps).bound
                total = b if total is None else total + b
        return total / samples

    def loss(self, batch) -> torch.Tensor:
        """What training minimises, per example: the negative ELBO in nats
        (``weighting="elbo"``), or the unweighted noise-prediction error summed over
        dimensions with ``t`` uniform (``"simple"``)."""
        x0 = self.scale(batch)
        b = len(x0)
        if b == 0:
            raise ValueError("batch is empty: pass at least one example")
        # Stratified noise levels: one in each of b equal slices of [0, 1], at a random
        # offset: every level is still uniform, with less spread across the batch.
        u = (torch.rand((), device=x0.device) + torch.arange(b, device=x0.device) / b) % 1
        noise = torch.randn_like(x0)
        if self.weighting == "simple":
            gamma = self.gamma(u.to(x0.dtype))
            alpha, sigma = self.alpha_sigma(gamma)
            z = alpha[:, None] * x0 + sigma[:, None] * noise
            return (noise - self.eps(z, gamma)).pow(2).sum(-1).mean()
        diffusion = self._diffusion(x0, u.to(x0.dtype), noise, None)
        reconstruction = self._reconstruction(x0, torch.randn_like(x0))
        return (diffusion + self._prior(x0) - reconstruction).mean()

    @torch.no_grad()
    def embed(self, x, *, gamma: float = -2.0) -> torch.Tensor:
        """The denoiser's last hidden layer ``(B, h)`` on the clean data seen at noise
        level ``gamma`` (``z = alpha x``, no noise drawn: a deterministic
        representation, as a denoising autoencoder's)."""
        gamma = checks.number(gamma, "gamma")
        if not isinstance(self.network, TimeMLP):
            raise ValueError(
                "embed needs the built-in denoiser (a TimeMLP); this model has its own"
            )
        x0 = self.scale(x)
        g = torch.full((len(x0),), gamma, device=x0.device, dtype=x0.dtype)
        alpha, _ = self.alpha_sigma(g)
        with tensors.eval_mode(self):
            return self.network.hidden(alpha[:, None] * x0, self._level(g))

    # ------------------------------------------------------------------- sampling

    def _x_hat(self, z, gamma, clip: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The denoised estimate of the data, and the noise estimate consistent with it,
        at one noise level ``gamma`` (a 0-dimensional tensor) for the whole batch."""
        alpha, sigma = self.alpha_sigma(gamma)
        eps = self.eps(z, gamma.expand(len(z)))
        x_hat = (z - sigma * eps) / alpha
        if clip and self.levels is not None:  # images live in [-1, 1]
            x_hat = x_hat.clamp(-1, 1)
            eps = (z - alpha * x_hat) / sigma
        return x_hat, eps

    def _reverse(self, z, steps: int, sampler: str, generator, known=None, clip=True, path=None,
                 resample: int = 1):  # fmt: skip
        """Run the reverse process from ``z`` at ``t = 1`` to ``t = 0``; with ``known``
        ``(x0, mask)``, replace the known coordinates by a draw of ``q(z_s | x)`` after
        every step, and take each step ``resample`` times, going back to ``t`` with fresh
        noise in between (RePaint); with a list ``path``, append every ``z``. Returns
        ``z_0``."""
        n, device = len(z), z.device
        if path is not None:
            path.append(z)
        parts = 1 if known is None else 3
        stream = _Noise((parts, n, self.d), steps * resample, generator, device)
        # The schedule at every step, computed once: gammas[i] is gamma(i / steps).
        gammas = self.gamma(torch.arange(steps + 1, device=device, dtype=z.dtype) / steps)
        alphas, sigmas = self.alpha_sigma(gammas)
        draw = 0
        for i in range(steps, 0, -1):
            gamma_t, gamma_s = gammas[i], gammas[i - 1]
            alpha_t, alpha_s, sigma_t, sigma_s = alphas[i], alphas[i - 1], sigmas[i], sigmas[i - 1]
            c = -torch.expm1(gamma_s - gamma_t)  # sigma_{t|s}^2 / sigma_t^2
            for r in range(resample):
                noise = stream.next(draw)
                draw += 1
                if r > 0:  # back to t: z_t ~ q(z_t | z_s)
                    z = (alpha_t / alpha_s) * z + (c.sqrt() * sigma_t) * noise[1]
                x_hat, eps = self._x_hat(z, gamma_t, clip)
                if sampler == "ddim":
                    z = alpha_s * x_hat + sigma_s * eps
                else:
                    mean = alpha_s * ((1 - c) / alpha_t * z + c * x_hat)
                    z = mean + (sigma_s * c.sqrt()) * noise[0]
                if known is not None:
                    x0, mask = known
                    z = torch.where(mask, alpha_s * x0 + sigma_s * noise[-1], z)
            if path is not None:
                path.append(z)
        return z

    def _decode_z0(self, z0: torch.Tensor) -> torch.Tensor:
        """The decoder's most probable data at ``t = 0``: the nearest grey level (an
        integer image) or, for continuous data, ``z_0 / alpha_0``."""
        alpha0, _ = self.alpha_sigma(torch.full((1,), self.gamma_min, device=z0.device))
        x = z0 / alpha0
        if self.levels is None:
            return x.reshape(len(x), *self.shape)
        index = ((x.clamp(-1, 1) + 1) / self.bin_width).round().long()
        return index.reshape(len(x), *self.shape)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        steps: int = 100,
        sampler: str = "ancestral",
    ) -> torch.Tensor:
        """``n`` samples ``(n, *shape)``: integer images ``0..levels-1`` (floats for
        continuous data), by ``steps`` steps of the reverse process from ``N(0, I)``.

        ``sampler="ancestral"`` draws each step from the model's ``p(z_s | z_t)`` (the
        decoder of the bound); ``"ddim"`` takes the deterministic DDIM step (Song et al.,
        2021), a discretisation of the probability-flow ODE: the noise is drawn once,
        at ``t = 1``. Image samples clip the denoised estimate to ``[-1, 1]``.
        """
        return self._decode_z0(self._run(n, generator, steps, sampler))

    def _run(self, n, generator, steps, sampler, path=None) -> torch.Tensor:
        """Check the arguments of :meth:`sample` / :meth:`reverse_path`, draw ``z_1`` and
        run the reverse process; returns ``z_0``."""
        n = checks.sample_count(n)
        steps = checks.integer(steps, "steps")
        checks.choice(sampler, "sampler", SAMPLERS)
        checks.generator(generator)
        z = tensors.randn((n, self.d), generator, self._device(), dtype=self._dtype())
        with tensors.eval_mode(self):
            return self._reverse(z, steps, sampler, generator, path=path)

    @torch.no_grad()
    def reverse_path(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        steps: int = 100,
        sampler: str = "ancestral",
    ) -> torch.Tensor:
        """The reverse process itself: ``z_t`` at ``t = 1, (T-1)/T, ..., 0`` for ``n``
        draws, ``(steps + 1, n, d)`` in the model's space (the same draws as
        :meth:`sample` with the same generator, before the decoder)."""
        path: list[torch.Tensor] = []
        self._run(n, generator, steps, sampler, path=path)
        return torch.stack(path)

    @torch.no_grad()
    def complete(
        self,
        x,
        known_mask,
        *,
        generator: torch.Generator | None = None,
        samples: int = 8,
        steps: int = 50,
        resample: int = 1,
    ) -> torch.Tensor:
        """The conditional mean ``E[x_u | x_k]`` of the unknown positions, estimated by
        averaging ``samples`` draws of :meth:`inpaint` (floats ``(B, *shape)``; the known
        positions keep their values), as the autoregressive models' ``complete``."""
        samples = checks.integer(samples, "samples")
        x0 = self.scale(x)
        reps = x0.repeat(samples, 1).reshape(samples * len(x0), *self.shape)
        original = reps if self.levels is None else ((reps + 1) / self.bin_width).round().long()
        draws = self.inpaint(original, known_mask, generator=generator, steps=steps,
                             resample=resample)  # fmt: skip
        return draws.float().reshape(samples, len(x0), *self.shape).mean(0)

    @torch.no_grad()
    def inpaint(
        self,
        x,
        known_mask,
        *,
        generator: torch.Generator | None = None,
        steps: int = 100,
        resample: int = 1,
    ) -> torch.Tensor:
        """Fill the positions where ``known_mask`` (one example's shape) is ``False``:
        one draw per example, integer images ``(B, *shape)``; known positions kept.

        The replacement method (Song et al., 2021): the reverse process runs on every
        coordinate, and after each step the known coordinates are replaced by a fresh
        draw of ``q(z_s | x)``. Its known limit: the unknown part sees the known part
        only through the denoiser at each step, never through the past of the chain,
        so the fill can disagree with its context where a step's denoiser is unsure.
        ``resample > 1`` is RePaint's remedy (Lugmayr et al., 2022): each step is taken
        ``resample`` times, noising back in between, so the two parts can agree, at
        ``resample`` times the cost.
        """
        checks.generator(generator)
        steps = checks.integer(steps, "steps")
        resample = checks.integer(resample, "resample")
        mask = checks.known_mask(known_mask, self.shape).reshape(1, self.d).to(self._device())
        x0 = self.scale(x)
        if len(x0) == 0:
            return self._decode_z0(x0)
        z = tensors.randn((len(x0), self.d), generator, x0.device, dtype=x0.dtype)
        with tensors.eval_mode(self):
            z0 = self._reverse(z, steps, "ancestral", generator, known=(x0, mask),
                               resample=resample)  # fmt: skip
        out = self._decode_z0(z0)
        original = x0.reshape(out.shape) if self.levels is None else None
        if original is None:
            original = ((x0 + 1) / self.bin_width).round().long().reshape(out.shape)
        return torch.where(mask.reshape(1, *self.shape), original, out)
