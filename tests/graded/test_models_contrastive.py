"""Graded: selfsup.models.contrastive.nt_xent (chapter: contrastive)."""

import math

import pytest
import torch

from selfsup.models.contrastive import nt_xent


def _brute_force(z1, z2, t):
    z = torch.cat([z1, z2])
    z = z / z.norm(dim=1, keepdim=True)
    n2 = len(z)
    total = 0.0
    for i in range(n2):
        j = (i + n2 // 2) % n2
        sims = [float(z[i] @ z[k]) / t for k in range(n2) if k != i]
        log_den = math.log(sum(math.exp(s) for s in sims))
        total += -(float(z[i] @ z[j]) / t - log_den)
    return total / n2


@pytest.mark.parametrize("n,t", [(2, 0.5), (8, 0.1), (16, 1.0)])
def test_nt_xent_matches_a_loop_over_anchors(n, t):
    g = torch.Generator().manual_seed(n)
    z1, z2 = (
        torch.randn(n, 5, generator=g, dtype=torch.float64),
        torch.randn(n, 5, generator=g, dtype=torch.float64),
    )
    assert float(nt_xent(z1, z2, t)) == pytest.approx(_brute_force(z1, z2, t), rel=1e-9)


def test_nt_xent_rewards_aligned_views_and_has_gradients():
    g = torch.Generator().manual_seed(0)
    z1 = torch.randn(32, 8, generator=g, requires_grad=True)
    aligned = nt_xent(z1, z1.detach() + 0.01 * torch.randn(32, 8, generator=g), 0.2)
    shuffled = nt_xent(z1, torch.randn(32, 8, generator=g), 0.2)
    assert aligned.item() < shuffled.item()
    assert aligned.item() >= 0
    aligned.backward()
    assert z1.grad is not None and torch.isfinite(z1.grad).all()
