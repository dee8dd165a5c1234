"""Density baselines: the floor every deep model in the book must beat.

All four follow the book's protocol: ``fit(x)`` on training data, ``log_prob(x)``
in **nats** per example, summed over dimensions, and ``sample(n)``. Inputs are
``(B, ...)`` tensors or arrays, flattened per example.

- :class:`UniformDensity`: uniform on ``[0, levels)^d``, ``d log levels`` nats.
- :class:`GaussianMixture`: scikit-learn's EM with full covariances; ``reg_covar``
  adds a constant to every variance (a floor on the noise the model assumes).
- :class:`KernelDensity`: a Gaussian kernel density estimate (exact, in torch), the memorizer
  smoothed with bandwidth ``h``.
- :class:`Memorizer`: the lecture's ``U({x_1, ..., x_n})``: the empirical
  distribution of the training set, a *discrete* model. Its training
  log-likelihood is ``-log n`` per example; anything new has probability 0.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import _checks as checks
from ..saving import Saveable

__all__ = [
    "ClassConditional",
    "Dequantized",
    "GaussianMixture",
    "KernelDensity",
    "Memorizer",
    "UniformDensity",
]


def _flat(x, name: str = "x") -> np.ndarray:
    arr = checks.array(x, name)
    if arr.ndim < 2:
        raise ValueError(
            f"{name} must have shape (B, ...) with a batch axis, got {arr.shape}; "
            f"for one example pass {name}[None]"
        )
    return arr.reshape(len(arr), -1)


def _numpy_seed(generator) -> int:
    """A NumPy seed drawn from a torch ``generator`` (which it advances), or from torch's
    global generator when ``None``: the book's one source of randomness."""
    checks.generator(generator)
    device = generator.device if generator is not None else "cpu"
    return int(torch.randint(2**32 - 1, (), generator=generator, device=device))


