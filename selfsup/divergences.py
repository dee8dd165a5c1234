"""Distances and divergences between probability distributions.

Conventions (as in ``scipy.special``): natural logarithms, so divergences are in
**nats** unless ``base`` says otherwise; ``0 log 0 = 0``; a divergence is ``inf``
where it is infinite, never NaN. Discrete distributions are array-likes (NumPy
arrays, lists or torch tensors) of shape ``(..., k)``: the last axis holds the
probabilities, which must be non-negative and sum to one. Leading axes broadcast,
and a result with no leading axes is returned as a Python ``float``.

- divergences (not symmetric, no triangle inequality): :func:`kl_divergence`,
  :func:`f_divergence`, :func:`gaussian_kl`;
- distances (metrics): :func:`total_variation`, :func:`wasserstein`;
- symmetric, bounded: :func:`js_divergence` (its square root is a metric);
- integral probability metrics estimated from samples: :func:`mmd`,
  :func:`wasserstein`;
- estimators from samples: :func:`kl_from_samples`, :func:`tv_from_classifier`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy.special import ndtr

__all__ = [
    "BestTest",
    "Estimate",
    "best_test",
    "f_divergence",
    "F_GENERATORS",
    "gaussian_kl",
    "gaussian_tv",
    "js_divergence",
    "kl_divergence",
    "kl_from_samples",
    "mmd",
    "total_variation",
    "tv_from_classifier",
    "wasserstein",
]


# --------------------------------------------------------------------------- checks
# This module is the NumPy/SciPy half of the library: importing it does not load torch
# (a torch tensor is recognised by its ``detach`` method). Its checks therefore convert
# with NumPy, in the wording of selfsup._checks: the argument, what came, and the fix.


def _as_float_array(x, name: str) -> np.ndarray:
    """``x`` as a float64 array of any shape (torch tensors are detached and moved to the
    CPU): NaN is refused, infinities are left to the caller (a log density may be
    ``-inf``). A number or 0-d array stays 0-d."""
    if hasattr(x, "detach"):  # a torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    if x is None or isinstance(x, (str, bytes, dict)):
        raise ValueError(
            f"{name} must be numeric (a NumPy array, a list of numbers or a tensor), got "
            f"{type(x).__name__}; pass the numbers themselves"
        )
    try:
        raw = np.asarray(x)
        if np.iscomplexobj(raw):
            raise ValueError(f"{name} must be real-valued, got complex numbers; pass x.real")
        arr = raw.astype(np.float64)
    except (TypeError, ValueError) as error:
        if "real-valued" in str(error):
            raise
        raise ValueError(
            f"{name} must be numeric array-like (a NumPy array, a list of numbers of equal "
            f"lengths or a tensor), got {type(x).__name__}"
        ) from None
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN; remove or replace the NaN entries")
    return arr


def _check_distribution(p, name: str, atol: float = 1e-6) -> np.ndarray:
    """Validate a discrete distribution along the last axis."""
    arr = _as_float_array(p, name)
    if arr.ndim == 0 or arr.shape[-1] == 0:
        raise ValueError(
            f"{name} must have shape (..., k) with k >= 1 probabilities, got shape {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains inf; probabilities must be finite")
    if (arr < 0).any():
        raise ValueError(f"{name} has negative entries ({arr.min():.3g}); probabilities are >= 0")
    total = arr.sum(axis=-1)
    if not np.allclose(total, 1.0, atol=atol, rtol=0):
        worst = float(np.max(np.abs(total - 1.0)))
        raise ValueError(
            f"{name} does not sum to 1 along its last axis (off by {worst:.3g}); "
            f"normalise it first, e.g. {name} / {name}.sum(-1, keepdims=True)"
        )
    return arr


def _check_pair(p, q) -> tuple[np.ndarray, np.ndarray]:
    p = _check_distribution(p, "p")
    q = _check_distribution(q, "q")
    if p.shape[-1] != q.shape[-1]:
        raise ValueError(
            f"p and q must have the same number of outcomes, got {p.shape[-1]} and {q.shape[-1]}"
        )
    try:
        np.broadcast_shapes(p.shape, q.shape)
    except ValueError:
        raise ValueError(f"p and q shapes {p.shape} and {q.shape} do not broadcast") from None
    return p, q


def _log_base(base: float) -> float:
    if not (isinstance(base, (int, float)) and base > 0 and base != 1 and math.isfinite(base)):
        raise ValueError(f"base must be a positive number other than 1, got {base!r}")
    return math.log(base)


def _round_off(value, scale, what: str):
    """Clamp a divergence's negative round-off to 0, and only round-off.

    A divergence is >= 0; a computed value below ``-1e-9 * (1 + scale)`` (``scale``:
    the magnitude of the terms it was summed from) is a bug or an invalid input, and
    raises instead of hiding as 0.
    """
    value = np.asarray(value, dtype=np.float64)
    tol = 1e-9 * (1.0 + np.asarray(scale, dtype=np.float64))
    if (value < -tol).any():
        worst = float(np.min(value))
        raise ArithmeticError(
            f"{what} came out negative ({worst:.3g}), beyond round-off; a divergence is "
            ">= 0, so its inputs or its generator are invalid"
        )
    return np.maximum(value, 0.0)


def _out(x: np.ndarray) -> float | np.ndarray:
    return float(x) if np.ndim(x) == 0 else x


def _samples(x, name: str) -> np.ndarray:
    """Samples as an ``(n, d)`` float array; 1-D input is ``n`` scalar samples."""
    arr = _as_float_array(x, name)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (n,) or (n, d), got {arr.shape}")
    if arr.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 samples, got {arr.shape[0]}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains inf; samples must be finite")
    return arr


def _sample_pair(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = _samples(x, "x"), _samples(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same dimension, got {x.shape[1]} and {y.shape[1]}")
    return x, y


# ----------------------------------------------------------------- total variation


def total_variation(p, q) -> float | np.ndarray:
    """Total variation distance ``TV(p, q) = 1/2 sum_x |p(x) - q(x)|``, in ``[0, 1]``.

    A distance (a metric). It equals the largest advantage of any test
    ``f: D -> {0, 1}``, ``max_f E_p f - E_q f``; :func:`best_test` returns the test.

    Args:
        p, q: discrete distributions, shape ``(..., k)``.
    Returns:
        shape ``(...)``; a float for 1-D input.
    """
    p, q = _check_pair(p, q)
    # Round-off can carry the sum a few ulps past 1 (disjoint supports); TV is at most 1.
    return _out(np.minimum(0.5 * np.abs(p - q).sum(axis=-1), 1.0))


class BestTest(NamedTuple):
    """The test ``f = 1[x in A]`` that best tells ``p`` from ``q``."""

    accept: np.ndarray  # bool, shape (k,): the set A = {x : p(x) > q(x)}
    advantage: float  # p(A) - q(A), equal to TV(p, q)


def best_test(p, q) -> BestTest:
    """The set ``A = {x: p(x) > q(x)}`` and its advantage ``p(A) - q(A)``.

    No test ``f: D -> {0, 1}`` has a larger advantage ``E_p f - E_q f``, and the
    advantage equals :func:`total_variation` (the second definition of TV).

    Args:
        p, q: discrete distributions of shape ``(k,)``.
    """
    p, q = _check_pair(p, q)
    if p.ndim != 1 or q.ndim != 1:
        raise ValueError(f"best_test takes 1-D p and q, got shapes {p.shape} and {q.shape}")
    accept = p > q
    return BestTest(accept=accept, advantage=float(p[accept].sum() - q[accept].sum()))


def gaussian_tv(mu0, sigma0, mu1, sigma1) -> float | np.ndarray:
    """Exact ``TV(N(mu0, sigma0^2), N(mu1, sigma1^2))`` for 1-D Gaussians.

    The two densities cross at most twice; TV is ``P(A) - Q(A)`` for the set ``A``
    where the first density is larger, a sum of normal CDF differences.

    Args:
        mu0, sigma0, mu1, sigma1: means and standard deviations (``sigma > 0``):
            numbers, or array-likes that broadcast together, for which the TV is computed
            elementwise.
    Returns:
        a float for four numbers, else an array of the broadcast shape.
    """
    args = {"mu0": mu0, "sigma0": sigma0, "mu1": mu1, "sigma1": sigma1}
    arrays = {name: _as_float_array(v, name) for name, v in args.items()}
    for name in ("sigma0", "sigma1"):
        s = arrays[name]
        if not (np.isfinite(s) & (s > 0)).all():
            raise ValueError(f"{name} must be a positive standard deviation, got {args[name]!r}")
    for name in ("mu0", "mu1"):
        if not np.isfinite(arrays[name]).all():
            raise ValueError(f"{name} must be finite, got {args[name]!r}")
    try:
        parts = np.broadcast_arrays(*arrays.values())
    except ValueError:
        shapes = {name: a.shape for name, a in arrays.items()}
        raise ValueError(
            f"mu0, sigma0, mu1 and sigma1 must broadcast together, got {shapes}"
        ) from None
    if parts[0].ndim == 0:
        return _gaussian_tv(*(float(a) for a in parts))
    out = [_gaussian_tv(*values) for values in zip(*(a.ravel() for a in parts), strict=True)]
    return np.array(out).reshape(parts[0].shape)


def _gaussian_tv(mu0: float, sigma0: float, mu1: float, sigma1: float) -> float:
    """:func:`gaussian_tv` of four checked numbers."""
    # log p0 - log p1 = a x^2 + b x + c; A = {x : a x^2 + b x + c > 0}.
    a = 0.5 / sigma1**2 - 0.5 / sigma0**2
    b = mu0 / sigma0**2 - mu1 / sigma1**2
    c = 0.5 * mu1**2 / sigma1**2 - 0.5 * mu0**2 / sigma0**2 + math.log(sigma1 / sigma0)
    if abs(a) < 1e-15 * max(1 / sigma0**2, 1 / sigma1**2):
        if b == 0:
            return 0.0
        t = -c / b  # one crossing
        cuts, inside_first = [t], b < 0  # b > 0 means A = (t, inf)
    else:
        disc = b * b - 4 * a * c
        if disc <= 0:  # no crossing: one density dominates everywhere
            return 0.0
        r = math.sqrt(disc)
        lo, hi = sorted(((-b - r) / (2 * a), (-b + r) / (2 * a)))
        cuts, inside_first = [lo, hi], a > 0  # a < 0: A is the middle interval
    # Probabilities of the intervals between cuts, alternating in/out of A.
    edges = [-np.inf, *cuts, np.inf]
    adv = 0.0
    in_a = inside_first
    for left, right in zip(edges[:-1], edges[1:], strict=True):
        if in_a:
            pa = ndtr((right - mu0) / sigma0) - ndtr((left - mu0) / sigma0)
            qa = ndtr((right - mu1) / sigma1) - ndtr((left - mu1) / sigma1)
            adv += pa - qa
        in_a = not in_a
    return float(min(_round_off(adv, 1.0, "TV between the Gaussians"), 1.0))


# ------------------------------------------------------------------------------ KL


def kl_divergence(p, q, base: float = math.e) -> float | np.ndarray:
    """Kullback-Leibler divergence ``KL(p || q) = sum_x p(x) log(p(x) / q(x))``.

    In nats (``base=e``), bits (``base=2``) or any other base. It is ``inf`` when
    ``q`` has no mass where ``p`` has some: no finite amount of evidence from ``q``
    can explain an outcome that ``q`` calls impossible. Not symmetric.

    Args:
        p, q: discrete distributions, shape ``(..., k)``.
        base: the logarithm's base.
    """
    p, q = _check_pair(p, q)
    scale = _log_base(base)
    p, q = np.broadcast_arrays(p, q)
    both = (p > 0) & (q > 0)
    log_ratio = np.log(np.where(both, p, 1.0)) - np.log(np.where(both, q, 1.0))
    terms = np.where(both, p * log_ratio, np.where(p > 0, np.inf, 0.0))
    magnitude = np.where(both, np.abs(p * log_ratio), 0.0).sum(axis=-1)
    return _out(_round_off(terms.sum(axis=-1), magnitude, "KL(p || q)") / scale)


def js_divergence(p, q, base: float = math.e) -> float | np.ndarray:
    """Jensen-Shannon divergence ``1/2 KL(p || m) + 1/2 KL(q || m)``, ``m = (p + q) / 2``.

    Symmetric and bounded by ``log 2`` (1 bit). Its square root is a metric, the
    Jensen-Shannon *distance* (what ``scipy.spatial.distance.jensenshannon`` returns).
    """
    p, q = _check_pair(p, q)
    m = 0.5 * (p + q)
    return _out(
        0.5 * np.asarray(kl_divergence(p, m, base)) + 0.5 * np.asarray(kl_divergence(q, m, base))
    )


# ------------------------------------------------------------------ f-divergences


class _Generator(NamedTuple):
    f: Callable[[np.ndarray], np.ndarray]  # convex, f(1) = 0
    perspective: Callable[[np.ndarray, np.ndarray], np.ndarray]  # q f(p / q) for p, q > 0
    f0: float  # f(0): weight of outcomes with p = 0 < q
    slope_inf: float  # lim_{t -> inf} f(t) / t: weight of outcomes with q = 0 < p


def _xlogy(x, y):
    """``x log y`` with ``0 log y = 0``, for ``x >= 0`` and ``y > 0`` where ``x > 0``."""
    return np.where(x > 0, x * np.log(np.where(x > 0, y, 1.0)), 0.0)


# Each generator also comes as its perspective q f(p/q), written without the ratio
# p/q, which overflows when q is tiny.
F_GENERATORS: dict[str, _Generator] = {
    # KL(p || q): f(t) = t log t
    "kl": _Generator(
        lambda t: _xlogy(t, t), lambda p, q: p * (np.log(p) - np.log(q)), 0.0, math.inf
    ),
    # KL(q || p): f(t) = -log t
    "reverse_kl": _Generator(
        lambda t: -np.log(t), lambda p, q: q * (np.log(q) - np.log(p)), math.inf, 0.0
    ),
    # total variation: f(t) = |t - 1| / 2
    "tv": _Generator(lambda t: 0.5 * np.abs(t - 1.0), lambda p, q: 0.5 * np.abs(p - q), 0.5, 0.5),
    # squared Hellinger distance H^2 = 1/2 sum (sqrt p - sqrt q)^2: f(t) = (sqrt t - 1)^2 / 2
    "hellinger": _Generator(
        lambda t: 0.5 * (np.sqrt(t) - 1.0) ** 2,
        lambda p, q: 0.5 * (np.sqrt(p) - np.sqrt(q)) ** 2,
        0.5,
        0.5,
    ),
    # Pearson chi^2: f(t) = (t - 1)^2
    "chi2": _Generator(lambda t: (t - 1.0) ** 2, lambda p, q: (p - q) ** 2 / q, 1.0, math.inf),
    # Jensen-Shannon: f(t) = t/2 log(2t / (t + 1)) + 1/2 log(2 / (t + 1))
    "js": _Generator(
        lambda t: 0.5 * (_xlogy(t, 2 * t / (t + 1.0)) + np.log(2.0 / (t + 1.0))),
        lambda p, q: 0.5 * (p * np.log(2 * p / (p + q)) + q * np.log(2 * q / (p + q))),
        0.5 * math.log(2.0),
        0.5 * math.log(2.0),
    ),
}


def f_divergence(p, q, f: str | Callable = "kl") -> float | np.ndarray:
    """The f-divergence ``D_f(p || q) = sum_x q(x) f(p(x) / q(x))``, in nats.

    ``f`` is convex with ``f(1) = 0``. Named generators: ``"kl"``, ``"reverse_kl"``,
    ``"tv"``, ``"hellinger"`` (the *squared* Hellinger distance,
    ``1/2 sum (sqrt p - sqrt q)^2``), ``"chi2"`` (Pearson) and ``"js"``.
    Outcomes with ``q(x) = 0 < p(x)`` contribute ``p(x) lim_{t->inf} f(t)/t``, which
    the named generators know. A callable ``f`` (vectorised over NumPy arrays) is
    accepted when ``q > 0`` wherever ``p > 0``.
    """
    p, q = _check_pair(p, q)
    if isinstance(f, str):
        if f not in F_GENERATORS:
            raise ValueError(f"f={f!r} is not a named generator; use one of {sorted(F_GENERATORS)}")
        gen = F_GENERATORS[f]
    elif callable(f):
        f1 = float(np.asarray(f(np.array([1.0])))[0])
        if not abs(f1) < 1e-9:
            raise ValueError(f"f must satisfy f(1) = 0, got f(1) = {f1:.3g}; subtract f(1)")
        if np.any((np.broadcast_to(q, np.broadcast_shapes(p.shape, q.shape)) == 0) & (p > 0)):
            raise ValueError(
                "q is 0 where p has mass; a callable f needs lim f(t)/t there, "
                "so pass a named generator or give q full support"
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            f0 = float(np.asarray(f(np.array([0.0])))[0]) if np.any(p == 0) else 0.0
        gen = _Generator(f, lambda p, q: q * f(p / q), f0, math.nan)
    else:
        raise ValueError(f"f must be a generator name or a callable, got {type(f).__name__}")

    p, q = np.broadcast_arrays(p, q)
    both = (p > 0) & (q > 0)
    safe_p, safe_q = np.where(both, p, 1.0), np.where(both, q, 1.0)
    with np.errstate(over="ignore"):
        inner = np.where(both, gen.perspective(safe_p, safe_q), 0.0)
    with np.errstate(invalid="ignore"):  # 0 * inf in the entries np.where discards
        only_q = np.where((p == 0) & (q > 0), q * gen.f0, 0.0)
        only_p = np.where((q == 0) & (p > 0), p * gen.slope_inf, 0.0)
    total = (inner + only_q + only_p).sum(axis=-1)
    if np.isnan(total).any():
        raise ValueError("f gave NaN on these p and q; check that f is finite on (0, inf)")
    magnitude = np.abs(inner).sum(axis=-1)
    try:
        return _out(_round_off(total, magnitude, "the f-divergence"))
    except ArithmeticError as error:
        raise ValueError(
            f"{error}: f must be convex with f(1) = 0 (check f(1) and its convexity)"
        ) from None


# --------------------------------------------------------------------- Gaussians


def _gaussian_params(mu, cov, name_mu: str, name_cov: str) -> tuple[np.ndarray, np.ndarray]:
    mu = np.atleast_1d(_as_float_array(mu, name_mu))
    if mu.ndim != 1 or mu.size == 0:
        raise ValueError(f"{name_mu} must be a scalar or a vector of shape (d,), got {mu.shape}")
    if not np.isfinite(mu).all():
        raise ValueError(f"{name_mu} contains inf; a Gaussian's mean is finite")
    d = mu.shape[0]
    cov = _as_float_array(cov, name_cov)
    if not np.isfinite(cov).all():
        raise ValueError(f"{name_cov} contains inf; a Gaussian's covariance is finite")
    if cov.ndim == 0:
        cov = np.full(d, float(cov))
    if cov.ndim == 1:
        if cov.shape != (d,):
            raise ValueError(f"{name_cov} as variances must have shape ({d},), got {cov.shape}")
        if not (np.isfinite(cov).all() and (cov > 0).all()):
            raise ValueError(f"{name_cov} variances must be positive and finite")
        cov = np.diag(cov)
    if cov.shape != (d, d):
        raise ValueError(
            f"{name_cov} must be a variance, (d,) variances or a (d, d) matrix with d={d}"
        )
    if not np.allclose(cov, cov.T, rtol=1e-8, atol=1e-12):
        raise ValueError(f"{name_cov} must be symmetric; use (C + C.T) / 2")
    return mu, cov


def _cholesky(cov: np.ndarray, name: str) -> np.ndarray:
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise ValueError(
            f"{name} must be positive definite; add a small multiple of the identity"
        ) from None


def gaussian_kl(mu0, cov0, mu1, cov1) -> float:
    """``KL(N(mu0, cov0) || N(mu1, cov1))`` in closed form, in nats.

    ``1/2 [tr(S1^-1 S0) + (m1 - m0)^T S1^-1 (m1 - m0) - d + ln det S1 - ln det S0]``.

    Args:
        mu0, mu1: means, scalars or shape ``(d,)``.
        cov0, cov1: a variance (scalar), variances ``(d,)`` (a diagonal covariance)
            or full covariance matrices ``(d, d)``, positive definite.
    """
    mu0, cov0 = _gaussian_params(mu0, cov0, "mu0", "cov0")
    mu1, cov1 = _gaussian_params(mu1, cov1, "mu1", "cov1")
    if mu0.shape != mu1.shape:
        raise ValueError(
            f"mu0 and mu1 must have the same dimension, got {mu0.shape} and {mu1.shape}"
        )
    # BEGIN SOLUTION
    l0, l1 = _cholesky(cov0, "cov0"), _cholesky(cov1, "cov1")
    d = mu0.shape[0]
    # Solve with the Cholesky factor of S1 rather than inverting it.
    a = np.linalg.solve(l1, l0)  # L1^-1 L0, so tr(S1^-1 S0) = ||a||_F^2
    b = np.linalg.solve(l1, mu1 - mu0)
    logdet = 2 * (np.log(np.diag(l1)).sum() - np.log(np.diag(l0)).sum())
    value = 0.5 * ((a**2).sum() + (b**2).sum() - d + logdet)
    magnitude = 0.5 * ((a**2).sum() + (b**2).sum() + d + abs(logdet))
    return float(_round_off(value, magnitude, "KL between the Gaussians"))
    # END SOLUTION


# ----------------------------------------------------------------- from samples


class Estimate(NamedTuple):
    """A Monte Carlo estimate with its standard error."""

    value: float
    stderr: float


def kl_from_samples(logp, logq) -> Estimate:
    """Monte Carlo ``KL(p || q) ~ mean_i [log p(x_i) - log q(x_i)]`` for ``x_i ~ p``.

    Args:
        logp, logq: log densities (nats) of the same samples ``x_i ~ p``, shape ``(n,)``.
    Returns:
        the estimate and its standard error; ``inf`` if ``q`` gives some sample
        zero density.
    """
    logp = _as_float_array(logp, "logp")
    logq = _as_float_array(logq, "logq")
    if logp.shape != logq.shape:
        # (n,) against (n, 1) would broadcast to an (n, n) table of wrong differences
        raise ValueError(
            f"logp and logq must have the same shape (n,), one value per sample, got "
            f"{logp.shape} and {logq.shape}; flatten both, e.g. logq.reshape(-1)"
        )
    logp, logq = logp.ravel(), logq.ravel()
    if logp.size < 2:
        raise ValueError("logp needs at least 2 samples for an estimate and its error")
    if not np.isfinite(logp).all():
        raise ValueError("logp must be finite: samples of p have positive density under p")
    if (logq == np.inf).any():
        raise ValueError("logq contains +inf; log densities of a proper q are finite or -inf")
    if (logq == -np.inf).any():
        return Estimate(math.inf, 0.0)
    diff = logp - logq
    return Estimate(float(diff.mean()), float(diff.std(ddof=1) / math.sqrt(diff.size)))


def tv_from_classifier(test_p, test_q) -> Estimate:
    """TV lower bound from a test's distinguishing advantage on held-out samples.

    For any test ``f: D -> {0, 1}``, ``E_p f - E_q f <= TV(p, q)``, with equality for
    the best test. Apply a trained classifier to *held-out* samples of each
    distribution and pass its decisions (``True`` = "from p"), or its probabilities
    of "from p", which are thresholded at 1/2.

    Args:
        test_p: decisions or probabilities on samples of p, shape ``(n,)``.
        test_q: decisions or probabilities on samples of q, shape ``(m,)``.
    Returns:
        the advantage (clipped at 0) and its standard error.
    """
    out = []
    for name, t in (("test_p", test_p), ("test_q", test_q)):
        arr = _as_float_array(t, name).ravel()
        if arr.size < 2:
            raise ValueError(f"{name} needs at least 2 held-out samples")
        if ((arr < 0) | (arr > 1)).any():
            raise ValueError(f"{name} must be decisions in {{0, 1}} or probabilities in [0, 1]")
        out.append((arr > 0.5).astype(np.float64))
    a, b = out
    value = a.mean() - b.mean()
    stderr = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    return Estimate(float(max(value, 0.0)), float(stderr))


def _median_bandwidth(z: np.ndarray) -> float:
    sq = _sq_dists(z, z)
    iu = np.triu_indices(len(z), k=1)
    h = float(np.sqrt(np.median(sq[iu])))
    if h <= 0:
        raise ValueError(
            "the median heuristic gives bandwidth 0 (most samples coincide); pass bandwidth="
        )
    return h


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sq = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(sq, 0.0)


def mmd(x, y, bandwidth: float | None = None) -> float:
    """Unbiased estimate of the squared maximum mean discrepancy, ``MMD^2(p, q)``.

    With the Gaussian kernel ``k(a, b) = exp(-||a - b||^2 / (2 h^2))`` the MMD is the
    integral probability metric over the unit ball of the kernel's RKHS
    (Gretton et al., 2012). The unbiased estimator drops the diagonal terms, so it
    can be slightly negative when ``p = q``.

    Args:
        x: samples of p, shape ``(n,)`` or ``(n, d)``.
        y: samples of q, shape ``(m,)`` or ``(m, d)``.
        bandwidth: ``h``; by default the median pairwise distance of the pooled samples.
    """
    x, y = _sample_pair(x, y)
    if bandwidth is None:
        h = _median_bandwidth(np.concatenate([x, y]))
    else:
        if not (isinstance(bandwidth, (int, float)) and math.isfinite(bandwidth) and bandwidth > 0):
            raise ValueError(f"bandwidth must be a positive number, got {bandwidth!r}")
        h = float(bandwidth)
    n, m = len(x), len(y)
    kxx = np.exp(-_sq_dists(x, x) / (2 * h * h))
    kyy = np.exp(-_sq_dists(y, y) / (2 * h * h))
    kxy = np.exp(-_sq_dists(x, y) / (2 * h * h))
    term_x = (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
    term_y = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(term_x + term_y - 2.0 * kxy.mean())


def _wasserstein_1d(x: np.ndarray, y: np.ndarray, p: float) -> float:
    """``W_p^p`` between two 1-D empirical distributions, through quantile functions.

    ``W_p^p = int_0^1 |F^-1(u) - G^-1(u)|^p du``; both quantile functions are step
    functions, constant between the merged breakpoints ``i/n`` and ``j/m``.
    """
    xs, ys = np.sort(x), np.sort(y)
    n, m = len(xs), len(ys)
    u = np.union1d(np.arange(1, n + 1) / n, np.arange(1, m + 1) / m)
    widths = np.diff(np.concatenate([[0.0], u]))
    mid = u - widths / 2  # a point inside each piece
    qx = xs[np.minimum((mid * n).astype(int), n - 1)]
    qy = ys[np.minimum((mid * m).astype(int), m - 1)]
    return float(np.sum(widths * np.abs(qx - qy) ** p))


def wasserstein(x, y, p: float = 1, n_projections: int = 256, seed: int = 0) -> float:
    """Wasserstein-p distance between the empirical distributions of two samples.

    Exact in 1-D (through quantile functions). In ``d > 1`` dimensions the *sliced*
    Wasserstein distance ``(E_theta W_p^p(theta^T x, theta^T y))^(1/p)`` over random
    unit directions ``theta``, a Monte Carlo estimate with ``n_projections``
    directions, which is at most the true ``W_p``.

    Args:
        x: samples, shape ``(n,)`` or ``(n, d)``.
        y: samples, shape ``(m,)`` or ``(m, d)``.
        p: the order, ``>= 1``.
        n_projections: random directions for ``d > 1``.
        seed: seeds the directions.
    """
    x, y = _sample_pair(x, y)
    if not (isinstance(p, (int, float)) and p >= 1 and math.isfinite(p)):
        raise ValueError(f"p must be a finite number >= 1, got {p!r}")
    d = x.shape[1]
    if d == 1:
        return _wasserstein_1d(x[:, 0], y[:, 0], p) ** (1.0 / p)
    if not (isinstance(n_projections, int) and n_projections >= 1):
        raise ValueError(f"n_projections must be a positive int, got {n_projections!r}")
    theta = np.random.default_rng(seed).standard_normal((n_projections, d))
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    px, py = x @ theta.T, y @ theta.T
    powers = [_wasserstein_1d(px[:, k], py[:, k], p) for k in range(n_projections)]
    return float(np.mean(powers) ** (1.0 / p))
