"""selfsup.pareto against brute force; selfsup.plotting returns labelled figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402

from selfsup import pareto, plotting  # noqa: E402


def _brute_front(pts):
    def dominated(i):
        return any(
            np.all(pts[j] <= pts[i]) and np.any(pts[j] < pts[i]) for j in range(len(pts)) if j != i
        )

    return {i for i in range(len(pts)) if not dominated(i)}


@given(
    arrays(
        np.float64, st.tuples(st.integers(1, 40), st.just(2)), elements=st.integers(0, 6).map(float)
    )
)
def test_pareto_front_matches_brute_force(pts):
    # small integer grids make ties and duplicates common
    assert set(pareto.pareto_front(pts).tolist()) == _brute_front(pts)


def test_pareto_front_sorted_and_errors():
    pts = np.array([[3, 1], [1, 3], [2, 2], [3, 3]])
    assert pareto.pareto_front(pts).tolist() == [1, 2, 0]
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        pareto.pareto_front(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        pareto.pareto_front([[1.0, np.nan]])


def test_scalarize_misses_the_non_convex_point_and_finds_ties():
    # (0, 2), (2, 0) and the non-convex Pareto point (1.2, 1.2) above their chord.
    pts = np.array([[0.0, 2.0], [2.0, 0.0], [1.2, 1.2]])
    result = pareto.scalarize(pts, np.linspace(0, 10, 1001))
    assert 2 not in set(result.index.tolist())
    assert set(pareto.pareto_front(pts).tolist()) == {0, 1, 2}
    tie = pareto.scalarize(pts, [1.0])
    assert tie.ties[0] == 2


def test_scalarization_sweep_ridge_closed_form():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(30, 4)), rng.normal(size=30)

    def solve(lam):
        w = np.linalg.solve(a.T @ a + lam * np.eye(4), a.T @ b)
        return np.sum((a @ w - b) ** 2), np.sum(w**2)

    out = pareto.scalarization_sweep(solve, np.geomspace(1e-3, 1e3, 20))
    # Along the sweep the data loss rises and the norm falls: every point is on the front.
    assert np.all(np.diff(out[:, 0]) > 0) and np.all(np.diff(out[:, 1]) < 0)
    assert len(pareto.pareto_front(out)) == 20
    with pytest.raises(ValueError, match="lambdas"):
        pareto.scalarization_sweep(solve, [-1.0])


def test_plotting_functions_return_labelled_figures():
    figs = [
        plotting.image_grid(torch.randint(0, 17, (12, 8, 8)), ncols=6, vmax=16),
        plotting.density_2d(lambda x: -0.5 * (x**2).sum(1)),
        plotting.samples_2d(torch.randn(100, 2)),
        plotting.pareto_plot(np.random.default_rng(0).random((20, 2))),
        plotting.curves({"train": [3.0, 2.0, 1.5], "val": [3.1, 2.4, 2.2]}),
    ]
    for fig in figs:
        assert isinstance(fig, matplotlib.figure.Figure)
    for fig in figs[1:]:
        ax = fig.axes[0]
        assert ax.get_xlabel() and ax.get_ylabel()
    plt.close("all")
    with pytest.raises(ValueError, match=r"shape \(B, H, W\)"):
        plotting.image_grid(torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"shape \(B, 2\)"):
        plotting.samples_2d(torch.zeros(3, 3))


def test_drawings_draw_boxes_and_arrows_and_name_a_bad_key():
    from selfsup.book import drawings

    boxes = {"x": drawings.Box(0.2, 0.5, "$x$", "data"), "f": drawings.Box(0.8, 0.5, "f")}
    fig = drawings.diagram(boxes, [drawings.Arrow("x", "f", text="forward")], title="t")
    assert [t.get_text() for t in fig.axes[0].texts][:2] == ["$x$", "f"]
    plt.close(fig)
    plt.close(drawings.taxonomy())
    with pytest.raises(ValueError, match=r"arrows\[0\] names box 'y'"):
        drawings.diagram(boxes, [drawings.Arrow("x", "y")])
    with pytest.raises(ValueError, match=r"boxes\['x'\].kind"):
        drawings.diagram({"x": drawings.Box(0.5, 0.5, "x", "cloud")})
    plt.close("all")
    # The names they had in selfsup.plotting still reach them.
    assert plotting.diagram is drawings.diagram and plotting.Box is drawings.Box
    from selfsup.plotting import Arrow, taxonomy

    assert Arrow is drawings.Arrow and taxonomy is drawings.taxonomy
