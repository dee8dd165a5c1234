"""selfsup.models.contrastive: losses against brute force, augmentations, probes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from selfsup.models.contrastive import (
    Augment,
    ConvEncoder,
    SimCLR,
    TwoTower,
    alignment,
    clip_loss,
    info_nce,
    linear_probe,
    nt_xent,
    uniformity,
)


def _emb(n=6, r=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, r, generator=g, dtype=torch.float64), torch.randn(
        n, r, generator=g, dtype=torch.float64
    )


def test_info_nce_is_cross_entropy_with_arange_targets():
    u, v = _emb()
    logits = F.normalize(u, dim=1) @ F.normalize(v, dim=1).T / 0.3
    expected = F.cross_entropy(logits, torch.arange(6))
    assert torch.allclose(info_nce(u, v, 0.3), expected)
    # the lecture's form: -mean log(M_ii / sum_j M_ij)
    m = torch.exp(logits)
    assert torch.allclose(info_nce(u, v, 0.3), -(m.diag() / m.sum(1)).log().mean())
    sym = 0.5 * (expected + F.cross_entropy(logits.T, torch.arange(6)))
    assert torch.allclose(info_nce(u, v, 0.3, symmetric=True), sym)


def test_nt_xent_equals_a_brute_force_double_loop():
    z1, z2 = _emb(5, 3, seed=1)
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n, tau, total = 5, 0.5, 0.0
    for i in range(2 * n):
        positive = (i + n) % (2 * n)
        denominator = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(float(z[i] @ z[positive]) / tau) / denominator)
    assert float(nt_xent(z1, z2, tau)) == pytest.approx(total / (2 * n), rel=1e-10)


def test_clip_loss_is_symmetric_and_scale_invariant():
    a, b = _emb(7, 5, seed=2)
    assert torch.allclose(clip_loss(a, b, 10.0), clip_loss(b, a, 10.0))
    # invariant to the embeddings' scale (they are normalised), as are nt_xent and info_nce
    assert torch.allclose(clip_loss(3 * a, 0.1 * b, 10.0), clip_loss(a, b, 10.0))
    assert torch.allclose(nt_xent(5 * a, b, 0.5), nt_xent(a, b, 0.5))
    assert torch.allclose(info_nce(5 * a, b), info_nce(a, b))


def test_alignment_and_uniformity():
    a, _ = _emb(50, 3, seed=3)
    assert alignment(a, 2 * a) == pytest.approx(0.0, abs=1e-12)  # perfect alignment
    clumped = torch.ones(50, 3) + 1e-3 * a.float()
    assert uniformity(clumped) > uniformity(a.float())  # spread is more uniform
    assert uniformity(clumped) == pytest.approx(0.0, abs=1e-3)


def test_augment_keeps_shape_and_range_and_varies():
    x = torch.rand(16, 8, 8)
    aug = Augment()
    y1 = aug(x, generator=torch.Generator().manual_seed(0))
    y2 = aug(x, generator=torch.Generator().manual_seed(1))
    assert y1.shape == x.shape and float(y1.min()) >= 0 and float(y1.max()) <= 1
    assert not torch.allclose(y1, y2)
    identity = Augment(rotate=0, shift=0, noise=0, cutout=0)(x)
    assert torch.allclose(identity, x, atol=1e-5)
    big = Augment()(torch.rand(4, 28, 28))
    assert big.shape == (4, 28, 28)


def test_models_train_and_embed():
    torch.manual_seed(0)
    model = SimCLR(ConvEncoder(16, 4), projection_dim=8)
    loss = model.loss(torch.rand(8, 8, 8))
    loss.backward()
    assert torch.isfinite(loss) and model.embed(torch.rand(3, 8, 8)).shape == (3, 16)
    tower = TwoTower(torch.nn.Linear(4, 6), torch.nn.Linear(5, 6))
    assert torch.isfinite(tower.loss((torch.rand(8, 4), torch.rand(8, 5))))
    assert torch.allclose(tower.embed(torch.rand(3, 5), "b").norm(dim=1), torch.ones(3))


def test_linear_probe_on_separable_features():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    x = rng.normal(size=(120, 2)) * 0.1 + np.eye(3)[y][:, :2] * 3
    score = linear_probe(x, y, x, y, labels_per_class=5, seeds=range(3))
    assert score.mean > 0.95
    noise = linear_probe(rng.normal(size=(120, 2)), y, rng.normal(size=(120, 2)), y, 5)
    assert noise.mean < 0.6


def test_bad_input():
    u, v = _emb()
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        info_nce(u, v, temperature=0)
    with pytest.raises(ValueError, match="same shape"):
        nt_xent(u, v[:, :2])
    with pytest.raises(ValueError, match="at least 2 pairs"):
        clip_loss(u[:1], v[:1], 1.0)
    with pytest.raises(ValueError, match="logit_scale"):
        clip_loss(u, v, -1.0)
    with pytest.raises(ValueError, match="NaN"):
        info_nce(u * float("nan"), v)
    with pytest.raises(ValueError, match="float images"):
        Augment()(torch.zeros(2, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="labels_per_class"):
        linear_probe(np.zeros((6, 2)), [0, 0, 0, 1, 1, 1], np.zeros((2, 2)), [0, 1], 4)


@pytest.mark.parametrize(
    "shape", [(6, 5, 8, 8), (3, 4, 28, 28), (3, 4, 12, 20), (2, 3, 30, 30), (2, 3, 5, 7)]
)
def test_encoder_pool_is_adaptive_average_pooling(shape):
    # The encoder's pooling against torch's adaptive average pooling, forward and
    # backward: bit for bit at the digits' 8x8, up to round-off elsewhere (sizes that do
    # not divide by 4 take torch's own path).
    from selfsup.models.contrastive import _GridPool

    x = torch.randn(shape, generator=torch.Generator().manual_seed(0), requires_grad=True)
    grad = torch.randn(*shape[:2], 4, 4, generator=torch.Generator().manual_seed(1))
    want = torch.nn.functional.adaptive_avg_pool2d(x, 4)
    (want_grad,) = torch.autograd.grad(want, x, grad)
    got = _GridPool(4)(x)
    (got_grad,) = torch.autograd.grad(got, x, grad)
    assert got.shape == want.shape
    if shape[-2:] in ((8, 8), (5, 7), (30, 30)):
        assert torch.equal(got, want) and torch.equal(got_grad, want_grad)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    torch.testing.assert_close(got_grad, want_grad, rtol=0, atol=1e-7)
