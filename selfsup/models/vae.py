"""Variational autoencoders.

A VAE is a latent variable model ``p(x) = int p(x|z) p(z) dz`` with
``p(z) = N(0, I)``, trained through an encoder ``q(z|x) = N(mu(x), diag sigma^2(x))``
by maximising the evidence lower bound (ELBO), in nats per example:

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z)) = log p(x) - KL(q(z|x) || p(z|x)).

:class:`VAE` has three decoder likelihoods: ``"bernoulli"`` (binary data),
``"gaussian"`` (continuous data, learned per-pixel scale) and ``"categorical"``
(integer data with ``levels`` values, e.g. the 17-level digits, whose log-likelihood
is then an exact *discrete* likelihood in the same units as the baselines).
:class:`LinearGaussianVAE` is probabilistic PCA as a VAE, where ``log p(x)``, the
posterior and the ELBO are all known in closed form.
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
from .layers import mlp

__all__ = ["ELBO", "LIKELIHOODS", "LinearGaussianVAE", "VAE", "kl_to_standard_normal"]

LIKELIHOODS = ("bernoulli", "gaussian", "categorical")
LOG_2PI = math.log(2 * math.pi)


class ELBO(NamedTuple):
    """Per-example terms of the evidence lower bound, each ``(B,)`` in nats: what
    :meth:`VAE.elbo` and :meth:`HierarchicalVAE.elbo
    <selfsup.models.hvae.HierarchicalVAE.elbo>` return, with the same fields.

    ``elbo = reconstruction - kl``, where ``kl`` is the whole rate, the sum of the
    per-layer terms ``layers`` (bottom ``z1`` first): one term for a VAE, two for the
    hierarchical VAE. ``kl1`` and ``kl2`` name the layers' terms; ``kl2`` exists only for
    a model with a second layer (``hasattr(terms, "kl2")`` tells).
    """

    elbo: torch.Tensor  # reconstruction - kl
    reconstruction: torch.Tensor  # E_q log p(x|z1), a one-sample estimate
    kl: torch.Tensor  # the rate: sum of the layers' terms
    layers: tuple[torch.Tensor, ...]  # each layer's term, (B,) nats, bottom first

    @property
    def kl1(self) -> torch.Tensor:
        """The bottom layer's term: ``KL(q(z|x) || N(0, I))`` in closed form for a VAE;
        for the hierarchical VAE the one-sample ``log q(z1|x) - log p(z1|z2)``."""
        return self.layers[0]

    @property
    def kl2(self) -> torch.Tensor:
        """The second layer's term, ``KL(q(z2|z1) || N(0, I))`` (hierarchical VAE only)."""
        if len(self.layers) < 2:
            raise AttributeError("this ELBO has one latent layer: no kl2 (use kl or kl1)")
        return self.layers[1]


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, diag exp(logvar)) || N(0, I))`` per example, in nats.

    ``1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)``. Shapes ``(B, r)`` -> ``(B,)``.
    """
    mu = checks.tensor(mu, "mu", min_len=0, dtype="float")
    logvar = checks.tensor(logvar, "logvar", min_len=0, dtype="float")
    if mu.shape != logvar.shape:
        raise ValueError(
            "mu and logvar must have the same shape, "
            f"got {tuple(mu.shape)} and {tuple(logvar.shape)}"
        )
    return 0.5 * (mu**2 + logvar.exp() - 1.0 - logvar).sum(-1)


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``log N(z; mu, diag exp(logvar))`` summed over the last axis."""
    return -0.5 * (LOG_2PI + logvar + (z - mu) ** 2 / logvar.exp()).sum(-1)


_IWAE_ELEMENTS = 2**25  # decoder outputs held at once by iwae_bound and complete


