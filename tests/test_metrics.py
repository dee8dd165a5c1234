"""selfsup.metrics against closed forms, scipy and torchmetrics (custom features)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import linalg
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from selfsup import metrics
from selfsup import metrics as M


class Identity(torch.nn.Module):
    """A custom torchmetrics feature extractor: the inputs are already features."""

    def __init__(self, num_features):
        super().__init__()
        self.num_features = num_features

    def forward(self, x):
        return x.double()


def _gaussian_feats(n, f, shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, f)) @ rng.normal(size=(f, f)) * 0.5 + shift


def test_inception_score_extremes():
    assert M.inception_score(np.full((50, 10), 0.1), splits=5).mean == pytest.approx(1.0)
    one_hot = np.eye(10)[np.arange(100) % 10]
    assert M.inception_score(one_hot, splits=1).mean == pytest.approx(10.0)
    # log IS = I(x; y) = H(p(y)) - E H(p(y|x))
    p = np.random.default_rng(0).dirichlet(np.ones(4) * 0.3, size=200)
    marginal = p.mean(0)
    mi = -(marginal * np.log(marginal)).sum() + (p * np.log(np.clip(p, 1e-300, None))).sum(1).mean()
    assert math.log(M.inception_score(p, splits=1).mean) == pytest.approx(mi, rel=1e-9)


def test_inception_score_matches_torchmetrics():
    logits = torch.randn(300, 10, dtype=torch.float64) * 3
    ours = M.inception_score(logits, splits=1, from_logits=True).mean
    tm = InceptionScore(feature=Identity(10), splits=1)
    tm.update(logits)
    assert ours == pytest.approx(float(tm.compute()[0]), rel=1e-4)


def test_fid_zero_for_identical_sets_and_matches_scipy():
    a, b = _gaussian_feats(400, 6), _gaussian_feats(300, 6, shift=0.4, seed=1)
    assert M.fid(a, a) == pytest.approx(0.0, abs=1e-8)
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(ca @ cb).real
    expected = np.sum((mu_a - mu_b) ** 2) + np.trace(ca + cb - 2 * root)
    assert M.fid(a, b) == pytest.approx(expected, rel=1e-6)
    assert M.fid(a, b) == pytest.approx(M.fid(b, a), rel=1e-9)


def test_fid_matches_torchmetrics():
    a, b = _gaussian_feats(500, 8), _gaussian_feats(500, 8, shift=0.3, seed=2)
    tm = FrechetInceptionDistance(feature=Identity(8))
    tm.update(torch.tensor(a), real=True)
    tm.update(torch.tensor(b), real=False)
    assert M.fid(a, b) == pytest.approx(float(tm.compute()), rel=1e-4)


def test_kid_matches_torchmetrics_on_full_sets():
    a, b = _gaussian_feats(200, 5), _gaussian_feats(200, 5, shift=0.5, seed=3)
    tm = KernelInceptionDistance(feature=Identity(5), subsets=1, subset_size=200)
    tm.update(torch.tensor(a), real=True)
    tm.update(torch.tensor(b), real=False)
    ours = M.kid(a, b, subsets=1, subset_size=200)
    assert ours.mean == pytest.approx(float(tm.compute()[0]), rel=1e-4)
    # unbiased: zero on average for two samples of the same distribution
    rng = np.random.default_rng(4)
    values = [
        M.kid(rng.normal(size=(100, 5)), rng.normal(size=(100, 5)), subsets=1).mean
        for _ in range(200)
    ]
    assert abs(np.mean(values)) < 3 * np.std(values) / np.sqrt(200)


def test_precision_recall_on_hand_made_sets():
    grid = np.stack(np.meshgrid(np.arange(10.0), np.arange(10.0)), -1).reshape(-1, 2)
    half = grid[grid[:, 0] < 5]
    # generated points cover half of the real manifold, all of them realistic
    pr = M.precision_recall(grid, half, k=3)
    assert pr.precision == 1.0 and 0.45 <= pr.recall <= 0.6
    # generated points far away: neither precise nor covering
    far = M.precision_recall(grid, grid + 100.0, k=3)
    assert far == (0.0, 0.0)
    assert M.precision_recall(grid, grid, k=3) == (1.0, 1.0)


def test_classification_accuracy_score_and_memorisation():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    train_x, train_y, test_x, test_y = x[:1000], y[:1000], x[1000:], y[1000:]
    real = M.classification_accuracy_score(train_x, train_y, test_x, test_y)
    shuffled = M.classification_accuracy_score(
        train_x, np.random.default_rng(0).permutation(train_y), test_x, test_y
    )
    assert real > 0.9 and shuffled < 0.25
    copied = M.memorisation(train_x[:200], train_x, test_x)
    assert copied.sample_to_train == 0 and copied.ratio == 0 and copied.copies == 1.0
    honest = M.memorisation(test_x[:300], train_x, test_x[300:])
    assert 0.8 < honest.ratio < 1.25 and honest.copies < 0.05


def test_perplexity_and_units():
    assert M.perplexity(np.full(100, math.log(50))) == pytest.approx(50)
    assert M.bits_per_dim(torch.full((4,), 64 * math.log(2)), 64) == pytest.approx(1.0)
    assert M.nats_to_bits(math.log(2)) == pytest.approx(1.0)


def test_bad_input():
    with pytest.raises(ValueError, match="must be probabilities"):
        M.inception_score(np.full((5, 3), 0.5))
    with pytest.raises(ValueError, match="splits must be"):
        M.inception_score(np.full((5, 2), 0.5), splits=9)
    with pytest.raises(ValueError, match="have 3 and 4 features"):
        M.fid(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="NaN"):
        M.fid(np.full((5, 3), np.nan), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="k must be"):
        M.precision_recall(np.zeros((3, 2)), np.zeros((3, 2)), k=5)
    with pytest.raises(ValueError, match="at least two classes"):
        M.classification_accuracy_score(np.zeros((4, 2)), [1, 1, 1, 1], np.zeros((2, 2)), [0, 1])
    with pytest.raises(ValueError, match="must be >= 0"):
        M.perplexity([-1.0])


def test_nearest_neighbour_metrics_in_blocks_match_brute_force(monkeypatch):
    """memorisation and precision_recall compute distances in blocks of rows (bounded
    memory); with blocks of a few rows they agree with scipy's full distance matrix."""
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(0)
    real, fake, train = (
        rng.normal(size=(40, 5)),
        rng.normal(size=(30, 5)) + 0.3,
        rng.normal(size=(50, 5)),
    )
    k = 3
    d_rr, d_ff, d_fr = cdist(real, real), cdist(fake, fake), cdist(fake, real)
    r_real, r_fake = np.sort(d_rr, 1)[:, k], np.sort(d_ff, 1)[:, k]
    precision = (d_fr <= r_real[None]).any(1).mean()
    recall = (d_fr.T <= r_fake[None]).any(1).mean()
    ds, dt = cdist(fake, train).min(1), cdist(real, train).min(1)
    for block in (metrics._BLOCK, 7 * 50):  # the default, and blocks of 7 rows
        monkeypatch.setattr(metrics, "_BLOCK", block)
        pr = metrics.precision_recall(real, fake, k=k)
        assert pr.precision == pytest.approx(precision) and pr.recall == pytest.approx(recall)
        mem = metrics.memorisation(fake, train, real)
        assert mem.sample_to_train == pytest.approx(np.median(ds))
        assert mem.test_to_train == pytest.approx(np.median(dt))
        np.testing.assert_allclose(metrics.nearest_distance(fake, train), ds, rtol=1e-9)
    with pytest.raises(ValueError, match="same number of features"):
        metrics.nearest_distance(fake, train[:, :4])
