"""Graded: selfsup.models.vae.kl_to_standard_normal (chapter: vae)."""

import torch
from torch.distributions import Normal, kl_divergence

from selfsup.models.vae import kl_to_standard_normal


def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(7, 5, generator=g, dtype=torch.float64)
    logvar = torch.randn(7, 5, generator=g, dtype=torch.float64)
    want = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1)
    got = kl_to_standard_normal(mu, logvar)
    assert got.shape == (7,)
    torch.testing.assert_close(got, want)


def test_kl_is_zero_at_the_prior_and_has_the_right_gradient():
    mu = torch.zeros(3, 4, requires_grad=True)
    logvar = torch.zeros(3, 4, requires_grad=True)
    kl = kl_to_standard_normal(mu, logvar)
    torch.testing.assert_close(kl, torch.zeros(3))
    mu2 = torch.full((1, 2), 2.0, requires_grad=True)
    kl_to_standard_normal(mu2, torch.zeros(1, 2)).sum().backward()
    torch.testing.assert_close(mu2.grad, torch.full((1, 2), 2.0))  # d/dmu (mu^2 / 2)
