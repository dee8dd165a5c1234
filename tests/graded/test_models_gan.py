"""Graded: selfsup.models.gan.gradient_penalty (chapter: gans)."""

import torch
from torch import nn

from selfsup.models.gan import gradient_penalty


def test_penalty_matches_per_example_gradients():
    """Same interpolation draws: (||grad f(x_hat_i)|| - 1)^2 averaged, one example at a time."""
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1)).double()
    real, fake = torch.randn(8, 3, dtype=torch.float64), torch.randn(8, 3, dtype=torch.float64)
    got = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(5))
    eps = torch.rand((8, 1), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    want = 0.0
    for i in range(8):
        x_hat = (eps[i] * real[i] + (1 - eps[i]) * fake[i]).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat)
        want += (grad.norm() - 1) ** 2 / 8
    torch.testing.assert_close(got, want)


def test_penalty_is_zero_for_a_unit_slope_critic_and_differentiable():
    w = torch.tensor([[0.6, 0.8]], requires_grad=True)  # ||w|| = 1
    critic = lambda x: x @ w.T  # noqa: E731
    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    assert gradient_penalty(critic, real, fake).item() < 1e-10
    w2 = torch.tensor([[3.0, 0.0]], requires_grad=True)
    gp = gradient_penalty(lambda x: x @ w2.T, real, fake)
    torch.testing.assert_close(gp.detach(), torch.tensor(4.0))
    gp.backward()  # create_graph: the penalty trains the critic
    torch.testing.assert_close(w2.grad, torch.tensor([[4.0, 0.0]]))


def test_penalty_on_images():
    critic = nn.Sequential(nn.Flatten(), nn.Linear(2 * 3 * 3, 1))
    real, fake = torch.rand(4, 2, 3, 3), torch.rand(4, 2, 3, 3)
    w_norm = critic[1].weight.norm()
    torch.testing.assert_close(gradient_penalty(critic, real, fake), (w_norm - 1) ** 2)
