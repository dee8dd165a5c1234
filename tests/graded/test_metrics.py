"""Graded: selfsup.metrics.fid (chapter: metrics) and precision_recall (chapter: synthesis)."""

import numpy as np
import pytest
from scipy import linalg
from sklearn.neighbors import NearestNeighbors

from selfsup.metrics import fid, precision_recall


def _fid_scipy(a, b):
    mu_a, mu_b = a.mean(0), b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(sa @ sb).real
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(sa + sb - 2 * root))


@pytest.mark.parametrize("d", [2, 16])
def test_fid_matches_scipy_sqrtm(d):
    rng = np.random.default_rng(d)
    a = rng.normal(size=(500, d))
    b = rng.normal(size=(400, d)) @ rng.normal(size=(d, d)) * 0.5 + 1.0
    assert fid(a, b) == pytest.approx(_fid_scipy(a, b), rel=1e-6)


def test_fid_of_gaussians_in_closed_form():
    """Two exact Gaussian samples' moments: shifted mean, scaled covariance."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20_000, 3))
    assert fid(a, a) == pytest.approx(0.0, abs=1e-8)
    assert fid(a, a + 2.0) == pytest.approx(12.0, rel=1e-6)  # ||2 * 1||^2 over 3 dims
    # tr(S + 9 S - 2 (S^1/2 9 S S^1/2)^1/2) = 4 tr S, plus ||mu - 3 mu||^2.
    want = 4 * np.trace(np.cov(a, rowvar=False)) + 4 * np.sum(a.mean(0) ** 2)
    assert fid(a, 3 * a) == pytest.approx(want, rel=1e-6)


def _pr_brute_force(real, fake, k):
    def radius(x):
        dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
        return dist[:, k]

    r_real, r_fake = radius(real), radius(fake)
    d = np.linalg.norm(fake[:, None] - real[None], axis=-1)
    precision = np.mean([(d[i] <= r_real).any() for i in range(len(fake))])
    recall = np.mean([(d[:, j] <= r_fake).any() for j in range(len(real))])
    return precision, recall


@pytest.mark.parametrize("k", [1, 3, 5])
def test_precision_recall_matches_nearest_neighbours(k):
    rng = np.random.default_rng(k)
    real = rng.normal(size=(300, 4))
    fake = np.concatenate([rng.normal(size=(150, 4)) * 0.3, rng.normal(size=(100, 4)) + 4])
    got = precision_recall(real, fake, k=k)
    want = _pr_brute_force(real, fake, k)
    assert got.precision == pytest.approx(want[0])
    assert got.recall == pytest.approx(want[1])
    assert got.precision < 0.8 and got.recall < 0.8  # off-support fakes, collapsed fakes
