"""selfsup.models.baselines against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import special, stats

from selfsup.models.baselines import GaussianMixture, KernelDensity, Memorizer, UniformDensity


def test_single_gaussian_is_the_regularised_mle():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 3)) @ rng.normal(size=(3, 3))
    model = GaussianMixture(1, reg_covar=0.3).fit(x)
    cov = np.cov(x.T, bias=True) + 0.3 * np.eye(3)
    expected = stats.multivariate_normal(x.mean(0), cov).logpdf(x[:10])
    assert np.allclose(model.log_prob(x[:10]).numpy(), expected, atol=1e-6)
    assert model.sample(7).shape == (7, 3)


def test_kde_against_the_formula():
    rng = np.random.default_rng(1)
    train, test, h = rng.normal(size=(50, 2)), rng.normal(size=(5, 2)), 0.7
    logs = (
        stats.multivariate_normal(np.zeros(2), h**2 * np.eye(2))
        .logpdf((test[:, None, :] - train[None]).reshape(-1, 2))
        .reshape(5, 50)
    )
    expected = special.logsumexp(logs, axis=1) - math.log(50)
    assert np.allclose(KernelDensity(h).fit(train).log_prob(test).numpy(), expected, atol=1e-8)


def test_memorizer_and_uniform():
    x = torch.tensor([[[0, 1]], [[0, 1]], [[2, 3]], [[4, 4]]])  # shape (4, 1, 2), one duplicate
    mem = Memorizer().fit(x)
    logp = mem.log_prob(torch.tensor([[[0, 1]], [[2, 3]], [[9, 9]]])).numpy()
    assert np.allclose(logp[:2], np.log([2 / 4, 1 / 4])) and logp[2] == -np.inf
    samples = mem.sample(20)
    assert samples.shape == (20, 1, 2)
    assert all(tuple(s.flatten().tolist()) in {(0, 1), (2, 3), (4, 4)} for s in samples.long())
    uni = UniformDensity(17).fit(torch.zeros(3, 8, 8))
    assert float(uni.log_prob(torch.full((1, 8, 8), 16.5))[0]) == pytest.approx(-64 * math.log(17))
    assert float(uni.log_prob(torch.full((1, 8, 8), 17.0))[0]) == -math.inf


def test_bad_input():
    with pytest.raises(ValueError, match="not fitted"):
        Memorizer().log_prob(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="dimensions per example"):
        UniformDensity(4).fit(torch.zeros(2, 3)).log_prob(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="bandwidth must be a positive number"):
        KernelDensity(0)
    with pytest.raises(ValueError, match="x contains NaN"):
        GaussianMixture(1).fit(np.full((5, 2), np.nan))


def test_class_conditional_mixture_and_labelled_samples():
    from selfsup.models.baselines import ClassConditional

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-3, 1, (300, 2)), rng.normal(3, 1, (100, 2))])
    y = np.repeat([0, 1], [300, 100])
    model = ClassConditional(lambda xc: GaussianMixture(1).fit(xc)).fit(torch.tensor(x), y)
    # log p(x) = log(0.75 N(x; m0, S0) + 0.25 N(x; m1, S1)), checked with scipy
    parts = [
        np.log(w)
        + stats.multivariate_normal(x[y == c].mean(0), np.cov(x[y == c].T, bias=True)).logpdf(x[:5])
        for c, w in [(0, 0.75), (1, 0.25)]
    ]
    assert np.allclose(model.log_prob(x[:5]).numpy(), np.logaddexp(*parts), atol=1e-5)
    samples, labels = model.sample_with_labels(400, generator=torch.Generator().manual_seed(1))
    assert samples.shape == (400, 2) and 0.65 < float((labels == 0).float().mean()) < 0.85
    assert float(samples[labels == 1, 0].mean()) > 2


def _fitted_gmm_2d():
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [rng.normal([0, 0], [1.0, 0.5], (400, 2)), rng.normal([3, 2], [0.5, 1.0], (400, 2))]
    )
    x[:, 1] += 0.7 * x[:, 0]  # correlated, so conditioning matters
    return GaussianMixture(2, seed=0).fit(x), x


def test_gmm_conditional_log_prob_matches_numerical_integration():
    """p(x2 | x1) = p(x1, x2) / integral p(x1, t) dt, integrated by scipy.integrate.quad."""
    from scipy.integrate import quad

    gmm, x = _fitted_gmm_2d()
    known = np.array([True, False])
    got = gmm.conditional_log_prob(x[:5], known).numpy()
    for row, value in zip(x[:5], got, strict=True):

        def joint(t, row=row):
            return float(np.exp(gmm.model.score_samples([[row[0], t]])[0]))

        marginal, _ = quad(joint, -30, 30, points=[row[1]], limit=200)
        assert value == pytest.approx(np.log(joint(row[1]) / marginal), abs=1e-6)


def test_gmm_completion_is_the_conditional_mean():
    """E[x2 | x1] by quadrature against the closed-form mixture of Gaussian conditionals."""
    from scipy.integrate import quad

    gmm, x = _fitted_gmm_2d()
    known = np.array([True, False])
    completed = gmm.complete(x[:4], known).numpy()
    np.testing.assert_array_equal(completed[:, 0], x[:4, 0])
    for row, filled in zip(x[:4], completed, strict=True):

        def dens(t, row=row):
            return float(np.exp(gmm.model.score_samples([[row[0], t]])[0]))

        mass, _ = quad(dens, -30, 30, limit=200)
        mean, _ = quad(lambda t, d=dens: t * d(t), -30, 30, limit=200)
        assert filled[1] == pytest.approx(mean / mass, abs=1e-6)


def test_gmm_conditionals_reject_bad_masks():
    gmm, x = _fitted_gmm_2d()
    with pytest.raises(ValueError, match="known_mask must have shape"):
        gmm.conditional_log_prob(x, np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="some positions known and some unknown"):
        gmm.complete(x, np.ones(2, dtype=bool))


def test_kde_exact_in_high_dimension():
    """The torch KDE against the formula with direct differences (scipy's logsumexp),
    at MNIST's size of example (784 dimensions, grey levels 0..255), far in the tail
    where every kernel underflows in float64 alone. scikit-learn's tree search is not
    the oracle there: on these points it returns log densities off by 10^5 nats."""
    from sklearn.neighbors import KernelDensity as SkKDE

    rng = np.random.default_rng(2)
    train = rng.uniform(0, 256, size=(300, 784))
    test = np.vstack([rng.uniform(0, 256, size=(20, 784)), train[:5] + 0.1, train[:1] + 5000])
    for h in (5.0, 40.0):
        ours = KernelDensity(h).fit(train)
        sq = ((test[:, None, :] - train[None]) ** 2).sum(-1)
        expected = (
            special.logsumexp(-sq / (2 * h * h), axis=1)
            - math.log(len(train))
            - 392 * math.log(2 * math.pi * h * h)
        )
        got = ours.log_prob(test).numpy()
        assert np.all(np.isfinite(got))
        assert np.allclose(got, expected, rtol=1e-10, atol=1e-6)
        # the same samples as scikit-learn's for the same seed
        assert np.array_equal(ours._draw(7, 3), SkKDE(bandwidth=h).fit(train).sample(7, 3))


def test_kde_on_the_stand_in_accelerator_matches_the_cpu():
    from selfsup import devicecheck

    rng = np.random.default_rng(3)
    train, test = rng.normal(size=(2000, 5)), rng.normal(size=(1500, 5))  # two row blocks
    expected = KernelDensity(0.5, device="cpu").fit(train).log_prob(test)
    with devicecheck.emulate() as device:
        got = KernelDensity(0.5, device=device).fit(train).log_prob(test)
    assert got.device.type == "cpu" and torch.equal(got, expected)
