"""Metrics for generative models: likelihood units and sample-based scores.

The book reports log-likelihoods per example in **nats** (``model.log_prob``) and
converts them for comparison across data sets:

- ``bits = nats / ln 2``;
- bits per dimension: ``NLL_bits / d``, the average code length per pixel; a
  uniform model of 17-level pixels scores ``log2 17 = 4.087``.

Continuous densities of discrete data are evaluated on uniformly dequantized data
(:func:`selfsup.data.dequantize`), which bounds the discrete likelihood from below,
so their bits/dim are comparable with discrete models' and never flattered.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from . import _checks as checks

__all__ = [
    "Memorisation",
    "ProbeScore",
    "PrecisionRecall",
    "Score",
    "bits_per_dim",
    "classification_accuracy_score",
    "fid",
    "inception_score",
    "kid",
    "linear_probe",
    "memorisation",
    "nats_to_bits",
    "perplexity",
    "precision_recall",
]


def nats_to_bits(nats):
    """Convert nats to bits (divide by ``ln 2``): a float, array or tensor of any shape,
    returned as the same kind (NumPy scalars as floats).

    ``±inf`` converts to ``±inf`` (an example of probability 0 has ``-inf`` nats of
    log-likelihood); NaN is refused: it is a failed computation, not an amount of
    information.
    """
    if isinstance(nats, (torch.Tensor, np.ndarray)):
        values = nats
    elif isinstance(nats, (numbers.Real, np.generic)) and not isinstance(nats, bool):
        values = nats = float(nats)
    else:
        values = checks.array(nats, "nats", min_len=0, finite=False)  # lists; names a bad type
        nats = values
    if isinstance(values, torch.Tensor):
        if checks.values_checked() and bool(torch.isnan(values.detach()).any()):
            raise ValueError("nats contains NaN; check the computation that produced it")
    elif np.isnan(values).any():
        raise ValueError("nats contains NaN; check the computation that produced it")
    return nats / math.log(2)


def bits_per_dim(nll_nats, dims: int) -> float:
    """Mean negative log-likelihood in bits per dimension.

    Args:
        nll_nats: negative log-likelihoods per example in nats, shape ``(B,)`` (or
            a scalar mean).
        dims: the number of dimensions of one example (64 for 8x8 digits).
    Returns:
        ``mean(nll_nats) / (dims ln 2)``. An example the model gives probability 0 has
        NLL ``+inf``, and then so is the answer: ``inf`` bits/dim is a legitimate result
        (the memorizer on new data), not an error. NaN, ``-inf`` and an empty ``nll_nats``
        are refused.
    """
    dims = checks.integer(dims, "dims", fix="e.g. dims=64 for 8x8 images")
    nll = _nll(nll_nats, "nll_nats")
    return float(nats_to_bits(nll.mean()) / dims)


def _nll(values, name: str) -> torch.Tensor:
    """Negative log-likelihoods as a non-empty float64 tensor: ``+inf`` (a model that
    gives an example probability 0) is a valid answer, NaN and ``-inf`` are not."""
    nll = checks.tensor(values, name, min_len=0, finite=False, dtype="float")
    nll = nll.detach().cpu().to(torch.float64).reshape(-1)  # on the host (MPS has no float64)
    if nll.numel() == 0:
        raise ValueError(f"{name} is empty: pass one negative log-likelihood per example")
    if torch.isnan(nll).any() or (nll == -math.inf).any():
        raise ValueError(f"{name} contains NaN or -inf; check the model's log_prob")
    return nll


# --------------------------------------------------------------------- likelihood


def perplexity(nll_nats_per_token) -> float:
    """``exp`` of the mean negative log-likelihood per token (nats): the effective
    number of equally likely choices the model hesitates between at each step."""
    nll = _nll(nll_nats_per_token, "nll_nats_per_token")
    if (nll < 0).any():
        raise ValueError("nll_nats_per_token must be >= 0 for discrete tokens")
    return float(torch.exp(nll.mean()))


# ------------------------------------------------------------------ sample metrics


def _features(x, name: str) -> np.ndarray:
    arr = checks.array(x, name, min_len=0, finite=False)
    if arr.ndim != 2 or len(arr) < 2:
        raise ValueError(f"{name} must have shape (n, f) with n >= 2, got {arr.shape}")
    # A NaN or inf makes the sum non-finite: one cheap pass, the full check only then
    # (a finite sum can also overflow, so the full check decides).
    if not np.isfinite(arr.sum()) and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def _flat_features(x, name: str) -> np.ndarray:
    """Examples of any shape ``(n, ...)``, ``n >= 2``, flattened to ``(n, f)``."""
    arr = checks.array(x, name, min_len=0, finite=False)
    if arr.ndim < 1:
        raise ValueError(f"{name} must have a batch axis, got shape {arr.shape}")
    if len(arr) < 2:
        raise ValueError(
            f"{name} must hold at least 2 examples, got {len(arr)} (shape {arr.shape}); "
            "pass more samples"
        )
    return _features(arr.reshape(len(arr), -1), name)


def _pair(a, b, names=("feats_a", "feats_b")) -> tuple[np.ndarray, np.ndarray]:
    a, b = _features(a, names[0]), _features(b, names[1])
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{names[0]} and {names[1]} have {a.shape[1]} and {b.shape[1]} features")
    return a, b


class Score(NamedTuple):
    """A score with its spread over splits or subsets."""

    mean: float
    std: float


def inception_score(probs_or_logits, splits: int = 10, from_logits: bool = False) -> Score:
    """``exp E_x KL(p(y|x) || p(y))``, mean and std over ``splits`` equal parts.

    ``log IS`` is the mutual information between a sample and its predicted label:
    high when each sample is classified confidently *and* the labels are spread
    over all classes. Between 1 and the number of classes.

    Args:
        probs_or_logits: ``(n, classes)`` class probabilities (rows summing to 1),
            or logits with ``from_logits=True``.
        splits: the score is computed on each of ``splits`` parts (in order).
    """
    p = _features(probs_or_logits, "probs_or_logits")
    if from_logits:
        p = np.exp(p - p.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
    elif (p < 0).any() or not np.allclose(p.sum(1), 1, atol=1e-4):
        raise ValueError(
            "probs_or_logits must be probabilities (rows >= 0 summing to 1); "
            "pass from_logits=True for logits"
        )
    splits = checks.integer(splits, "splits", high=len(p))
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(0, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(part > 0, part * (np.log(part) - np.log(marginal)), 0.0)
        scores.append(np.exp(terms.sum(1).mean()))
    return Score(float(np.mean(scores)), float(np.std(scores)))


def _sqrtm_psd(m: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((m + m.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def _mean_cov(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(f,)`` and unbiased covariance ``(f, f)`` of ``(n, f)`` rows. BLAS's
    symmetric rank-k update computes one triangle of ``X^T X``: half the work of
    ``np.cov``."""
    from scipy.linalg.blas import dsyrk

    mean = x.mean(0)
    centred = x - mean
    upper = dsyrk(1.0 / (len(x) - 1), centred.T)  # centred.T is Fortran-ordered: no copy
    return mean, np.triu(upper) + np.triu(upper, 1).T


