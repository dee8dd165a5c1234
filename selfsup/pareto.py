"""Multiple objectives: Pareto fronts and scalarization.

All objectives are *minimised*. A point dominates another if it is no worse in
both objectives and strictly better in one; the Pareto front is the set of points
that nothing dominates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from . import _checks as checks

__all__ = ["Scalarized", "pareto_front", "scalarize", "scalarization_sweep"]


def _points(points, name: str = "points") -> np.ndarray:
    """``(n, 2)`` objective values: ``+inf`` (an infinitely bad objective) is allowed,
    NaN and ``-inf`` are not."""
    arr = checks.array(points, name, min_len=0, finite=False)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(
            f"{name} must have shape (n, 2): two objectives per point, got {arr.shape}"
        )
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN; drop those points first")
    if (arr == -np.inf).any():
        raise ValueError(f"{name} contains -inf: an objective to minimise cannot be -inf")
    return arr


def _lambdas(lambdas) -> np.ndarray:
    lam = checks.array(lambdas, "lambdas", min_len=0).ravel()
    if lam.size == 0 or (lam < 0).any():
        raise ValueError("lambdas must be a non-empty array of finite numbers >= 0")
    return lam


def pareto_front(points) -> np.ndarray:
    """Indices of the non-dominated points, sorted by the first objective.

    O(n log n): sort by (L1, L2) and sweep, keeping the smallest L2 seen so far.
    Duplicated points do not dominate each other and are all kept.

    Args:
        points: ``(n, 2)`` objective values ``(L1, L2)``, both minimised.
    """
    pts = _points(points)
    # BEGIN SOLUTION
    order = np.lexsort((pts[:, 1], pts[:, 0]))  # by L1, then L2
    front, best, best_point = [], None, None
    for i in order:
        if best is None or pts[i, 1] < best:
            front.append(i)
            best, best_point = pts[i, 1], pts[i]
        elif best_point is not None and np.array_equal(pts[i], best_point):
            front.append(i)  # a duplicate of a front point
    return np.asarray(front, dtype=np.int64)
    # END SOLUTION


class Scalarized(NamedTuple):
    """Minimisers of ``L1 + lambda L2`` over a finite set of candidates."""

    lambdas: np.ndarray  # (m,)
    index: np.ndarray  # (m,) the first minimiser for each lambda
    ties: np.ndarray  # (m,) number of candidates attaining the minimum (within rtol)


def scalarize(points, lambdas, rtol: float = 1e-9) -> Scalarized:
    """For each ``lambda``, which candidate minimises ``L1 + lambda L2``.

    Candidates that no ``lambda >= 0`` selects are Pareto points on a non-convex
    part of the front (or dominated points). ``ties > 1`` marks a ``lambda`` with
    several minimisers.
    """
    pts = _points(points)
    if len(pts) == 0:
        raise ValueError("points is empty: pass at least one candidate")
    lam = _lambdas(lambdas)
    rtol = checks.number(rtol, "rtol", low=0)
    # lambda = 0 ignores L2 entirely, even where L2 is infinite (0 * inf would be NaN).
    with np.errstate(invalid="ignore"):
        weighted = np.where(lam[:, None] == 0, 0.0, lam[:, None] * pts[:, 1][None, :])
    values = pts[:, 0][None, :] + weighted
    best = values.min(axis=1, keepdims=True)
    ties = (values <= best + rtol * np.maximum(np.abs(best), 1.0)).sum(axis=1)
    return Scalarized(lam, values.argmin(axis=1), ties)


def scalarization_sweep(solve: Callable[[float], tuple[float, float]], lambdas) -> np.ndarray:
    """Objective values ``(L1, L2)`` at the minimiser of ``L1 + lambda L2`` for each lambda.

    Args:
        solve: maps ``lambda`` to the objectives ``(L1, L2)`` of (an approximate)
            minimiser of ``L1 + lambda L2``: a closed form, or a training run.
        lambdas: the grid, numbers ``>= 0``.
    Returns:
        ``(m, 2)`` array, one row per lambda.
    """
    if not callable(solve):
        raise checks.InputTypeError(
            f"solve must be a function lambda -> (L1, L2), got {checks.describe(solve)}"
        )
    lam = _lambdas(lambdas)
    rows = []
    for x in lam:
        value = solve(float(x))
        if not (isinstance(value, (tuple, list, np.ndarray)) and len(value) == 2):
            raise ValueError(f"solve(lambda) must return two numbers (L1, L2), got {value!r}")
        rows.append(
            tuple(
                checks.number(v, f"solve({x:g})[{i}]", allow_inf=True) for i, v in enumerate(value)
            )
        )
    return np.array(rows)
