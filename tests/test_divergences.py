"""selfsup.divergences against independent oracles (SciPy, brute force, Monte
Carlo, numerical integration), property tests, and bad input."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import integrate, spatial, stats

from selfsup import divergences as D

# ----------------------------------------------------------------- strategies


@st.composite
def distributions(draw, k=None, min_k=2, max_k=8, allow_zeros=True):
    """A discrete distribution; with allow_zeros some outcomes get probability 0."""
    k = k if k is not None else draw(st.integers(min_k, max_k))
    # Weights are 0 or at least 1e-6: SciPy's oracles overflow on subnormal numbers.
    positive = st.floats(1e-6 if allow_zeros else 1e-3, 1.0)
    w = draw(
        arrays(
            np.float64, k, elements=st.one_of(st.just(0.0), positive) if allow_zeros else positive
        )
    )
    assume(w.sum() > 1e-3)
    return w / w.sum()


@st.composite
def pairs(draw, allow_zeros=True):
    k = draw(st.integers(2, 8))
    return draw(distributions(k=k, allow_zeros=allow_zeros)), draw(
        distributions(k=k, allow_zeros=allow_zeros)
    )


@st.composite
def triples(draw):
    k = draw(st.integers(2, 8))
    return tuple(draw(distributions(k=k)) for _ in range(3))


# ------------------------------------------------------------ total variation


@given(pairs())
def test_tv_equals_best_test_by_brute_force(pq):
    p, q = pq
    k = len(p)
    best = max(
        p[list(a)].sum() - q[list(a)].sum()
        for r in range(k + 1)
        for a in itertools.combinations(range(k), r)
    )
    assert D.total_variation(p, q) == pytest.approx(best, abs=1e-12)
    assert D.best_test(p, q).advantage == pytest.approx(best, abs=1e-12)


@given(pairs())
def test_tv_symmetric_and_bounded(pq):
    p, q = pq
    tv = D.total_variation(p, q)
    assert 0 <= tv <= 1
    assert tv == pytest.approx(D.total_variation(q, p), abs=1e-15)


@given(triples())
def test_tv_triangle_inequality(pqr):
    p, q, r = pqr
    assert D.total_variation(p, r) <= D.total_variation(p, q) + D.total_variation(q, r) + 1e-12


def test_tv_batched_and_torch_input():
    p = np.array([[0.5, 0.5], [1.0, 0.0]])
    q = np.array([0.5, 0.5])
    assert D.total_variation(p, q) == pytest.approx([0.0, 0.5])
    assert D.total_variation(torch.tensor([0.2, 0.8]), [0.8, 0.2]) == pytest.approx(0.6)


@pytest.mark.parametrize(
    "mu0, s0, mu1, s1",
    [(0, 1, 0.3, 1), (0, 1, 0, 0.1), (0, 1, 1, 2), (1, 0.5, -1, 3), (0, 1, 0, 1)],
)
def test_gaussian_tv_against_numerical_integration(mu0, s0, mu1, s1):
    def gap(x):
        return abs(stats.norm.pdf(x, mu0, s0) - stats.norm.pdf(x, mu1, s1)) / 2

    expected, _ = integrate.quad(gap, -60, 60, points=[mu0, mu1], limit=500)
    assert D.gaussian_tv(mu0, s0, mu1, s1) == pytest.approx(expected, abs=1e-7)


# ---------------------------------------------------------------------- KL / JS


@given(pairs())
def test_kl_matches_scipy_entropy(pq):
    p, q = pq
    expected = stats.entropy(p, q)
    assert D.kl_divergence(p, q) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert D.kl_divergence(p, q, base=2) == pytest.approx(
        stats.entropy(p, q, base=2), rel=1e-9, abs=1e-12
    )


def test_kl_infinite_where_q_has_no_mass():
    assert D.kl_divergence([0.5, 0.5], [1.0, 0.0]) == math.inf
    # ... but not the other way round: 0 log 0 = 0.
    assert D.kl_divergence([1.0, 0.0], [0.5, 0.5]) == pytest.approx(math.log(2))


@given(pairs())
def test_gibbs_inequality(pq):
    p, q = pq
    assert D.kl_divergence(p, q) >= 0
    assert D.kl_divergence(p, p) == pytest.approx(0, abs=1e-12)


def _scipy_js(p, q):
    """SciPy's JS distance, squared (it takes sqrt of a rounding-negative 0 when p = q)."""
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(spatial.distance.jensenshannon(p, q)) ** 2