class VAE(Saveable, nn.Module):
    """A VAE with fully connected encoder and decoder.

    Args:
        shape: the shape of one example, e.g. ``(8, 8)``.
        latent_dim: the dimension of ``z``.
        likelihood: ``"bernoulli"`` (data in {0, 1}), ``"gaussian"`` (float data) or
            ``"categorical"`` (integer data in ``0..levels-1``).
        levels: the number of values per pixel, for ``"categorical"``.
        hidden: hidden widths of the encoder; the decoder mirrors them.
        beta: the weight of the KL term in :meth:`loss` (1 gives the ELBO).
    """

    def __init__(
        self,
        shape: Sequence[int],
        latent_dim: int,
        likelihood: str = "categorical",
        levels: int | None = None,
        hidden: Sequence[int] = (256,),
        beta: float = 1.0,
    ):
        super().__init__()
        self.shape = checks.sizes(shape, "shape", allow_empty=False)
        checks.choice(likelihood, "likelihood", LIKELIHOODS)
        if likelihood == "categorical":
            if levels is None:
                raise ValueError(
                    "a categorical decoder needs levels= (an int >= 2), e.g. 17 for digits"
                )
            levels = checks.integer(levels, "levels", low=2)
        latent_dim = checks.integer(latent_dim, "latent_dim")
        beta = checks.number(beta, "beta", low=0)
        hidden = checks.sizes(hidden, "hidden", example="(256,)")
        self.d = math.prod(self.shape)
        self.latent_dim, self.likelihood, self.levels, self.beta = (
            latent_dim,
            likelihood,
            levels,
            beta,
        )
        widths = list(hidden)
        self.hidden = tuple(widths)
        out = self.d * levels if likelihood == "categorical" else self.d
        self.encoder = mlp([self.d, *widths, 2 * latent_dim])
        self.decoder = mlp([latent_dim, *widths[::-1], out])
        if likelihood == "gaussian":
            self.log_scale = nn.Parameter(torch.zeros(self.d))

    batch_parts = 1  # fit passes the images alone (labels are dropped)

    # ------------------------------------------------------------------ checks

    KIND = {"categorical": "levels", "bernoulli": "binary", "gaussian": "real"}

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def _check(self, x, name: str = "x", min_len: int = 0, shape=None) -> torch.Tensor:
        """The data this decoder models, flattened ``(B, d)`` on the model's device:
        integer grey levels (categorical), 0/1 (Bernoulli) or floats in the model's dtype
        (Gaussian), converted as :func:`selfsup._checks.images` converts."""
        kind = self.KIND[self.likelihood]
        shape = self.shape if shape is None else shape
        x = checks.images(x, name, shape, kind, self.levels, min_len=min_len, like=self)
        return x.reshape(len(x), self.d)

    def _latent(self, z, name: str = "z") -> torch.Tensor:
        z = checks.tensor(z, name, min_len=0, dtype="float", like=self)
        if z.ndim < 2 or z.shape[-1] != self.latent_dim:
            raise ValueError(
                f"{name} must have shape (B, {self.latent_dim}) (latent_dim={self.latent_dim}), "
                f"got {tuple(z.shape)}"
            )
        return z

    def _dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def _encoder_input(self, flat: torch.Tensor) -> torch.Tensor:
        """The data as the weights' float type (float64 after ``.double()``), grey
        levels scaled to [0, 1]."""
        flat = flat.to(self._dtype())
        if self.likelihood == "categorical":
            return flat / (self.levels - 1)
        return flat

    # ------------------------------------------------------------------ model

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of ``q(z|x)``, each ``(B, r)``."""
        h = self.encoder(self._encoder_input(self._check(x)))
        mu, logvar = h.chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)

    def encode(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """The posterior mean ``mu(x)``, ``(B, r)`` (deterministic: ``generator`` is
        accepted, as by every encoder, and unused)."""
        checks.generator(generator)
        return self.posterior(x)[0]

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator=None) -> torch.Tensor:
        """``z = mu + sigma * eps`` with ``eps ~ N(0, I)``: a sample of ``q`` that is a
        differentiable function of ``mu`` and ``logvar``."""
        eps = tensors.randn(mu.shape, generator, mu.device, dtype=mu.dtype)
        return mu + (0.5 * logvar).exp() * eps

    def _decoder_params(self, z: torch.Tensor) -> torch.Tensor:
        out = self.decoder(z.to(self._device()))
        return (
            out.reshape(*z.shape[:-1], self.d, self.levels)
            if self.likelihood == "categorical"
            else out
        )

    def _position_log_probs(self, flat: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """``log p(x_j | z)`` per position, broadcasting ``flat`` ``(B, d)`` against the
        decoder's ``params`` ``(..., B or 1, d[, levels])``; ``(..., B, d)`` nats."""
        if self.likelihood == "bernoulli":
            target = flat.to(params.dtype).expand(torch.broadcast_shapes(params.shape, flat.shape))
            return -F.binary_cross_entropy_with_logits(
                params.expand_as(target), target, reduction="none"
            )
        if self.likelihood == "gaussian":
            scale = self.log_scale
            return (
                -0.5 * ((flat.to(params.dtype) - params) / scale.exp()) ** 2 - scale - 0.5 * LOG_2PI
            )
        logp = torch.log_softmax(params, dim=-1)
        shape = torch.broadcast_shapes(params.shape[:-1], flat.shape)
        return logp.expand(*shape, self.levels).gather(-1, flat.long().expand(shape)[..., None])[
            ..., 0
        ]

    def decoder_log_prob(self, flat: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``log p(x|z)`` in nats, ``(..., B)``, for flattened data ``flat`` ``(B, d)`` and
        codes ``z`` ``(..., B, r)`` (or ``(..., 1, r)``, shared by the batch).

        ``flat`` is the data the decoder models, as :meth:`loss` takes it: integer grey
        levels ``0..levels-1`` for a categorical decoder (whole-number floats are
        converted, fractional ones refused), 0/1 for a Bernoulli one, floats for a
        Gaussian one.
        """
        flat = self._check(flat, "flat", shape=(self.d,))
        z = checks.tensor(z, "z", min_len=0, dtype="float", like=self)
        if z.ndim < 2 or z.shape[-1] != self.latent_dim:
            raise ValueError(
                f"z must have shape (..., B, {self.latent_dim}) (latent_dim={self.latent_dim}), "
                f"got {tuple(z.shape)}"
            )
        return self._position_log_probs(flat, self._decoder_params(z)).sum(-1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's mean image ``E[x|z]``, ``(B, *shape)``, in data units."""
        z = self._latent(z)
        params = self._decoder_params(z)
        if self.likelihood == "bernoulli":
            mean = torch.sigmoid(params)
        elif self.likelihood == "gaussian":
            mean = params
        else:
            values = torch.arange(self.levels, dtype=params.dtype, device=params.device)
            mean = (torch.softmax(params, -1) * values).sum(-1)
        return mean.reshape(len(z), *self.shape)

    def elbo(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> ELBO:
        """The ELBO per example with its terms, in nats, ``(B,)`` each: a one-sample
        estimate drawn with ``generator`` (an :class:`ELBO`; ``kl`` in closed form)."""
        checks.generator(generator)
        return self._elbo(self._check(x), generator)

    def _elbo(self, flat: torch.Tensor, generator) -> ELBO:
        with checks.trusted():
            mu, logvar = self.posterior(flat.reshape(len(flat), *self.shape))
            z = self.reparameterize(mu, logvar, generator)
            reconstruction = self.decoder_log_prob(flat, z)
        kl = kl_to_standard_normal(mu, logvar)
        return ELBO(reconstruction - kl, reconstruction, kl, (kl,))

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        """``-(reconstruction - beta * KL)``, averaged over the batch, in nats per example
        (``batch``: ``(B, *shape)``, ``B >= 1``, as :meth:`elbo` takes it)."""
        terms = self._elbo(self._check(batch, "batch", min_len=1), None)
        return -(terms.reconstruction - self.beta * terms.kl).mean()

    @torch.no_grad()
    def iwae_bound(
        self, x: torch.Tensor, k: int = 64, chunk: int = 64, generator=None
    ) -> torch.Tensor:
        """The importance-weighted bound ``log 1/k sum_i p(x, z_i) / q(z_i|x)``, ``(B,)`` nats.

        A lower bound on ``log p(x)`` for every ``k``; ``k = 1`` is a one-sample estimate
        of the ELBO (its expectation), and the
        bound increases (in expectation) towards ``log p(x)`` as ``k`` grows
        (Burda et al., 2016).
        """
        k = checks.integer(k, "k")
        chunk = checks.integer(chunk, "chunk")
        checks.generator(generator)
        flat = self._check(x)
        with checks.trusted():  # x is checked: the pieces check only shapes
            posterior = self.posterior(flat.reshape(len(flat), *self.shape))
            # 2000 MNIST digits at once with a 256-level decoder would need 100 GB at k = 64
            rows = self._rows_per_piece(min(chunk, k))
            mu, logvar = posterior
            pieces = []
            for lo in range(0, len(flat), rows):
                part = (mu[lo : lo + rows], logvar[lo : lo + rows])
                log_w = [
                    self._log_weights(flat[lo : lo + rows], part, min(chunk, k - start), generator)
                    for start in range(0, k, chunk)
                ]
                pieces.append(torch.logsumexp(torch.cat(log_w), dim=0) - math.log(k))
        return torch.cat(pieces) if pieces else mu.new_zeros(0)

    def _rows_per_piece(self, samples: int) -> int:
        """Rows of a batch to score at once against ``samples`` latents, so that the
        decoder's outputs (``levels`` per pixel for a categorical one) stay near
        ``_IWAE_ELEMENTS`` numbers: the memory bound of ``iwae_bound`` and ``complete``."""
        width = self.d * (self.levels if self.likelihood == "categorical" else 1)
        return max(1, _IWAE_ELEMENTS // (samples * width))

    def _log_weights(self, flat, posterior, m: int, generator) -> torch.Tensor:
        """``log p(x, z) - log q(z|x)`` for ``m`` samples ``z ~ q``, shape ``(m, B)``.

        ``flat`` is the ``(B, d)`` batch, ``posterior`` the pair ``(mu, logvar)`` of
        ``q(z|x)``, each ``(B, r)``. Draw the noise with
        ``tensors.randn((m, *mu.shape), generator, mu.device, dtype=mu.dtype)`` and
        reparameterize; the
        prior is ``N(0, I)``, and ``self.decoder_log_prob(flat, z)`` gives
        ``log p(x|z)`` for ``z`` of shape ``(m, B, r)``.
        """
        mu, logvar = posterior
        # BEGIN SOLUTION
        eps = tensors.randn((m, *mu.shape), generator, mu.device, dtype=mu.dtype)
        z = mu + (0.5 * logvar).exp() * eps  # (m, B, r)
        log_prior = -0.5 * (LOG_2PI + z**2).sum(-1)
        return self.decoder_log_prob(flat, z) + log_prior - _log_normal(z, mu, logvar)
        # END SOLUTION

    def log_prob(
        self,
        x: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        k: int = 256,
        chunk: int = 64,
    ) -> torch.Tensor:
        """A **lower bound** on ``log p(x)``, ``(B,)`` nats: :meth:`iwae_bound` with ``k``
        importance samples drawn with ``generator`` (every ``k >= 1`` gives a bound, in
        expectation over the draws; larger ``k`` a tighter one)."""
        return self.iwae_bound(x, k, chunk, generator)

    @torch.no_grad()
    def complete(
        self, x: torch.Tensor, known_mask: torch.Tensor, *, generator=None, samples: int = 2048
    ) -> torch.Tensor:
        """The model's conditional mean ``E[x_u | x_k]`` in the unknown positions.

        A VAE has no closed-form ``p(x_u | x_k)``, but since the decoder factorises
        over positions, ``E[x_u | x_k] = sum_i w_i E[x_u | z_i]`` with ``z_i ~ N(0, I)``
        and self-normalised weights ``w_i ∝ p(x_k | z_i)``: importance sampling with
        the prior as proposal, consistent as ``samples`` grows. The same ``samples``
        codes serve the whole batch. Known positions never change.

        Args:
            x: ``(B, *shape)`` data; the unknown positions' values are ignored.
            known_mask: boolean ``shape``, ``True`` where ``x`` is known.
            samples: the number of prior samples.
        Returns:
            ``(B, *shape)`` float: ``x`` with conditional means in the unknown positions.
        """
        flat = self._check(x).to(self._dtype())
        known = checks.known_mask(known_mask, self.shape).to(flat.device)
        samples = checks.integer(samples, "samples")
        checks.generator(generator)
        known = known.reshape(-1).float()
        z = tensors.randn((samples, self.latent_dim), generator, flat.device)
        params = self._decoder_params(z).unsqueeze(1)  # (S, 1, d[, levels])
        means = self.decode(z).reshape(samples, -1)  # (S, d)
        filled = []
        for chunk in flat.split(self._rows_per_piece(samples)):
            log_w = (self._position_log_probs(chunk, params) * known).sum(-1)  # (S, b)
            filled.append(torch.softmax(log_w, dim=0).T @ means)
        out = torch.where(known.bool(), flat, torch.cat(filled))
        return out.reshape(len(flat), *self.shape)

    @torch.no_grad()
    def sample(self, n: int, *, mean: bool = False, generator=None) -> torch.Tensor:
        """``n`` samples: ``z ~ N(0, I)``, then ``x ~ p(x|z)`` (or its mean if ``mean``).

        Samples are on the data's scale: integer grey levels (categorical), 0/1 floats
        (Bernoulli) or floats (Gaussian); decoder means are floats.
        """
        n = checks.sample_count(n)
        checks.generator(generator)
        z = tensors.randn((n, self.latent_dim), generator, self._device())
        if mean:
            return self.decode(z)
        return self.sample_given(z, generator)

    @torch.no_grad()
    def sample_given(self, z: torch.Tensor, generator=None) -> torch.Tensor:
        """A sample ``x ~ p(x | z)`` for each code ``z`` ``(n, r)``."""
        z = self._latent(z)
        checks.generator(generator)
        n, params = len(z), self._decoder_params(z)
        where = tensors.draw_device(generator, params.device)
        if self.likelihood == "bernoulli":
            x = torch.bernoulli(torch.sigmoid(params).to(where), generator=generator)
        elif self.likelihood == "gaussian":
            noise = tensors.randn(params.shape, generator, where)
            x = params.to(where) + self.log_scale.exp().to(where) * noise
        else:
            probs = torch.softmax(params, -1).reshape(-1, self.levels).to(where)
            x = torch.multinomial(probs, 1, generator=generator).reshape(n, self.d)
        return x.to(params.device).reshape(n, *self.shape)


class LinearGaussianVAE(Saveable, nn.Module):
    """Probabilistic PCA as a VAE, with everything in closed form (float64).

    ``p(z) = N(0, I_r)``, ``p(x|z) = N(W z + b, sigma^2 I_d)``, so
    ``p(x) = N(b, W W^T + sigma^2 I)``; the posterior is
    ``N(M^-1 W^T (x - b), sigma^2 M^-1)`` with ``M = W^T W + sigma^2 I``. The encoder
    ``q(z|x) = N(A x + c, diag s^2)`` is linear, and the ELBO's expectation is exact.

    Args:
        d: the number of features of one example (pixels: an image is flattened).
        r: the latent dimension, ``1 <= r <= d``.
        levels: the data set's number of grey levels: the model then takes its images
            (``0..levels-1``, integers or whole-number floats, any shape with ``d``
            pixels) and models them divided by ``levels - 1``, in ``[0, 1]``, so its
            densities are of that continuous scale. ``None``: it takes float vectors
            as they are.
    """

    batch_parts = 1  # fit passes the data alone (labels are dropped)

    def __init__(self, d: int, r: int, levels: int | None = None):
        super().__init__()
        d = checks.integer(d, "d")
        r = checks.integer(r, "r", low=1, high=d)
        self.levels = None if levels is None else checks.integer(levels, "levels", low=2)
        kw = {"dtype": torch.float64}
        self.d, self.r = d, r
        self.W = nn.Parameter(0.1 * torch.randn(d, r, **kw))
        self.b = nn.Parameter(torch.zeros(d, **kw))
        self.log_sigma = nn.Parameter(torch.zeros((), **kw))
        self.A = nn.Parameter(0.1 * torch.randn(r, d, **kw))
        self.c = nn.Parameter(torch.zeros(r, **kw))
        self.log_s2 = nn.Parameter(torch.zeros(r, **kw))

    def _x(self, x) -> torch.Tensor:
        if self.levels is not None:
            t = checks.unit_images(x, "x", None, self.levels, min_len=0, like=self)
        else:
            t = checks.tensor(x, "x", min_len=0, dtype="float")
        if t.ndim < 2:
            raise ValueError(f"x must have shape (B, {self.d}), got {tuple(t.shape)}")
        t = t.to(self.W.device, torch.float64).reshape(len(t), -1)
        if t.shape[1] != self.d:
            raise ValueError(f"x must have {self.d} features per example, got {t.shape[1]}")
        return t

    def encoder(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean ``(B, r)`` and variances ``(r,)`` of ``q(z|x)``."""
        return self._encoder(self._x(x))

    def _encoder(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x @ self.A.T + self.c, self.log_s2.exp()

    def elbo(self, x) -> torch.Tensor:
        """The exact ELBO per example, ``(B,)`` nats."""
        x = self._x(x)
        mu, s2 = self._encoder(x)
        sigma2 = (2 * self.log_sigma).exp()
        resid = x - mu @ self.W.T - self.b
        trace = (s2 * (self.W**2).sum(0)).sum()  # E||W (z - mu)||^2
        recon = (
            -0.5 * self.d * (LOG_2PI + torch.log(sigma2))
            - 0.5 * ((resid**2).sum(1) + trace) / sigma2
        )
        kl = 0.5 * (mu**2 + s2 - 1 - s2.log()).sum(1)
        return recon - kl

    def log_prob(self, x, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """The exact ``log p(x)`` per example, ``(B,)`` nats (``generator`` is accepted for
        the protocol's sake: nothing here is random)."""
        checks.generator(generator)
        cov = self.W @ self.W.T + (2 * self.log_sigma).exp() * torch.eye(
            self.d, dtype=torch.float64, device=self.W.device
        )
        return torch.distributions.MultivariateNormal(self.b, covariance_matrix=cov).log_prob(
            self._x(x)
        )

    def true_posterior(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean ``(B, r)`` and covariance ``(r, r)`` of ``p(z|x)``."""
        sigma2 = (2 * self.log_sigma).exp()
        m = self.W.T @ self.W + sigma2 * torch.eye(
            self.r, dtype=torch.float64, device=self.W.device
        )
        mean = torch.linalg.solve(m, self.W.T @ (self._x(x) - self.b).T).T
        return mean, sigma2 * torch.linalg.inv(m)

    def loss(self, batch) -> torch.Tensor:
        """The negative exact ELBO, mean nats per example of ``batch`` ``(B, ...)`` with
        ``d`` values per example, as :meth:`elbo` takes it."""
        checks.tensor(batch, "batch", min_len=1)  # the mean of no examples is NaN
        return -self.elbo(batch).mean()
