"""Figures used across the book. Every function returns the matplotlib Figure,
labels its axes, and draws on a given ``ax`` when one is passed."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch

from . import _checks as checks

__all__ = [
    "Box",
    "Arrow",
    "curves",
    "density_2d",
    "diagram",
    "image_grid",
    "pareto_plot",
    "samples_2d",
    "taxonomy",
]


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


# ------------------------------------------------------------------ diagrams
# Boxes and arrows for the book's schematic figures (computation graphs, block
# diagrams, the taxonomy tree). One small vocabulary, so every diagram reads alike:
# a box's *kind* says what it is, an arrow's *kind* what flows along it.
_BOX_STYLE = {
    "data": dict(boxstyle="round,pad=0.4", fc="#e8f0fb", ec="#3b6fb6"),
    "op": dict(boxstyle="square,pad=0.4", fc="#f4f4f4", ec="#555555"),
    "random": dict(boxstyle="round,pad=0.4", fc="#fdf1dc", ec="#c07a00", ls="--"),
    "loss": dict(boxstyle="round4,pad=0.4", fc="#fbe5e5", ec="#b33a3a"),
    "group": dict(boxstyle="round,pad=0.4", fc="white", ec="#333333"),
    "note": dict(boxstyle="round,pad=0.3", fc="white", ec="none"),
}
_ARROW_STYLE = {
    "forward": dict(arrowstyle="-|>", color="#333333", lw=1.2),
    "gradient": dict(arrowstyle="-|>", color="#b33a3a", lw=1.4, ls="--"),
    "blocked": dict(arrowstyle="-[", color="#b33a3a", lw=1.4, ls=":"),
    "tree": dict(arrowstyle="-", color="#555555", lw=1.0),
}


@dataclass(frozen=True)
class Box:
    """A labelled box at ``(x, y)`` in axes units [0, 1]; ``kind`` is one of
    data, op, random (a random draw), loss, group or note."""

    x: float
    y: float
    text: str
    kind: str = "op"
    size: float = 9


@dataclass(frozen=True)
class Arrow:
    """An arrow from box ``start`` to box ``end`` (their keys). ``kind``: forward
    (computation), gradient (what backpropagation follows), blocked (a gradient that
    stops), tree (a plain edge). ``rad`` bends it; ``text`` labels its middle."""

    start: str
    end: str
    kind: str = "forward"
    text: str = ""
    rad: float = 0.0


def diagram(
    boxes: Mapping[str, Box],
    arrows: Sequence[Arrow] = (),
    ax=None,
    title: str | None = None,
    figsize=(8, 3),
):
    """Draw a block diagram: ``boxes`` by key, then ``arrows`` between their edges.

    Positions are in axes units, so a diagram looks the same at any figure size.
    """
    if not boxes:
        raise ValueError("boxes must name at least one box")
    fig, ax = _axes(ax, figsize)
    ax.set_axis_off()
    ax.set(xlim=(0, 1), ylim=(0, 1))
    artists = {}
    for key, box in boxes.items():
        kind = checks.choice(box.kind, f"boxes[{key!r}].kind", _BOX_STYLE)
        artists[key] = ax.text(
            box.x,
            box.y,
            box.text,
            ha="center",
            va="center",
            fontsize=box.size,
            transform=ax.transAxes,
            bbox=_BOX_STYLE[kind],
            zorder=3,
        )
    for i, arrow in enumerate(arrows):
        kind = checks.choice(arrow.kind, f"arrows[{i}].kind", _ARROW_STYLE)
        for end in (arrow.start, arrow.end):
            if end not in artists:
                raise ValueError(
                    f"arrows[{i}] names box {end!r}, which is not in boxes "
                    f"({', '.join(artists)}); add it or fix the key"
                )
        a, b = artists[arrow.start], artists[arrow.end]
        ax.annotate(
            "",
            xy=(0.5, 0.5),
            xycoords=b,
            xytext=(0.5, 0.5),
            textcoords=a,
            arrowprops=dict(
                **_ARROW_STYLE[kind],
                patchA=a.get_bbox_patch(),
                patchB=b.get_bbox_patch(),
                shrinkA=2,
                shrinkB=2,
                connectionstyle=f"arc3,rad={arrow.rad}",
                mutation_scale=14,
            ),
            # Above the boxes: a box's outline, which clips the arrow, is placed
            # only when the box is drawn, so the boxes must be drawn first.
            zorder=3.5,
        )
        if arrow.text:
            # The middle of matplotlib's arc3 curve, in display units: half-way from
            # the chord's middle to its control point (rad times the rotated chord).
            pa, pb = (
                ax.transAxes.transform((boxes[k].x, boxes[k].y)) for k in (arrow.start, arrow.end)
            )
            bend = arrow.rad * 0.5 * np.array([pb[1] - pa[1], pa[0] - pb[0]])
            mid = ax.transAxes.inverted().transform((pa + pb) / 2 + bend)
            ax.text(
                *mid,
                arrow.text,
                ha="center",
                va="center",
                fontsize=8,
                color=_ARROW_STYLE[kind]["color"],
                transform=ax.transAxes,
                bbox=dict(fc="white", ec="none", pad=0.5),
                zorder=4,
            )
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def taxonomy(ax=None):
    """The families of generative models by how they treat the density, after
    Goodfellow's 2016 NIPS tutorial, with the chapters of this book that cover each."""
    b = {
        "root": Box(0.50, 0.93, "generative models\n(trained on samples of $p$)", "group", 10),
        "explicit": Box(0.30, 0.74, "explicit density\n$q(x)$ is written down", "group"),
        "implicit": Box(0.82, 0.74, "implicit density\nonly samples of $q$", "group"),
        "tractable": Box(0.14, 0.52, "tractable:\n$\\log q(x)$ exact", "group"),
        "approx": Box(0.47, 0.52, "approximate:\na bound on $\\log q(x)$", "group"),
        "direct": Box(0.82, 0.52, "direct sampler", "group"),
        "ar": Box(0.02, 0.24, "autoregressive\nMADE, PixelCNN,\nImage GPT\n(Ch. 7)", "data", 8),
        "flow": Box(0.175, 0.24, "flows\nRealNVP (Ch. 8),\nflow matching\n(Ch. 13)", "data", 8),
        "vae": Box(
            0.335, 0.24, "variational\nVAE, VQ-VAE,\nhierarchical VAE\n(Ch. 5-6)", "data", 8
        ),
        "diffusion": Box(
            0.49, 0.24, "diffusion\nT latent layers,\nfixed encoder\n(Ch. 12)", "data", 8
        ),
        "bm": Box(0.64, 0.24, "Markov chain\nBoltzmann\nmachines", "data", 8),
        "gan": Box(0.82, 0.24, "GANs\n(Ch. 9)", "data", 8),
        "bn": Box(0.23, 0.04, "directed graphical models (Bayesian networks)", "note", 8),
        "mrf": Box(0.66, 0.04, "undirected graphical models", "note", 8),
    }
    tree = [
        ("root", "explicit"),
        ("root", "implicit"),
        ("explicit", "tractable"),
        ("explicit", "approx"),
        ("implicit", "direct"),
        ("tractable", "ar"),
        ("tractable", "flow"),
        ("approx", "vae"),
        ("approx", "diffusion"),
        ("approx", "bm"),
        ("direct", "gan"),
    ]
    notes = [("bn", "ar"), ("bn", "vae"), ("mrf", "bm")]  # which family is which graph
    edges = [Arrow(a, c, "tree") for a, c in tree] + [Arrow(a, c) for a, c in notes]
    return diagram(b, edges, ax=ax, figsize=(9, 5))