@given(pairs())
def test_js_matches_scipy_distance_squared(pq):
    p, q = pq
    # scipy returns the Jensen-Shannon *distance*, the square root.
    expected = _scipy_js(p, q)
    assert D.js_divergence(p, q) == pytest.approx(expected, rel=1e-7, abs=1e-12)
    assert D.js_divergence(p, q) == pytest.approx(D.js_divergence(q, p), abs=1e-15)
    assert D.js_divergence(p, q) <= math.log(2) + 1e-12


@given(pairs())
def test_pinsker_inequality(pq):
    p, q = pq
    assert D.total_variation(p, q) <= math.sqrt(D.kl_divergence(p, q) / 2) + 1e-12


# ---------------------------------------------------------------- f-divergences


@given(pairs())
@settings(max_examples=200)
def test_named_generators_reproduce_the_closed_forms(pq):
    p, q = pq
    assert D.f_divergence(p, q, "kl") == pytest.approx(stats.entropy(p, q), rel=1e-9, abs=1e-12)
    assert D.f_divergence(p, q, "reverse_kl") == pytest.approx(
        stats.entropy(q, p), rel=1e-9, abs=1e-12
    )
    assert D.f_divergence(p, q, "tv") == pytest.approx(0.5 * np.abs(p - q).sum(), abs=1e-12)
    hellinger = 0.5 * ((np.sqrt(p) - np.sqrt(q)) ** 2).sum()
    assert D.f_divergence(p, q, "hellinger") == pytest.approx(hellinger, abs=1e-12)
    js = _scipy_js(p, q)
    assert D.f_divergence(p, q, "js") == pytest.approx(js, rel=1e-7, abs=1e-12)
    with np.errstate(divide="ignore"):
        chi2 = np.inf if np.any((q == 0) & (p > 0)) else (((p - q) ** 2)[q > 0] / q[q > 0]).sum()
    assert D.f_divergence(p, q, "chi2") == pytest.approx(chi2, rel=1e-9, abs=1e-12)


@given(pairs(allow_zeros=False))
def test_callable_generator_matches_named(pq):
    p, q = pq
    assert D.f_divergence(p, q, lambda t: t * np.log(t)) == pytest.approx(D.kl_divergence(p, q))


def test_callable_generator_rejects_missing_support_and_bad_f():
    with pytest.raises(ValueError, match="q is 0"):
        D.f_divergence([0.5, 0.5], [1.0, 0.0], lambda t: t * np.log(t))
    with pytest.raises(ValueError, match=r"f\(1\) = 0"):
        D.f_divergence([0.5, 0.5], [0.5, 0.5], lambda t: t**2)
    with pytest.raises(ValueError, match="named generator"):
        D.f_divergence([0.5, 0.5], [0.5, 0.5], "wasserstein")


# ---------------------------------------------------------------- Gaussian KL


def _random_spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T + d * np.eye(d) * 0.1


@pytest.mark.parametrize("d", [1, 3, 6])
def test_gaussian_kl_against_monte_carlo(d):
    rng = np.random.default_rng(d)
    mu0, mu1 = rng.normal(size=d), rng.normal(size=d)
    s0, s1 = _random_spd(rng, d), _random_spd(rng, d)
    x = rng.multivariate_normal(mu0, s0, size=200_000)
    logp = stats.multivariate_normal(mu0, s0).logpdf(x)
    logq = stats.multivariate_normal(mu1, s1).logpdf(x)
    mc = D.kl_from_samples(logp, logq)
    assert D.gaussian_kl(mu0, s0, mu1, s1) == pytest.approx(mc.value, abs=5 * mc.stderr)