class _Baseline(Saveable):
    shape: tuple[int, ...] | None = None
    discrete = False  # a discrete model samples the data's own (integer) values
    _sample_dtype: torch.dtype | None = None

    def _saved_extra(self) -> dict:
        """The fitted state (:func:`selfsup.save`): the shape and what the subclass adds."""
        return {"shape": self.shape, "sample_dtype": self._sample_dtype, **self._fitted_state()}

    def _load_extra(self, extra: dict) -> None:
        shape = extra["shape"]
        self.shape = None if shape is None else tuple(shape)
        self._sample_dtype = extra["sample_dtype"]
        if self.shape is not None:
            self._restore(extra)

    def _fitted_state(self) -> dict:
        return {}

    def _restore(self, state: dict) -> None:
        pass

    def _remember_shape(self, x) -> np.ndarray:
        flat = _flat(x)
        self.shape = tuple(np.shape(x)[1:])
        if self.discrete:  # its samples keep the data's integer type
            dtype = torch.as_tensor(np.asarray(x)[:0]).dtype
            self._sample_dtype = None if dtype.is_floating_point else dtype
        return flat

    def _check_fitted(self) -> None:
        if self.shape is None:
            raise ValueError(f"{type(self).__name__} is not fitted; call fit(x_train) first")

    def _check_fitted_input(self, x) -> np.ndarray:
        self._check_fitted()
        flat = _flat(x)
        if flat.shape[1] != math.prod(self.shape):
            raise ValueError(
                f"x has {flat.shape[1]} dimensions per example, the model {math.prod(self.shape)}"
            )
        return flat

    def _shaped(self, flat: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(flat.reshape(len(flat), *self.shape))

    def _draw(self, n: int, seed: int) -> np.ndarray:  # (n, d); n may be 0
        raise NotImplementedError

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples ``(n, *shape)``: float64 for a continuous density, the training
        data's values for the memorizer. The NumPy draws are seeded from ``generator``
        (default: torch's global generator); ``n = 0`` gives an empty batch."""
        n = checks.sample_count(n)
        self._check_fitted()
        rng_seed = _numpy_seed(generator)
        out = self._shaped(self._draw(n, rng_seed))
        return out if self._sample_dtype is None else out.to(self._sample_dtype)


class UniformDensity(_Baseline):
    """Uniform on ``[0, levels)^d``: ``log_prob = -d log(levels)`` inside, ``-inf`` outside."""

    def __init__(self, levels: int):
        self.levels = checks.integer(levels, "levels", low=2)

    def fit(self, x) -> UniformDensity:
        self._remember_shape(x)
        return self

    def log_prob(self, x, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``-d log(levels)`` nats for each example ``(B, ...)`` inside the cube, ``-inf``
        outside; ``(B,)`` float64 (``generator`` accepted for the protocol: exact)."""
        checks.generator(generator)
        flat = self._check_fitted_input(x)
        inside = ((flat >= 0) & (flat < self.levels)).all(1)
        return torch.as_tensor(np.where(inside, -flat.shape[1] * math.log(self.levels), -np.inf))

    def _draw(self, n: int, seed: int) -> np.ndarray:
        d = math.prod(self.shape)
        return np.random.default_rng(seed).uniform(0, self.levels, (n, d))


class _SklearnDensity(_Baseline):
    """A scikit-learn estimator with ``fit`` and ``score_samples`` (log density, nats)."""

    model = None

    def fit(self, x):
        flat = _flat(x)
        needed = getattr(self.model, "n_components", 1)
        if len(flat) < needed:
            raise ValueError(
                f"x has {len(flat)} examples, fewer than n_components={needed}; "
                "pass more data or fewer components"
            )
        self.model.fit(flat)
        self.shape = tuple(np.shape(x)[1:])
        return self

    def log_prob(self, x, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """The exact log density of each example ``(B, ...)``, ``(B,)`` float64 nats
        (``generator`` accepted for the protocol: nothing is random)."""
        checks.generator(generator)
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

        n_components = checks.integer(n_components, "n_components")
        reg_covar = checks.number(reg_covar, "reg_covar", low=0, low_open=True)
        max_iter = checks.integer(max_iter, "max_iter")
        seed = runtime.derived_seed() if seed is None else checks.integer(seed, "seed", low=0)
        self.model = _GMM(
            n_components,
            covariance_type="full",
            reg_covar=reg_covar,
            random_state=seed,
            max_iter=max_iter,
        )

    #: scikit-learn's fitted attributes, stored by :func:`selfsup.save`
    _FITTED = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_",
               "converged_", "n_iter_", "lower_bound_", "n_features_in_")  # fmt: skip

    def _fitted_state(self) -> dict:
        if self.shape is None:
            return {}
        return {k: getattr(self.model, k) for k in self._FITTED if hasattr(self.model, k)}

    def _restore(self, state: dict) -> None:
        for k in self._FITTED:
            if k in state:
                setattr(self.model, k, state[k])

    def _draw(self, n: int, seed: int) -> np.ndarray:
        if n == 0:
            return np.zeros((0, self.model.means_.shape[1]))
        self.model.random_state = seed
        flat, _ = self.model.sample(n)
        return flat[np.random.default_rng(seed).permutation(n)]

    def _known(self, x, known_mask) -> tuple[np.ndarray, np.ndarray]:
        flat = self._check_fitted_input(x)
        known = checks.known_mask(known_mask, self.shape).numpy().ravel()
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

    def conditional_log_prob(
        self, x, known_mask, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Exact ``log p(x_unknown | x_known)`` per example ``(B,)``, in nats
        (``generator``, accepted as by every conditional density, is unused).

        A mixture's marginal on the known positions is the mixture of the components'
        marginals (sub-vectors of the means, sub-blocks of the covariances), so
        ``log p(x_u | x_k) = log p(x) - log p(x_k)``.

        Args:
            x: ``(B, ...)`` shaped like the training data.
            known_mask: boolean, the shape of one example; ``True`` where known.
        """
        from scipy.special import logsumexp

        checks.generator(generator)
        flat, known = self._known(x, known_mask)
        marginal = logsumexp(self._marginal_terms(flat, known), axis=1)
        return torch.as_tensor(self.model.score_samples(flat) - marginal)

    def complete(self, x, known_mask, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """The conditional mean ``E[x_unknown | x_known]`` filled into ``x`` ``(B, ...)``
        (deterministic: ``generator``, accepted as by every conditional model, is unused).

        Each component's Gaussian conditional mean
        ``mu_u + S_uk S_kk^-1 (x_k - mu_k)``, weighted by the component's posterior
        responsibility given the known positions. The mean minimises the expected
        squared error, so this is the best completion in that sense.
        """
        from scipy.special import softmax

        checks.generator(generator)
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


class KernelDensity(_Baseline):
    """Gaussian kernel density estimate with bandwidth ``h``: the memorizer smoothed.

    ``log q(x) = logsumexp_j(-|x - x_j|^2 / 2h^2) - log n - (d/2) log(2 pi h^2)``, exact
    (no tree, no tolerance), in float64 on ``device`` (default
    :func:`selfsup.runtime.device`; Apple's MPS has no float64, so the CPU there), in
    blocks of rows. On 784-dimensional MNIST it is one matrix product per block, where
    scikit-learn's tree search takes over a minute per bandwidth on a CPU.
    ``sample`` draws what scikit-learn's ``KernelDensity.sample`` draws for the same
    seed.
    """

    _BLOCK = 1024  # rows of x per distance block

    def __init__(self, bandwidth: float, device: str | torch.device | None = None):
        self.bandwidth = checks.number(bandwidth, "bandwidth", low=0, low_open=True)
        self._device = None if device is None else checks.device(device, "device")

    def _compute_device(self) -> torch.device:
        from .. import runtime

        chosen = self._device if self._device is not None else runtime.device()
        return chosen if runtime.has_float64(chosen) else torch.device("cpu")

    def fit(self, x) -> KernelDensity:
        """Keep the training examples ``x`` ``(n, ...)``, flattened, as the kernels' centres."""
        flat = self._remember_shape(x)
        self._data = flat
        self._train = torch.from_numpy(flat).to(self._compute_device())
        return self

    def _fitted_state(self) -> dict:
        return {} if self.shape is None else {"data": self._data}

    def _restore(self, state: dict) -> None:
        self._data = np.asarray(state["data"], dtype=np.float64)
        self._train = torch.from_numpy(self._data).to(self._compute_device())

    def log_prob(self, x, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """The exact log density of each example ``(B, ...)``, ``(B,)`` float64 nats on the
        CPU (``generator`` accepted for the protocol: nothing is random)."""
        checks.generator(generator)
        flat = self._check_fitted_input(x)
        train, h = self._train, self.bandwidth
        n, d = train.shape
        train_sq = (train * train).sum(1)
        const = -math.log(n) - 0.5 * d * math.log(2 * math.pi * h * h)
        out = []
        for start in range(0, len(flat), self._BLOCK):
            rows = torch.from_numpy(flat[start : start + self._BLOCK]).to(train.device)
            sq = (rows * rows).sum(1, keepdim=True) + train_sq - 2 * rows @ train.T
            out.append(torch.logsumexp(-sq.clamp_min(0) / (2 * h * h), 1).cpu())
        return (torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)) + const

    def _draw(self, n: int, seed: int) -> np.ndarray:
        if n == 0:
            return np.zeros((0, math.prod(self.shape)))
        rng = np.random.RandomState(seed)  # scikit-learn's order of draws
        i = (rng.uniform(0, 1, size=n) * len(self._data)).astype(np.int64)
        return np.atleast_2d(rng.normal(self._data[i], self.bandwidth))


class Memorizer(_Baseline):
    """``U({x_1, ..., x_n})``: probability ``count(x) / n`` for a training example, else 0.

    A discrete model: ``log_prob`` compares examples exactly, so use it on the
    integer data, not on dequantized data.
    """

    discrete = True

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

    def log_prob(self, x, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``log(count(x) / n)`` per example ``(B,)``, in nats; ``-inf`` for unseen ``x``
        (``generator`` accepted for the protocol: nothing is random)."""
        checks.generator(generator)
        flat = self._check_fitted_input(x)
        # BEGIN SOLUTION
        counts = np.array([self._table.get(row.tobytes(), 0) for row in flat], dtype=np.float64)
        with np.errstate(divide="ignore"):
            return torch.as_tensor(np.log(counts / self.n))
        # END SOLUTION

    def _draw(self, n: int, seed: int) -> np.ndarray:
        idx = np.random.default_rng(seed).integers(0, self.n, n)
        return self._train[idx]

    def _fitted_state(self) -> dict:
        return {} if self.shape is None else {"train": self._train}

    def _restore(self, state: dict) -> None:
        flat = np.asarray(state["train"], dtype=np.float64)
        rows, counts = np.unique(flat, axis=0, return_counts=True)
        self.n, self._train = len(flat), flat
        self._table = {row.tobytes(): c for row, c in zip(rows, counts, strict=True)}


class Dequantized(Saveable):
    """A continuous density ``q`` used as a model of integer images: uniform dequantization.

    ``fit`` and ``log_prob`` take the data set's integer images (``0..levels-1``) and add
    uniform noise ``u ~ U[0, 1)`` inside (:func:`selfsup.data.dequantize`), so that
    ``log_prob`` is a one-draw estimate of ``E_u log q(x + u)``, a **lower bound** on the
    log-probability of the discrete model that ``q`` induces (nats, ``(B,)``).
    ``sample`` rounds ``q``'s samples down onto the grey levels (clamped to
    ``0..levels-1``): integer images. Where ``q`` can condition (a :class:`GaussianMixture`)
    the wrapper has ``complete`` and ``conditional_log_prob`` too, and so follows
    :class:`selfsup.protocols.Conditional`; elsewhere it has neither. The completion's
    conditional mean is moved back by the noise's mean 1/2.

    Example: ``Dequantized(GaussianMixture(10, reg_covar=0.3), levels).fit(x_train)``.
    """

    def __new__(cls, model, levels: int):
        # The conditioning methods live on a subclass, chosen here, rather than on
        # properties that raise AttributeError: from Python 3.12 the runtime-checked
        # protocols look attributes up statically (inspect.getattr_static), so only a
        # class without ``complete`` is seen as not Conditional on every Python.
        if cls is Dequantized and callable(getattr(model, "complete", None)):
            cls = _ConditionalDequantized
        return super().__new__(cls)

    def __init__(self, model, levels: int):
        if not all(callable(getattr(model, m, None)) for m in ("fit", "log_prob", "sample")):
            raise checks.InputTypeError(
                "model must be a continuous density with fit, log_prob and sample (e.g. "
                f"GaussianMixture(10)), got {checks.describe(model)}"
            )
        self.model, self.levels = model, checks.integer(levels, "levels", low=2)
        self.shape: tuple[int, ...] | None = None

    def _dequantize(self, x, generator, name: str = "x") -> torch.Tensor:
        from ..data import dequantize

        x = checks.images(x, name, self.shape, "levels", self.levels, min_len=0,
                          ndim=None if self.shape is not None else (2, 3, 4))  # fmt: skip
        return dequantize(x.cpu(), self.levels, generator)

    def _check_fitted(self) -> None:
        if self.shape is None:
            raise ValueError(f"Dequantized({type(self.model).__name__}) is not fitted; "
                             "call fit(x_train) first")  # fmt: skip

    def _saved_extra(self) -> dict:
        return {"shape": self.shape}  # the wrapped model is saved as an argument

    def _load_extra(self, extra: dict) -> None:
        self.shape = None if extra["shape"] is None else tuple(extra["shape"])

    def fit(self, x, *, generator: torch.Generator | None = None) -> Dequantized:
        """Fit ``q`` to the dequantized integer images ``x`` ``(n, ...)``."""
        deq = self._dequantize(x, generator)
        self.model.fit(deq)
        self.shape = tuple(deq.shape[1:])
        return self

    def log_prob(self, x, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``log q(x + u)`` per example ``(B,)``, nats: an estimate of a lower bound."""
        self._check_fitted()
        return self.model.log_prob(self._dequantize(x, generator))

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` integer images ``(n, *shape)``: ``q``'s samples rounded down onto the
        grey levels and clamped to ``0..levels-1``."""
        self._check_fitted()
        draws = torch.as_tensor(self.model.sample(n, generator=generator))
        return draws.clamp(0, self.levels - 1).floor().long()


class _ConditionalDequantized(Dequantized):
    """:class:`Dequantized` around a density that can condition on known pixels."""

    def conditional_log_prob(
        self, x, known_mask, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``log q(x_u + u_u | x_k + u_k)`` per example ``(B,)``, nats."""
        self._check_fitted()
        return self.model.conditional_log_prob(self._dequantize(x, generator), known_mask)

    def complete(self, x, known_mask, *, generator: torch.Generator | None = None):
        """``q``'s conditional mean of the unknown positions, on the grey-level scale
        (floats ``(B, ...)``); the known positions keep their values."""
        self._check_fitted()
        known = checks.known_mask(known_mask, self.shape)
        levels = checks.images(x, "x", self.shape, "levels", self.levels, min_len=0).cpu()
        filled = self.model.complete(self._dequantize(levels, generator), known) - 0.5
        return torch.where(known, levels.to(filled.dtype), filled)


class ClassConditional(Saveable):
    """One model per class: ``p(x) = sum_y pi_y p(x | y)``, sampled with labels.

    Class-conditional generators are what the classification accuracy score needs
    (labelled samples: :meth:`sample_with_labels`). ``make_model(x_class)`` returns a
    *fitted* model with ``log_prob`` and ``sample(n, ...)``: a baseline above, or a
    trained VAE. ``make_model=None``: a model that cannot be fitted again, as
    :func:`selfsup.load` rebuilds one (the function itself is not saved, only the
    fitted per-class models).
    """

    def __init__(self, make_model=None):
        if make_model is not None and not callable(make_model):
            raise checks.InputTypeError(
                "make_model must be a function x_class -> fitted model, got "
                f"{checks.describe(make_model)}"
            )
        self.make_model = make_model
        self.models = None

    def _saved_args(self) -> tuple[tuple, dict]:
        return (), {}  # a function cannot be stored; the fitted models are (extra)

    def _saved_extra(self) -> dict | None:
        if self.models is None:
            return None
        return {"classes": self.classes, "log_pi": self.log_pi, "models": list(self.models)}

    def _load_extra(self, extra: dict) -> None:
        self.classes, self.log_pi = extra["classes"], extra["log_pi"]
        self.models = list(extra["models"])

    def fit(self, x, y) -> ClassConditional:
        """Fit one model per class, ``make_model(x[y == c])``, on ``x`` ``(n, ...)`` with
        labels ``y`` ``(n,)`` (at least two classes); ``pi`` is the classes' frequency."""
        if self.make_model is None:
            raise ValueError(
                "make_model is None (a loaded ClassConditional keeps its fitted models but "
                "not the function that made them); build ClassConditional(make_model) to fit"
            )
        y = checks.tensor(y, "y", ndim=1, dtype="int")
        if not isinstance(x, torch.Tensor):
            x = checks.tensor(x, "x")
        if len(x) != len(y):
            raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
        self.classes = torch.unique(y.cpu())
        if len(self.classes) < 2:
            raise ValueError("y must contain at least two classes")
        # The class weights in double precision on the host (MPS has no float64).
        self.log_pi = torch.log(torch.stack([(y.cpu() == c).double().mean() for c in self.classes]))
        self.models = [self.make_model(x[y == c]) for c in self.classes]
        for k, model in enumerate(self.models):
            if not (
                callable(getattr(model, "log_prob", None))
                and callable(getattr(model, "sample", None))
            ):
                raise checks.InputTypeError(
                    f"make_model must return a fitted model with log_prob and sample; for class "
                    f"{int(self.classes[k])} it returned {checks.describe(model)}"
                )
        return self

    def _check_fitted(self) -> None:
        if self.models is None:
            raise ValueError("ClassConditional is not fitted; call fit(x_train, y_train) first")

    def log_prob(self, x, *, generator: torch.Generator | None = None, **estimator) -> torch.Tensor:
        """``log sum_y pi_y p(x|y)`` ``(B,)`` in nats (float64, on the CPU); a lower bound if
        the parts give bounds.

        ``generator`` (passed to every part's ``log_prob``, in turn, when given) and
        ``estimator`` (e.g. ``k=64`` for VAEs' IWAE bound) go to the parts.
        """
        self._check_fitted()
        checks.generator(generator)
        if generator is not None:
            estimator = {"generator": generator, **estimator}
        parts = torch.stack(
            [lp + m.log_prob(x, **estimator).cpu().double()
             for lp, m in zip(self.log_pi, self.models, strict=True)]
        )  # fmt: skip
        return torch.logsumexp(parts, 0)

    def sample(
        self, n: int, *, generator: torch.Generator | None = None, labels=None
    ) -> torch.Tensor:
        """``n`` samples ``(n, ...)`` on the CPU: of classes drawn in proportion to ``pi``
        (grouped by class), or of the given ``labels`` ``(n,)`` (in their order). Their
        labels: :meth:`sample_with_labels`."""
        return self.sample_with_labels(n, generator=generator, labels=labels)[0]

    def sample_with_labels(
        self, n: int, *, generator: torch.Generator | None = None, labels=None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` samples and their labels ``(n,)`` (int64), on the CPU.

        Without ``labels``, classes are drawn in proportion to ``pi`` and the samples come
        grouped by class; with ``labels`` (``(n,)`` classes seen in :meth:`fit`), sample
        ``i`` is of class ``labels[i]``. Each class's model samples with a generator seeded
        from ``generator`` (default: torch's global generator).
        """
        n = checks.sample_count(n)
        self._check_fitted()
        index = None
        if labels is not None:
            index = self._label_index(labels, n)
        seed = _numpy_seed(generator)
        if index is None:
            pi = self.log_pi.exp().numpy()
            drawn = np.random.default_rng(seed).choice(len(self.classes), size=n, p=pi / pi.sum())
        else:
            drawn = index
        xs, ys, where = [], [], []
        for k, model in enumerate(self.models):
            m = int((drawn == k).sum())
            if m:
                part = model.sample(m, generator=torch.Generator().manual_seed(seed + k))
                xs.append(torch.as_tensor(part).cpu())
                ys.append(torch.full((m,), int(self.classes[k])))
                where.append(torch.from_numpy(np.flatnonzero(drawn == k)))
        if not xs:
            empty = torch.as_tensor(self.models[0].sample(0)).cpu()
            return empty, torch.zeros(0, dtype=torch.long)
        x, y = torch.cat(xs), torch.cat(ys)
        if index is not None:  # in the order of the labels asked for
            order = torch.argsort(torch.cat(where))
            x, y = x[order], y[order]
        return x, y

    def _label_index(self, labels, n: int) -> np.ndarray:
        """The class index ``(n,)`` of each of ``labels``, checked."""
        y = checks.tensor(labels, "labels", ndim=1, min_len=0, dtype="int").cpu()
        if len(y) != n:
            raise ValueError(f"labels must hold n={n} labels, one per sample, got {len(y)}")
        known = torch.isin(y, self.classes)
        if not bool(known.all()):
            raise ValueError(
                f"labels must be classes seen in fit ({self.classes.tolist()}), got "
                f"{sorted(set(y[~known].tolist()))}"
            )
        return torch.searchsorted(self.classes, y).numpy()
