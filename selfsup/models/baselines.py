"""Density baselines: the floor every deep model in the book must beat.

All four follow the book's protocol: ``fit(x)`` on training data, ``log_prob(x)``
in **nats** per example, summed over dimensions, and ``sample(n)``. Inputs are
``(B, ...)`` tensors or arrays, flattened per example.

- :class:`UniformDensity`: uniform on ``[0, levels)^d``, ``d log levels`` nats.
- :class:`GaussianMixture`: scikit-learn's EM with full covariances; ``reg_covar``
  adds a constant to every variance (a floor on the noise the model assumes).
- :class:`KernelDensity`: a Gaussian kernel density estimate, the memorizer
  smoothed with bandwidth ``h``.
- :class:`Memorizer`: the lecture's ``U({x_1, ..., x_n})``: the empirical
  distribution of the training set, a *discrete* model. Its training
  log-likelihood is ``-log n`` per example; anything new has probability 0.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import torch

__all__ = ["ClassConditional", "GaussianMixture", "KernelDensity", "Memorizer", "UniformDensity"]


def _flat(x, name: str = "x") -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim < 2 or len(arr) == 0:
        raise ValueError(f"{name} must have shape (B, ...) with B >= 1, got {arr.shape}")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    return arr.reshape(len(arr), -1)


class _Baseline:
    shape: tuple[int, ...] | None = None

    def _remember_shape(self, x) -> np.ndarray:
        self.shape = tuple(np.shape(x)[1:])
        return _flat(x)

    def _check_fitted_input(self, x) -> np.ndarray:
        if self.shape is None:
            raise ValueError(f"{type(self).__name__} is not fitted; call fit(x_train) first")
        flat = _flat(x)
        if flat.shape[1] != math.prod(self.shape):
            raise ValueError(
                f"x has {flat.shape[1]} dimensions per example, the model {math.prod(self.shape)}"
            )
        return flat

    def _shaped(self, flat: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(flat.reshape(len(flat), *self.shape))


class UniformDensity(_Baseline):
    """Uniform on ``[0, levels)^d``: ``log_prob = -d log(levels)`` inside, ``-inf`` outside."""

    def __init__(self, levels: int):
        if not (isinstance(levels, int) and levels >= 2):
            raise ValueError(f"levels must be an int >= 2, got {levels!r}")
        self.levels = levels

    def fit(self, x) -> UniformDensity:
        self._remember_shape(x)
        return self

    def log_prob(self, x) -> torch.Tensor:
        flat = self._check_fitted_input(x)
        inside = ((flat >= 0) & (flat < self.levels)).all(1)
        return torch.as_tensor(np.where(inside, -flat.shape[1] * math.log(self.levels), -np.inf))

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        d = math.prod(self.shape)
        return self._shaped(np.random.default_rng(seed).uniform(0, self.levels, (n, d)))


class _SklearnDensity(_Baseline):
    """A scikit-learn estimator with ``fit`` and ``score_samples`` (log density, nats)."""

    model = None

    def fit(self, x):
        self.model.fit(self._remember_shape(x))
        return self

    def log_prob(self, x) -> torch.Tensor:
        return torch.as_tensor(self.model.score_samples(self._check_fitted_input(x)))


class GaussianMixture(_SklearnDensity):
    """A mixture of ``k`` full-covariance Gaussians fitted by EM (scikit-learn)."""

    def __init__(
        self,
        n_components: int = 1,
        reg_covar: float = 1e-6,
        seed: int | None = None,
        max_iter: int = 500,
    ):
        """``seed`` seeds EM's initialisation; default :func:`selfsup.runtime.derived_seed`
        (0 unless ``runtime.setup`` chose another seed)."""
        from sklearn.mixture import GaussianMixture as _GMM

        from .. import runtime

        if not (isinstance(n_components, int) and n_components >= 1):
            raise ValueError(f"n_components must be a positive int, got {n_components!r}")
        if not reg_covar > 0:
            raise ValueError(f"reg_covar must be positive, got {reg_covar!r}")
        self.model = _GMM(
            n_components,
            covariance_type="full",
            reg_covar=reg_covar,
            random_state=runtime.derived_seed() if seed is None else seed,
            max_iter=max_iter,
        )

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        self.model.random_state = seed
        flat, _ = self.model.sample(n)
        return self._shaped(flat[np.random.default_rng(seed).permutation(n)])

    def _known(self, x, known_mask) -> tuple[np.ndarray, np.ndarray]:
        flat = self._check_fitted_input(x)
        known = np.asarray(known_mask, dtype=bool)
        if known.shape != self.shape:
            raise ValueError(f"known_mask must have shape {self.shape}, got {known.shape}")
        known = known.ravel()
        if known.all() or not known.any():
            raise ValueError("known_mask must mark some positions known and some unknown")
        return flat, known

    def _marginal_terms(self, flat: np.ndarray, known: np.ndarray) -> np.ndarray:
        """``log pi_k + log N(x_known; mu_k, S_k)`` per example and component ``(B, K)``."""
        from scipy.stats import multivariate_normal

        m = self.model
        return np.stack(
            [
                np.log(w)
                + multivariate_normal(mu[known], cov[np.ix_(known, known)]).logpdf(flat[:, known])
                for w, mu, cov in zip(m.weights_, m.means_, m.covariances_, strict=True)
            ],
            axis=1,
        ).reshape(len(flat), -1)

    def conditional_log_prob(self, x, known_mask) -> torch.Tensor:
        """Exact ``log p(x_unknown | x_known)`` per example ``(B,)``, in nats.

        A mixture's marginal on the known positions is the mixture of the components'
        marginals (sub-vectors of the means, sub-blocks of the covariances), so
        ``log p(x_u | x_k) = log p(x) - log p(x_k)``.

        Args:
            x: ``(B, ...)`` shaped like the training data.
            known_mask: boolean, the shape of one example; ``True`` where known.
        """
        from scipy.special import logsumexp

        flat, known = self._known(x, known_mask)
        marginal = logsumexp(self._marginal_terms(flat, known), axis=1)
        return torch.as_tensor(self.model.score_samples(flat) - marginal)

    def complete(self, x, known_mask) -> torch.Tensor:
        """The conditional mean ``E[x_unknown | x_known]`` filled into ``x`` ``(B, ...)``.

        Each component's Gaussian conditional mean
        ``mu_u + S_uk S_kk^-1 (x_k - mu_k)``, weighted by the component's posterior
        responsibility given the known positions. The mean minimises the expected
        squared error, so this is the best completion in that sense.
        """
        from scipy.special import softmax

        flat, known = self._known(x, known_mask)
        resp = softmax(self._marginal_terms(flat, known), axis=1)
        m, unknown = self.model, ~known
        out = flat.astype(np.float64).copy()
        fill = np.zeros((len(flat), unknown.sum()))
        for k, (mu, cov) in enumerate(zip(m.means_, m.covariances_, strict=True)):
            gain = np.linalg.solve(cov[np.ix_(known, known)], cov[np.ix_(known, unknown)])
            fill += resp[:, k : k + 1] * (mu[unknown] + (flat[:, known] - mu[known]) @ gain)
        out[:, unknown] = fill
        return self._shaped(out)


class KernelDensity(_SklearnDensity):
    """Gaussian kernel density estimate with bandwidth ``h`` (scikit-learn)."""

    def __init__(self, bandwidth: float):
        from sklearn.neighbors import KernelDensity as _KDE

        if not (isinstance(bandwidth, (int, float)) and bandwidth > 0):
            raise ValueError(f"bandwidth must be a positive number, got {bandwidth!r}")
        self.bandwidth = float(bandwidth)
        self.model = _KDE(bandwidth=self.bandwidth)

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        return self._shaped(self.model.sample(n, random_state=seed))


class Memorizer(_Baseline):
    """``U({x_1, ..., x_n})``: probability ``count(x) / n`` for a training example, else 0.

    A discrete model: ``log_prob`` compares examples exactly, so use it on the
    integer data, not on dequantized data.
    """

    def fit(self, x) -> Memorizer:
        """Remember the training set ``x`` ``(n, ...)``.

        Sets ``self.n`` (the number of examples), ``self._train`` (the flattened
        examples, ``(n, d)``, used by :meth:`sample`) and whatever table
        :meth:`log_prob` needs to count an example's copies quickly.
        """
        flat = self._remember_shape(x)
        # BEGIN SOLUTION
        rows, counts = np.unique(flat, axis=0, return_counts=True)
        self.n = len(flat)
        self._table = {row.tobytes(): c for row, c in zip(rows, counts, strict=True)}
        self._train = flat
        return self
        # END SOLUTION

    def log_prob(self, x) -> torch.Tensor:
        """``log(count(x) / n)`` per example ``(B,)``, in nats; ``-inf`` for unseen ``x``."""
        flat = self._check_fitted_input(x)
        # BEGIN SOLUTION
        counts = np.array([self._table.get(row.tobytes(), 0) for row in flat], dtype=np.float64)
        with np.errstate(divide="ignore"):
            return torch.as_tensor(np.log(counts / self.n))
        # END SOLUTION

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        idx = np.random.default_rng(seed).integers(0, self.n, n)
        return self._shaped(self._train[idx])


class ClassConditional:
    """One model per class: ``p(x) = sum_y pi_y p(x | y)``, sampled with labels.

    Class-conditional generators are what the classification accuracy score needs
    (labelled samples). ``make_model(x_class)`` returns a *fitted* model with
    ``log_prob`` and ``sample(n, ...)``: a baseline above, or a trained VAE.
    """

    def __init__(self, make_model):
        self.make_model = make_model

    def fit(self, x, y) -> ClassConditional:
        y = torch.as_tensor(y)
        self.classes = torch.unique(y)
        if len(self.classes) < 2:
            raise ValueError("y must contain at least two classes")
        self.log_pi = torch.log(torch.stack([(y == c).double().mean() for c in self.classes]))
        self.models = [self.make_model(x[y == c]) for c in self.classes]
        return self

    def log_prob(self, x) -> torch.Tensor:
        """``log sum_y pi_y p(x|y)`` in nats; a lower bound if the parts give bounds."""
        parts = torch.stack(
            [lp + m.log_prob(x).double() for lp, m in zip(self.log_pi, self.models, strict=True)]
        )
        return torch.logsumexp(parts, 0)

    def sample(self, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` samples and their labels, classes in proportion to ``pi``."""
        pi = self.log_pi.exp().numpy()
        labels = np.random.default_rng(seed).choice(len(self.classes), size=n, p=pi / pi.sum())
        xs, ys = [], []
        for k, model in enumerate(self.models):
            m = int((labels == k).sum())
            if m:
                xs.append(torch.as_tensor(_sample(model, m, seed + k)))
                ys.append(torch.full((m,), int(self.classes[k])))
        return torch.cat(xs), torch.cat(ys)


def _sample(model, n: int, seed: int):
    """``model.sample`` with a seed, whichever way the model takes one."""
    if "seed" in inspect.signature(model.sample).parameters:
        return model.sample(n, seed=seed)
    return model.sample(n, generator=torch.Generator().manual_seed(seed))
