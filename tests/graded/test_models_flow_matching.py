"""Graded: selfsup.models.flow_matching.linear_path (chapter: flow matching)."""

import torch

from selfsup.models.flow_matching import FlowMatching, linear_path, mixture_velocity
from selfsup.train import fit


def _batch(n=6, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x0, x1 = torch.randn(2, n, d, generator=g)
    return x0, x1, torch.rand(n, generator=g)


def test_the_path_runs_from_the_noise_to_the_data():
    x0, x1, _ = _batch()
    for sigma_min in (0.0, 0.05):
        start, _ = linear_path(x0, x1, torch.zeros(6), sigma_min)
        end, _ = linear_path(x0, x1, torch.ones(6), sigma_min)
        torch.testing.assert_close(start, x0)
        torch.testing.assert_close(end, x1 + sigma_min * x0)


def test_the_velocity_is_the_derivative_of_the_path():
    x0, x1, s = _batch(seed=1)
    s = s.clone().requires_grad_(True)
    for sigma_min in (0.0, 0.1):
        x_s, u_s = linear_path(x0, x1, s, sigma_min)
        assert x_s.shape == u_s.shape == x0.shape
        for j in range(x0.shape[1]):  # x_s[b, j] depends on s[b] alone
            (ds,) = torch.autograd.grad(x_s[:, j].sum(), s, retain_graph=True)
            torch.testing.assert_close(ds, u_s[:, j].detach())


def test_a_model_trained_on_the_path_learns_the_marginal_field():
    """Flow matching with your path learns the closed-form marginal field of a mixture of
    two Gaussians, on the points and times of its own regression."""
    means, std = torch.tensor([[-2.0, 0.0], [2.0, 1.0]]), 0.3
    g = torch.Generator().manual_seed(0)

    def mixture(n):
        return means[torch.randint(0, 2, (n,), generator=g)] + std * torch.randn(n, 2, generator=g)

    torch.manual_seed(0)
    model = FlowMatching((2,), hidden=(64, 64))
    fit(model, mixture(3000), epochs=25, lr=5e-3, batch_size=256, progress=False, device="cpu")
    s = 0.9 * torch.rand(4000, generator=g)
    x_s = (1 - s[:, None]) * torch.randn(4000, 2, generator=g) + s[:, None] * mixture(4000)
    exact = mixture_velocity(x_s, s, means, std)
    with torch.no_grad():
        error = ((model.velocity(x_s, s) - exact) ** 2).sum(1).mean() / (exact**2).sum(1).mean()
    assert float(error) < 0.1, f"relative squared error {float(error):.3f}"
