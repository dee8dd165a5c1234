"""Graded: selfsup.models.diffusion.Diffusion._diffusion (chapter: diffusion)."""

import math

import torch

from selfsup.models.diffusion import Diffusion

MU, S = torch.tensor([0.5, -1.0]), 0.7


class _Exact(torch.nn.Module):
    """The optimal noise prediction for data N(MU, S^2 I)."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))
        self.owner = []

    def forward(self, z, level):
        m = self.owner[0]
        gamma = m.gamma_min + (m.gamma_max - m.gamma_min) * level
        alpha, sigma = m.alpha_sigma(gamma)
        var = alpha[:, None] ** 2 * S**2 + sigma[:, None] ** 2
        return sigma[:, None] * (z - alpha[:, None] * MU) / var


def _model():
    net = _Exact()
    model = Diffusion((2,), None, network=net)
    net.owner.append(model)
    return model


def test_continuous_bound_of_the_exact_denoiser_is_just_below_the_density():
    model = _model()
    x = MU + S * torch.randn(3000, 2, generator=torch.Generator().manual_seed(0))
    exact = (-0.5 * ((x - MU) / S) ** 2 - math.log(S) - 0.5 * math.log(2 * math.pi)).sum(1)
    gap = model.log_prob(x, generator=torch.Generator().manual_seed(1), samples=16) - exact
    se = float(gap.std()) / math.sqrt(len(x))
    assert -0.2 < float(gap.mean()) < 3 * se


def test_discrete_steps_weigh_each_step_by_the_snr_change():
    """With T steps, step i weighs its error by T/2 (exp(gamma_i - gamma_{i-1}) - 1)."""
    model = _model()
    x0 = torch.tensor([[0.3, -0.2]])
    noise = torch.tensor([[0.5, 1.0]])
    u = torch.tensor([0.55])  # step 6 of 10: t from 0.5 to 0.6
    got = model._diffusion(x0, u, noise, 10)
    g_t, g_s = model.gamma(torch.tensor([0.6])), model.gamma(torch.tensor([0.5]))
    alpha, sigma = model.alpha_sigma(g_t)
    z = alpha[:, None] * x0 + sigma[:, None] * noise
    err = (noise - model.eps(z, g_t)).pow(2).sum(-1)
    torch.testing.assert_close(got, 5 * torch.expm1(g_t - g_s) * err)
