"""Graded: selfsup.models.vae.VAE._log_weights, the importance weights of the IWAE
bound (chapter: vae)."""

import math

import torch
from torch.distributions import Normal

from selfsup.models.vae import VAE


def _model(latent=2):
    torch.manual_seed(0)
    model = VAE((2, 2), latent, likelihood="categorical", levels=3, hidden=(16,)).double()
    return model.eval()


def _batch():
    return torch.tensor([[0, 1, 2, 1], [2, 2, 0, 0], [1, 1, 1, 1]])


def test_log_weights_match_torch_distributions_on_the_same_draws():
    model, x = _model(), _batch()
    with torch.no_grad():
        mu, logvar = model.posterior(x.reshape(3, 2, 2))
        got = model._log_weights(x, (mu, logvar), 5, torch.Generator().manual_seed(3))
        eps = torch.randn(
            (5, *mu.shape), generator=torch.Generator().manual_seed(3), dtype=mu.dtype
        )
        q = Normal(mu, (0.5 * logvar).exp())
        z = q.loc + q.scale * eps
        want = (
            model.decoder_log_prob(x, z)
            + Normal(0.0, 1.0).log_prob(z).sum(-1)
            - q.log_prob(z).sum(-1)
        )
    assert got.shape == (5, 3)
    torch.testing.assert_close(got, want)


def test_weights_are_unbiased_for_p_x_computed_by_quadrature():
    """E_q[p(x, z) / q(z|x)] = p(x): importance sampling, checked against a dense
    integral over a one-dimensional latent."""
    model, x = _model(latent=1), _batch()[:1]
    with torch.no_grad():
        grid = torch.linspace(-8, 8, 4001, dtype=torch.float64)[:, None, None]
        log_joint = model.decoder_log_prob(x, grid) + Normal(0.0, 1.0).log_prob(grid).sum(-1)
        log_px = torch.logsumexp(log_joint[:, 0], 0) + math.log(16 / 4000)
        posterior = model.posterior(x.reshape(1, 2, 2))
        log_w = model._log_weights(x, posterior, 200_000, torch.Generator().manual_seed(0))
        estimate = torch.logsumexp(log_w[:, 0], 0) - math.log(len(log_w))
    assert abs(float(estimate - log_px)) < 0.01, (float(estimate), float(log_px))
