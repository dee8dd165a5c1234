"""Graded: selfsup.divergences.gaussian_kl (chapter: distances)."""

import numpy as np
import pytest
from scipy import stats

from selfsup.divergences import gaussian_kl


def _random_spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T + d * np.eye(d)


@pytest.mark.parametrize("d", [1, 3, 6])
def test_gaussian_kl_matches_monte_carlo(d):
    """E_p[log p - log q] over 200k samples of p (scipy's densities) agrees to 1%."""
    rng = np.random.default_rng(d)
    mu0, mu1 = rng.normal(size=d), rng.normal(size=d)
    cov0, cov1 = _random_spd(rng, d), _random_spd(rng, d)
    p, q = stats.multivariate_normal(mu0, cov0), stats.multivariate_normal(mu1, cov1)
    x = p.rvs(200_000, random_state=rng).reshape(-1, d)
    mc = np.mean(p.logpdf(x) - q.logpdf(x))
    assert gaussian_kl(mu0, cov0, mu1, cov1) == pytest.approx(mc, rel=0.01, abs=2e-3)


def test_gaussian_kl_one_dimensional_formula_and_zero():
    """log(s1/s0) + (s0^2 + (m0-m1)^2) / (2 s1^2) - 1/2, and KL(p||p) = 0."""
    m0, s0, m1, s1 = 0.3, 0.7, -1.1, 1.9
    exact = np.log(s1 / s0) + (s0**2 + (m0 - m1) ** 2) / (2 * s1**2) - 0.5
    assert gaussian_kl(m0, s0**2, m1, s1**2) == pytest.approx(exact, rel=1e-10)
    assert gaussian_kl(m0, s0**2, m0, s0**2) == pytest.approx(0.0, abs=1e-12)


def test_gaussian_kl_diagonal_is_a_sum_over_dimensions():
    rng = np.random.default_rng(0)
    m0, m1 = rng.normal(size=4), rng.normal(size=4)
    v0, v1 = rng.uniform(0.2, 3, 4), rng.uniform(0.2, 3, 4)
    per_dim = sum(gaussian_kl(m0[i], v0[i], m1[i], v1[i]) for i in range(4))
    assert gaussian_kl(m0, v0, m1, v1) == pytest.approx(per_dim, rel=1e-10)
    assert gaussian_kl(m0, np.diag(v0), m1, np.diag(v1)) == pytest.approx(per_dim, rel=1e-10)