def fid(feats_a, feats_b) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets.

    ``||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)``, with unbiased
    covariances. The symmetric form needs only square roots of symmetric PSD
    matrices (eigendecompositions), never of the non-symmetric ``S_a S_b``.
    Biased upwards for small samples: compare FIDs only at equal sample sizes.
    """
    a, b = _pair(feats_a, feats_b)
    # BEGIN SOLUTION
    (mu_a, cov_a), (mu_b, cov_b) = _mean_cov(a), _mean_cov(b)
    # The eigenvalues of S_a^1/2 S_b S_a^1/2 are those of L^T S_b L for any factor
    # S_a = L L^T: a Cholesky factor is cheaper than the symmetric square root.
    try:
        root_a = np.linalg.cholesky(cov_a)
    except np.linalg.LinAlgError:  # singular S_a (fewer samples than features)
        root_a = _sqrtm_psd(cov_a)
    cross = np.linalg.eigvalsh(root_a.T @ cov_b @ root_a)
    trace_term = np.trace(cov_a) + np.trace(cov_b) - 2 * np.sqrt(np.clip(cross, 0, None)).sum()
    return float(max(np.sum((mu_a - mu_b) ** 2) + trace_term, 0.0))
    # END SOLUTION


def kid(feats_a, feats_b, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> Score:
    """Kernel inception distance: unbiased MMD² with the kernel ``(x.y / f + 1)^3``.

    Averaged over ``subsets`` random subsets of ``subset_size`` from each set (the
    whole set if smaller). Unbiased, so unlike FID it does not drift with the
    sample size, and it can be slightly negative.
    """
    a, b = _pair(feats_a, feats_b)
    subsets = checks.integer(subsets, "subsets")
    subset_size = checks.integer(subset_size, "subset_size", low=2)
    seed = checks.integer(seed, "seed", low=0)
    m = min(subset_size, len(a), len(b))
    f = a.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = ((x @ x.T / f + 1) ** 3, (y @ y.T / f + 1) ** 3, (x @ y.T / f + 1) ** 3)
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        values.append(within - 2 * kxy.mean())
    return Score(float(np.mean(values)), float(np.std(values)))


#: Distances computed at once, at most (a block of rows of ``a`` against all of ``b``):
#: 256 MB of float64, whatever the sizes (10k x 60k MNIST pairs would need 4.5 GiB).
_BLOCK = 1 << 25


def _distance_blocks(a: np.ndarray, b: np.ndarray):
    """``(rows, distances)``: Euclidean distances of blocks of rows of ``a`` to all of
    ``b``, each block at most :data:`_BLOCK` numbers."""
    step = max(1, _BLOCK // max(1, len(b)))
    b_sq = (b**2).sum(1)[None]
    for start in range(0, len(a), step):
        block = a[start : start + step]
        sq = (block**2).sum(1)[:, None] + b_sq - 2 * block @ b.T
        yield slice(start, start + len(block)), np.sqrt(np.maximum(sq, 0))


def _nearest(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a),)`` distance from each row of ``a`` to its nearest row of ``b``."""
    out = np.empty(len(a))
    for rows, d in _distance_blocks(a, b):
        out[rows] = d.min(1)
    return out


