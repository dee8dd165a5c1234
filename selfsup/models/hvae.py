"""A two-level hierarchical VAE.

Generative model, top-down: ``p(z2) = N(0, I)``, ``p(z1 | z2) = N(mu(z2), sigma^2(z2))``,
``p(x | z1)`` as in :class:`~selfsup.models.vae.VAE`. Inference, bottom-up:
``q(z1 | x)`` and ``q(z2 | z1)``. The ELBO is

    ELBO = E_q [log p(x|z1) - (log q(z1|x) - log p(z1|z2)) - KL(q(z2|z1) || p(z2))].

The z1 term is a one-sample Monte Carlo log-ratio, not the analytic
``KL(q(z1|x) || p(z1|z2))``: under bottom-up inference z2 is drawn *given* z1, so z1
and z2 are coupled, and ``E_q KL(q(z1|x) || p(z1|z2))`` at a z2 sampled from z1 is not
the term of the ELBO (on a linear-Gaussian example it is off by 1.6 nats, with a sign
that depends on the model). The z2 term is exact: given z1, z2 is drawn from
``q(z2|z1)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .. import _checks as checks
from .. import tensors
from .layers import mlp
from .vae import ELBO, LOG_2PI, VAE, _log_normal, kl_to_standard_normal

__all__ = ["ELBO", "HierarchicalELBO", "HierarchicalVAE"]

#: The hierarchical VAE's ELBO is the VAE's :class:`~selfsup.models.vae.ELBO`, with two
#: layers: ``kl1 = log q(z1|x) - log p(z1|z2)`` (one sample; its expectation is the
#: layer-1 rate) and ``kl2 = KL(q(z2|z1) || N(0, I))`` for the sampled ``z1``.
HierarchicalELBO = ELBO


class HierarchicalVAE(VAE):
    """Two stochastic layers: ``z1`` (``latent_dim``) below ``z2`` (``top_dim``).

    The encoder of :class:`VAE` gives ``q(z1|x)`` and its decoder ``p(x|z1)``; two
    small networks add ``q(z2|z1)`` and the learned prior ``p(z1|z2)``.
    """

    def __init__(
        self,
        shape: Sequence[int],
        latent_dim: int,
        top_dim: int,
        likelihood: str = "categorical",
        levels: int | None = None,
        hidden: Sequence[int] = (256,),
        top_hidden: Sequence[int] = (128,),
        beta: float = 1.0,
        free_bits: float = 0.0,
    ):
        super().__init__(shape, latent_dim, likelihood, levels, hidden, beta)
        self.free_bits = checks.number(free_bits, "free_bits", low=0)
        self.top_dim = top_dim = checks.integer(top_dim, "top_dim")
        top_hidden = checks.sizes(top_hidden, "top_hidden", example="(128,)")
        self.encoder2 = mlp([latent_dim, *top_hidden, 2 * top_dim])
        self.prior1 = mlp([top_dim, *top_hidden, 2 * latent_dim])

    def _q2(self, z1):
        mu, logvar = self.encoder2(z1).chunk(2, -1)
        return mu, logvar.clamp(-12.0, 8.0)

    def _p1(self, z2):
        mu, logvar = self.prior1(z2).chunk(2, -1)
        return mu, logvar.clamp(-12.0, 8.0)

    def elbo(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> ELBO:
        """The ELBO per example with its terms, ``(B,)`` nats each (one-sample estimate
        drawn with ``generator``): an :class:`~selfsup.models.vae.ELBO` with two layers,
        ``kl = kl1 + kl2``."""
        return super().elbo(x, generator=generator)

    def _elbo(self, flat: torch.Tensor, generator) -> ELBO:
        with checks.trusted():
            mu1, logvar1 = self.posterior(flat.reshape(len(flat), *self.shape))
            z1 = self.reparameterize(mu1, logvar1, generator)
            mu2, logvar2 = self._q2(z1)
            z2 = self.reparameterize(mu2, logvar2, generator)
            reconstruction = self.decoder_log_prob(flat, z1)
        kl1 = _log_normal(z1, mu1, logvar1) - _log_normal(z1, *self._p1(z2))
        kl2 = kl_to_standard_normal(mu2, logvar2)
        return ELBO(reconstruction - kl1 - kl2, reconstruction, kl1 + kl2, (kl1, kl2))

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        """The negative (beta-weighted) ELBO, mean nats per example of ``batch``
        ``(B, *shape)``, ``B >= 1``. With ``free_bits``, the top layer's mean KL is charged
        at least ``free_bits`` nats, so the optimiser gains nothing by switching the top
        layer off (a guard against posterior collapse)."""
        terms = self._elbo(self._check(batch, "batch", min_len=1), None)
        kl2 = torch.clamp(terms.kl2.mean(), min=self.free_bits)
        return -terms.reconstruction.mean() + self.beta * (terms.kl1.mean() + kl2)

    def _log_weights(self, flat, posterior, m: int, generator) -> torch.Tensor:
        """``log p(x, z1, z2) - log q(z1, z2 | x)`` for ``m`` samples, ``(m, B)``: with
        :meth:`VAE.iwae_bound` a lower bound on ``log p(x)``."""
        mu1, logvar1 = posterior
        z1 = mu1 + (0.5 * logvar1).exp() * tensors.randn((m, *mu1.shape), generator, mu1.device)
        mu2, logvar2 = self._q2(z1)
        z2 = mu2 + (0.5 * logvar2).exp() * tensors.randn(mu2.shape, generator, mu2.device)
        log_p = (
            self.decoder_log_prob(flat, z1)
            + _log_normal(z1, *self._p1(z2))
            - 0.5 * (LOG_2PI + z2**2).sum(-1)
        )
        return log_p - _log_normal(z1, mu1, logvar1) - _log_normal(z2, mu2, logvar2)

    @torch.no_grad()
    def sample(
        self, n: int, *, mean: bool = False, generator=None, z2: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Ancestral sampling ``z2 -> z1 -> x``; a given ``z2`` ``(n, top_dim)`` fixes the top."""
        n = checks.sample_count(n)
        checks.generator(generator)
        if z2 is None:
            z2 = tensors.randn((n, self.top_dim), generator, self._device())
        else:
            z2 = checks.tensor(z2, "z2", shape=(self.top_dim,), min_len=0, dtype="float",
                               like=self)  # fmt: skip
            if len(z2) != n:
                raise ValueError(f"z2 must have n={n} rows, got {len(z2)}")
        mu, logvar = self._p1(z2)
        z1 = mu + (0.5 * logvar).exp() * tensors.randn(mu.shape, generator, mu.device)
        if mean:
            return self.decode(z1)
        return self.sample_given(z1, generator)