def test_gaussian_kl_forms_agree():
    # scalar variance, diagonal vector and full matrix describe the same Gaussians
    assert D.gaussian_kl(0.0, 1.0, -0.1, 1.0) == pytest.approx(0.1**2 / 2)
    full = D.gaussian_kl(np.zeros(3), np.diag([1.0, 2, 3]), np.ones(3), np.diag([2.0, 2, 2]))
    diag = D.gaussian_kl(np.zeros(3), [1.0, 2, 3], np.ones(3), 2.0)
    assert full == pytest.approx(diag)
    # The trace formula of the chapter.
    v = np.diag([0.5, 2.0, 4.0])
    formula = 0.5 * (np.trace(np.linalg.inv(v)) - 3 + np.log(np.linalg.det(v)))
    assert D.gaussian_kl(np.zeros(3), np.eye(3), np.zeros(3), v) == pytest.approx(formula)


def test_gaussian_kl_rejects_bad_covariances():
    with pytest.raises(ValueError, match="cov1 must be positive definite"):
        D.gaussian_kl(np.zeros(2), np.eye(2), np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="cov0 must be symmetric"):
        D.gaussian_kl(np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="mu0 and mu1"):
        D.gaussian_kl(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="cov0 variances must be positive"):
        D.gaussian_kl(np.zeros(2), [1.0, -1.0], np.zeros(2), np.eye(2))


# ------------------------------------------------------------- from samples


def test_wasserstein_1d_matches_scipy():
    rng = np.random.default_rng(0)
    for n, m in [(100, 100), (137, 59), (1, 2), (500, 3)]:
        x, y = rng.normal(size=max(n, 2)), rng.exponential(size=max(m, 2))
        assert D.wasserstein(x, y) == pytest.approx(stats.wasserstein_distance(x, y), rel=1e-10)


def test_wasserstein_2_equal_sizes_is_sorted_matching():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=300), rng.normal(2, 1, size=300)
    expected = np.sqrt(np.mean((np.sort(x) - np.sort(y)) ** 2))
    assert D.wasserstein(x, y, p=2) == pytest.approx(expected, rel=1e-10)


def test_sliced_wasserstein_of_a_translation():
    # Translating by v moves every projection by <theta, v>:
    # SW_1 = |v| E|theta_1| = |v| 2/pi in 2-D.
    rng = np.random.default_rng(2)
    x = rng.normal(size=(500, 2))
    v = np.array([3.0, 4.0])
    sw = D.wasserstein(x, x + v, n_projections=4000)
    assert sw == pytest.approx(5 * 2 / np.pi, rel=0.02)


def test_mmd_against_closed_form_and_zero_under_null():
    rng = np.random.default_rng(3)
    h, eps = 1.0, 0.8
    exact = 2 * h / np.sqrt(h**2 + 2) * (1 - np.exp(-(eps**2) / (2 * (h**2 + 2))))
    estimates = [D.mmd(rng.normal(size=1000), rng.normal(eps, 1, size=1000), h) for _ in range(20)]
    assert np.mean(estimates) == pytest.approx(exact, abs=4 * np.std(estimates) / np.sqrt(20))
    null = [D.mmd(rng.normal(size=300), rng.normal(size=300)) for _ in range(30)]
    assert abs(np.mean(null)) < 3 * np.std(null) / np.sqrt(30) + 1e-3  # unbiased


def test_mmd_unbiased_estimator_by_brute_force():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(7, 2)), rng.normal(size=(5, 2))

    def k(a, b):
        return np.exp(-np.sum((a - b) ** 2) / (2 * 0.7**2))

    kxx = sum(k(a, b) for i, a in enumerate(x) for j, b in enumerate(x) if i != j) / (7 * 6)
    kyy = sum(k(a, b) for i, a in enumerate(y) for j, b in enumerate(y) if i != j) / (5 * 4)
    kxy = sum(k(a, b) for a in x for b in y) / 35
    assert D.mmd(x, y, bandwidth=0.7) == pytest.approx(kxx + kyy - 2 * kxy, rel=1e-10)