def _knn_radius(x: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row of ``x`` to its ``k``-th nearest other row (a partition,
    not a sort: column 0 is the point itself)."""
    out = np.empty(len(x))
    for rows, d in _distance_blocks(x, x):
        out[rows] = np.partition(d, k, axis=1)[:, k]
    return out


def _within(a: np.ndarray, b: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """``(len(a),)`` whether each row of ``a`` lies in a ball ``|a - b_j| <= radius_j``."""
    out = np.empty(len(a), dtype=bool)
    for rows, d in _distance_blocks(a, b):
        out[rows] = (d <= radius[None, :]).any(1)
    return out


class PrecisionRecall(NamedTuple):
    precision: float  # fraction of generated samples inside the real manifold
    recall: float  # fraction of real samples inside the generated manifold


def precision_recall(real_feats, fake_feats, k: int = 3) -> PrecisionRecall:
    """Improved precision and recall (Kynkäänniemi et al., 2019).

    Each set's *manifold* is the union of balls around its points, each ball reaching
    the point's ``k``-th nearest neighbour in the same set. Precision is the
    fraction of fake points inside the real manifold (quality); recall the fraction
    of real points inside the fake manifold (coverage).
    """
    real, fake = _pair(real_feats, fake_feats, ("real_feats", "fake_feats"))
    k = checks.integer(k, "k", high=min(len(real), len(fake)) - 1)
    # BEGIN SOLUTION
    r_real, r_fake = _knn_radius(real, k), _knn_radius(fake, k)
    precision = _within(fake, real, r_real).mean()  # fakes inside the real manifold
    recall = _within(real, fake, r_fake).mean()  # reals inside the fake manifold
    return PrecisionRecall(float(precision), float(recall))
    # END SOLUTION


def _logistic_regression(max_iter: int):
    """scikit-learn's logistic regression on standardised inputs: the classifier of the
    classification accuracy score and of the linear probe."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, C=1.0))


def classification_accuracy_score(samples, labels, test_x, test_y, classifier=None) -> float:
    """Train a classifier on generated, labelled samples; return its accuracy on real data.

    Ravuri & Vinyals (2019): a class-conditional generator is good if what it
    generates teaches a classifier as well as real data would. By default the
    classifier is scikit-learn's logistic regression on standardised, flattened inputs.
    """
    x, t = _flat_features(samples, "samples"), _flat_features(test_x, "test_x")
    y = checks.array(labels, "labels", ndim=1)
    ty = checks.array(test_y, "test_y", ndim=1)
    if len(y) != len(x) or len(ty) != len(t):
        raise ValueError("labels must match samples and test_y must match test_x in length")
    if len(np.unique(y)) < 2:
        raise ValueError("labels must contain at least two classes")
    if classifier is None:
        classifier = _logistic_regression(max_iter=1000)
    classifier.fit(x, y)
    return float((classifier.predict(t) == ty).mean())


class Memorisation(NamedTuple):
    sample_to_train: float  # median distance from a sample to its nearest training example
    test_to_train: float  # the same for held-out real data: the honest reference
    ratio: float  # sample_to_train / test_to_train; far below 1 means copying
    copies: float  # fraction of samples closer to train than 99% of test examples are


def nearest_distance(samples, train) -> np.ndarray:
    """``(n,)`` the Euclidean distance from each sample to its nearest training example
    (rows flattened), computed in blocks of rows: memory stays bounded whatever the
    sizes. :func:`memorisation` compares these with held-out data's."""
    s, tr = _flat_features(samples, "samples"), _flat_features(train, "train")
    if s.shape[1] != tr.shape[1]:
        raise ValueError(
            f"samples and train must have the same number of features, got {s.shape[1]} "
            f"and {tr.shape[1]}"
        )
    return _nearest(s, tr)


def memorisation(samples, train, test) -> Memorisation:
    """Nearest-neighbour distances of samples to the training set, against held-out data.

    A model that copies its training data produces samples much closer to the
    training set than new real data are.
    """
    s = _flat_features(samples, "samples")
    tr, te = _flat_features(train, "train"), _flat_features(test, "test")
    if not s.shape[1] == tr.shape[1] == te.shape[1]:
        raise ValueError("samples, train and test must have the same number of features")
    ds, dt = _nearest(s, tr), _nearest(te, tr)  # in blocks: bounded memory
    threshold = np.quantile(dt, 0.01)
    med_s, med_t = float(np.median(ds)), float(np.median(dt))
    return Memorisation(
        med_s,
        med_t,
        med_s / med_t if med_t > 0 else math.inf,
        float((ds < threshold).mean()) if threshold > 0 else float((ds == 0).mean()),
    )


class ProbeScore(NamedTuple):
    """Few-label linear-probe accuracy: mean and standard deviation over seeds."""

    mean: float
    std: float


def linear_probe(
    train_feats,
    train_labels,
    test_feats,
    test_labels,
    labels_per_class: int,
    seeds: Sequence[int] = range(10),
) -> ProbeScore:
    """Accuracy of a logistic regression trained on ``labels_per_class`` labelled
    examples per class (drawn per seed), on standardised features.

    Args:
        train_feats, test_feats: ``(n, f)`` features; labels ``(n,)``.
    """

    def arr(x, name):
        a = checks.array(x, name)
        return a.reshape(len(a), -1)

    xtr, xte = arr(train_feats, "train_feats"), arr(test_feats, "test_feats")
    ytr = checks.array(train_labels, "train_labels", ndim=1).astype(np.int64)
    yte = checks.array(test_labels, "test_labels", ndim=1).astype(np.int64)
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise ValueError(
            "features and labels must have the same length, got "
            f"{len(xtr)} and {len(ytr)} (train), {len(xte)} and {len(yte)} (test)"
        )
    classes, counts = np.unique(ytr, return_counts=True)
    if len(classes) < 2:
        raise ValueError("train_labels must contain at least two classes")
    labels_per_class = checks.integer(labels_per_class, "labels_per_class", high=int(counts.min()))
    seeds = [checks.integer(s, f"seeds[{i}]", low=0) for i, s in enumerate(seeds)]
    if not seeds:
        raise ValueError("seeds must name at least one seed, e.g. seeds=range(10)")
    scores = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        idx = np.concatenate(
            [rng.choice(np.flatnonzero(ytr == c), labels_per_class, replace=False) for c in classes]
        )
        clf = _logistic_regression(max_iter=2000)
        clf.fit(xtr[idx], ytr[idx])
        scores.append((clf.predict(xte) == yte).mean())
    return ProbeScore(float(np.mean(scores)), float(np.std(scores)))
