"""Plots of data and results: image grids, 2-D densities and samples, Pareto fronts,
curves. Every function returns the matplotlib Figure, labels its axes, and draws on a
given ``ax`` when one is passed.

The book's schematic drawings (:func:`diagram`, :class:`Box`, :class:`Arrow`,
:func:`taxonomy`) live in :mod:`selfsup.book.drawings`; the names here are kept for
code written before they moved.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from . import _checks as checks

# The drawings (Arrow, Box, diagram, taxonomy) live in selfsup.book.drawings and are
# served from here by the module's __getattr__ below, star-imports included.
__all__ = [  # noqa: F822 (the drawings come from __getattr__)
    "Arrow", "Box", "curves", "density_2d", "diagram", "image_grid", "pareto_plot",
    "samples_2d", "taxonomy",
]  # fmt: skip


def _numpy(x, name: str) -> np.ndarray:
    """``x`` as a float64 array; NaN and inf cannot be drawn, so they are refused."""
    return checks.array(x, name, min_len=0)


def _axes(ax, figsize):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def image_grid(
    images,
    ncols: int = 10,
    vmax: float | None = None,
    titles: Sequence[str] | None = None,
    ax=None,
    cmap: str = "gray_r",
    scale: float = 0.6,
):
    """Show images ``(B, H, W)`` (or ``(B, 1, H, W)``) in a grid with no axes.

    ``vmax`` is the largest pixel value (16 for digits, 255 for MNIST, 1 for binary
    images); by default the largest value present. Dark = high, as on paper.
    """
    arr = _numpy(images, "images").astype(np.float64)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3 or len(arr) == 0:
        raise ValueError(f"images must have shape (B, H, W) with B >= 1, got {arr.shape}")
    ncols = checks.integer(ncols, "ncols")
    scale = checks.number(scale, "scale", low=0, low_open=True)
    if vmax is not None:
        vmax = checks.number(vmax, "vmax", low=0, low_open=True)
    b, h, w = arr.shape
    ncols = min(ncols, b)
    nrows = math.ceil(b / ncols)
    canvas = np.full((nrows * (h + 1) - 1, ncols * (w + 1) - 1), np.nan)
    for k, img in enumerate(arr):
        r, c = divmod(k, ncols)
        canvas[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = img
    fig, ax = _axes(ax, (scale * ncols, scale * nrows + (0.3 if titles else 0)))
    ax.imshow(
        canvas,
        cmap=cmap,
        vmin=0,
        vmax=vmax if vmax is not None else np.nanmax(arr),
        interpolation="nearest",
    )
    ax.set_axis_off()
    if titles is not None:
        if len(titles) != b:
            raise ValueError(f"titles needs one entry per image ({b}), got {len(titles)}")
        for k, title in enumerate(titles):
            r, c = divmod(k, ncols)
            ax.text(
                c * (w + 1) + w / 2, r * (h + 1) - 0.5, title, ha="center", va="bottom", fontsize=7
            )
    return fig


def density_2d(
    log_prob: Callable[[torch.Tensor], torch.Tensor],
    xlim=(-3, 3),
    ylim=(-3, 3),
    resolution: int = 200,
    ax=None,
    title: str | None = None,
):
    """Heat map of ``exp(log_prob)`` on a grid; ``log_prob`` maps ``(B, 2)`` to ``(B,)`` nats."""
    xs = torch.linspace(*xlim, resolution)
    ys = torch.linspace(*ylim, resolution)
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    with torch.no_grad():
        logp = log_prob(pts)
    logp = _numpy(logp, "log_prob(grid)").reshape(resolution, resolution)
    fig, ax = _axes(ax, (4, 4))
    ax.imshow(np.exp(logp), origin="lower", extent=(*xlim, *ylim), cmap="viridis", aspect="equal")
    ax.set(xlabel="$x_1$", ylabel="$x_2$", title=title)
    return fig


def samples_2d(x, ax=None, title: str | None = None, xlim=(-3, 3), ylim=(-3, 3), **scatter):
    """Scatter plot of 2-D samples ``(B, 2)``."""
    arr = _numpy(x, "x")
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"x must have shape (B, 2), got {arr.shape}")
    fig, ax = _axes(ax, (4, 4))
    ax.scatter(
        arr[:, 0], arr[:, 1], s=scatter.pop("s", 2), alpha=scatter.pop("alpha", 0.5), **scatter
    )
    ax.set(xlabel="$x_1$", ylabel="$x_2$", title=title, xlim=xlim, ylim=ylim, aspect="equal")
    return fig


def pareto_plot(
    points,
    front=None,
    labels=("$L_1$", "$L_2$"),
    ax=None,
    title: str | None = None,
    annotate: Sequence[str] | None = None,
):
    """Scatter of 2-objective points with the Pareto front drawn as a staircase."""
    from .pareto import pareto_front

    pts = _numpy(points, "points").astype(np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (n, 2), got {pts.shape}")
    idx = pareto_front(pts) if front is None else np.asarray(front)
    fig, ax = _axes(ax, (4.5, 3.5))
    ax.scatter(pts[:, 0], pts[:, 1], s=12, color="0.6", label="candidates")
    f = pts[idx]
    ax.step(f[:, 0], f[:, 1], where="post", color="C3", lw=1.5)
    ax.scatter(f[:, 0], f[:, 1], s=18, color="C3", label="Pareto front", zorder=3)
    if annotate is not None:
        for (a, b), text in zip(pts, annotate, strict=True):
            ax.annotate(text, (a, b), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set(xlabel=labels[0], ylabel=labels[1], title=title)
    ax.legend(fontsize=8)
    return fig


def curves(
    series: Mapping[str, Sequence[float]],
    xlabel: str = "epoch",
    ylabel: str = "loss",
    x=None,
    ax=None,
    logy: bool = False,
    title: str | None = None,
):
    """Line plot of named series, e.g. ``{"train": h.train_loss, "val": h.val_loss}``."""
    if not series:
        raise ValueError("series must name at least one curve")
    fig, ax = _axes(ax, (5, 3.5))
    for name, values in series.items():
        v = _numpy(values, name).astype(np.float64)
        xs = np.arange(1, len(v) + 1) if x is None else _numpy(x, "x")
        ax.plot(xs, v, marker="o" if len(v) < 30 else None, ms=3, label=name)
    if logy:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    return fig


_MOVED = ("Arrow", "Box", "diagram", "taxonomy")


def __getattr__(name: str):
    """The drawings that moved to :mod:`selfsup.book.drawings`, still importable here
    (``plotting.diagram``, ``from selfsup.plotting import Box``); looked up on first use,
    since that module draws with this one's helpers."""
    if name in _MOVED:
        from .book import drawings

        return getattr(drawings, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
