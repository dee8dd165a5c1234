"""Graded: selfsup.pareto.pareto_front (chapter: pareto)."""

import numpy as np

from selfsup.pareto import pareto_front


def _brute_force(pts):
    """O(n^2): i is on the front unless some j is <= on both and < on one."""
    keep = []
    for i, p in enumerate(pts):
        dominated = np.any(np.all(pts <= p, axis=1) & np.any(pts < p, axis=1))
        if not dominated:
            keep.append(i)
    return sorted(keep, key=lambda i: (pts[i, 0], pts[i, 1], i))


def test_front_matches_brute_force_on_random_clouds():
    rng = np.random.default_rng(0)
    for n in [1, 2, 10, 300]:
        pts = rng.normal(size=(n, 2))
        front = pareto_front(pts)
        assert sorted(front.tolist()) == sorted(_brute_force(pts))
        assert np.all(np.diff(pts[front, 0]) >= 0), "sorted by the first objective"


def test_ties_and_duplicates():
    """Ties on one objective dominate; exact duplicates of a front point are all kept."""
    pts = np.array([[1.0, 2.0], [1.0, 3.0], [2.0, 1.0], [2.0, 1.0], [3.0, 1.0], [0.5, 5.0]])
    assert sorted(pareto_front(pts).tolist()) == sorted(_brute_force(pts)) == [0, 2, 3, 5]


def test_front_of_a_grid_with_many_ties():
    rng = np.random.default_rng(1)
    pts = rng.integers(0, 6, size=(200, 2)).astype(float)
    assert sorted(pareto_front(pts).tolist()) == sorted(_brute_force(pts))
