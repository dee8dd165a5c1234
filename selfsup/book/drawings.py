"""The book's schematic drawings: block diagrams and the taxonomy of generative models.

Boxes and arrows for the book's computation graphs and block diagrams, and the
taxonomy tree of its introduction (drawn by ``book/_ext/selfsup_book.py``). One small
vocabulary, so every diagram reads alike: a box's *kind* says what it is, an arrow's
*kind* what flows along it. They serve the book's figures, not a user's model; data
plots are in :mod:`selfsup.plotting`. Every function returns the matplotlib Figure
and draws on a given ``ax`` when one is passed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .. import _checks as checks
from ..plotting import _axes

__all__ = ["Arrow", "Box", "diagram", "taxonomy"]

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