def test_kl_from_samples_and_tv_from_classifier():
    rng = np.random.default_rng(5)
    x = rng.normal(size=50_000)
    est = D.kl_from_samples(stats.norm.logpdf(x), stats.norm.logpdf(x, loc=0.5))
    assert est.value == pytest.approx(0.125, abs=4 * est.stderr)
    assert D.kl_from_samples([0.0, 0.0], [-np.inf, 0.0]).value == math.inf
    # The best test for N(0,1) vs N(1,1) is x < 1/2; its held-out advantage estimates TV.
    tv = D.tv_from_classifier(rng.normal(size=20_000) < 0.5, rng.normal(1, 1, size=20_000) < 0.5)
    assert tv.value == pytest.approx(D.gaussian_tv(0, 1, 1, 1), abs=4 * tv.stderr)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "p, q, message",
    [
        ([0.5, -0.1, 0.6], [0.3, 0.3, 0.4], "p has negative entries"),
        ([0.5, 0.5], [0.3, 0.3], "q does not sum to 1"),
        ([0.5, np.nan, 0.5], [0.3, 0.3, 0.4], "p contains NaN"),
        ([0.5, 0.5], [0.3, 0.3, 0.4], "same number of outcomes"),
        ([], [], "shape"),
        ("abc", [1.0], "numeric"),
    ],
)
@pytest.mark.parametrize(
    "fn", [D.total_variation, D.kl_divergence, D.js_divergence, D.f_divergence, D.best_test]
)
def test_bad_distributions_raise_named_errors(fn, p, q, message):
    with pytest.raises(ValueError, match=message):
        fn(p, q)


def test_bad_samples_raise_named_errors():
    with pytest.raises(ValueError, match="x and y must have the same dimension"):
        D.mmd(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="y contains NaN"):
        D.wasserstein(np.zeros(5), [1.0, np.nan, 2.0])
    with pytest.raises(ValueError, match="bandwidth must be a positive number"):
        D.mmd(np.zeros(5), np.ones(5), bandwidth=0)
    with pytest.raises(ValueError, match="pass bandwidth="):
        D.mmd(np.zeros(5), np.zeros(5))
    with pytest.raises(ValueError, match="p must be a finite number >= 1"):
        D.wasserstein(np.zeros(5), np.ones(5), p=0.5)
    with pytest.raises(ValueError, match="logp and logq must have the same shape"):
        D.kl_from_samples(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="test_q must be decisions"):
        D.tv_from_classifier([1, 0, 1], [2.0, 0.0])
    with pytest.raises(ValueError, match="base must be a positive number other than 1"):
        D.kl_divergence([0.5, 0.5], [0.5, 0.5], base=1)
    with pytest.raises(ValueError, match="sigma1 must be a positive standard deviation"):
        D.gaussian_tv(0, 1, 0, 0)


def test_negative_divergences_are_not_hidden_as_zero():
    """Only round-off is clamped to 0: a generator that is not a valid f (f(1) != 0)
    gives a negative 'divergence', which must raise, not read as 0."""
    import pytest

    from selfsup.divergences import f_divergence, gaussian_kl, kl_divergence

    p, q = [0.2, 0.8], [0.5, 0.5]
    with pytest.raises(ValueError, match="f\\(1\\) = 0"):
        f_divergence(p, q, lambda t: t * 0 - 1.0)  # f = -1: 'divergence' -1
    # round-off of identical distributions is still exactly 0
    r = [1 / 3, 1 / 3, 1 / 3]
    assert kl_divergence(r, r) == 0.0
    assert gaussian_kl([0.1, 0.2], [1.0, 2.0], [0.1, 0.2], [1.0, 2.0]) == 0.0
    with pytest.raises(ValueError, match="mu1 contains inf"):
        gaussian_kl(0.0, 1.0, float("inf"), 1.0)


def test_tv_of_disjoint_supports_is_exactly_one():
    """Summing |p - q| can land a few ulps above 2 when the supports are disjoint; the
    distance stays in [0, 1]: exactly 1 here, as hypothesis once found it 1 + 2e-16."""
    p = np.array([0.0] + [1 / 6] * 6)
    q = np.array([1.0] + [0.0] * 6)
    assert D.total_variation(p, q) == 1.0
    assert D.total_variation(q, p) == 1.0
