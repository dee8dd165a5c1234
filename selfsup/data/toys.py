"""Six 2-D toy distributions, and the exact densities and entropies of three.

:func:`toy_2d` draws ``"moons"``, ``"circles"``, ``"8gaussians"``, ``"checkerboard"``,
``"pinwheel"`` or ``"swissroll"``. For ``"8gaussians"``, ``"checkerboard"`` and
``"moons"``, :func:`toy_2d_log_prob` and :func:`toy_2d_entropy` give the exact density
and entropy, the floor that no model's test NLL can beat.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from .. import _checks as checks

__all__ = [
    "EIGHT_GAUSSIANS_RADIUS",
    "EIGHT_GAUSSIANS_STD",
    "MOONS_NOISE",
    "MOONS_SCALE",
    "MOONS_SHIFT",
    "TOY_2D",
    "eight_gaussian_centres",
    "toy_2d",
    "toy_2d_entropy",
    "toy_2d_log_prob",
]

TOY_2D = ("moons", "circles", "8gaussians", "checkerboard", "pinwheel", "swissroll")
EIGHT_GAUSSIANS_RADIUS = 2.0
EIGHT_GAUSSIANS_STD = 0.2


def eight_gaussian_centres() -> np.ndarray:
    """The eight modes of ``toy_2d("8gaussians", ...)``, ``(8, 2)``, evenly spaced on a
    circle of radius :data:`EIGHT_GAUSSIANS_RADIUS`."""
    angles = np.arange(8) * np.pi / 4
    return EIGHT_GAUSSIANS_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)


_eight_gaussian_centres = eight_gaussian_centres  # its earlier, private name


def _checkerboard_squares() -> np.ndarray:
    """Lower-left corners of the 8 black unit squares of a 4x4 board on [-2, 2]^2."""
    return np.array([(i - 2, j - 2) for i in range(4) for j in range(4) if (i + j) % 2 == 0], float)


def toy_2d(name: str, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` samples of a 2-D toy distribution, a float32 tensor ``(n, 2)``.

    ``name`` is one of ``"moons"``, ``"circles"``, ``"8gaussians"`` (eight
    Gaussians of std 0.2 on a circle of radius 2), ``"checkerboard"`` (uniform on
    the 8 black squares of a 4x4 board on ``[-2, 2]^2``), ``"pinwheel"`` and
    ``"swissroll"``. All are scaled to roughly ``[-3, 3]^2``.
    """

    checks.choice(name, "name", TOY_2D)
    n = checks.integer(n, "n")
    rng = np.random.default_rng(checks.integer(seed, "seed", low=0))
    if name == "moons":
        from sklearn.datasets import make_moons

        x, _ = make_moons(n, noise=MOONS_NOISE, random_state=seed)
        x = (x - MOONS_SHIFT) * MOONS_SCALE
    elif name == "circles":
        from sklearn.datasets import make_circles

        x, _ = make_circles(n, factor=0.5, noise=0.05, random_state=seed)
        x = x * 2.0
    elif name == "8gaussians":
        centres = eight_gaussian_centres()[rng.integers(0, 8, n)]
        x = centres + EIGHT_GAUSSIANS_STD * rng.standard_normal((n, 2))
    elif name == "checkerboard":
        corners = _checkerboard_squares()[rng.integers(0, 8, n)]
        x = corners + rng.random((n, 2))
    elif name == "pinwheel":
        arms, radial_std, tangential_std, rate = 5, 0.3, 0.1, 0.25
        labels = rng.integers(0, arms, n)
        feats = rng.standard_normal((n, 2)) * [radial_std, tangential_std] + [1.0, 0.0]
        angles = labels * 2 * np.pi / arms + rate * np.exp(feats[:, 0])
        rot = np.stack([np.cos(angles), -np.sin(angles), np.sin(angles), np.cos(angles)], 1)
        x = 2.0 * np.einsum("ni,nij->nj", feats, rot.reshape(n, 2, 2))
    else:  # swissroll
        from sklearn.datasets import make_swiss_roll

        x, _ = make_swiss_roll(n, noise=1.0, random_state=seed)
        x = x[:, [0, 2]] / 5.0
    return torch.as_tensor(x, dtype=torch.float32)


_EXACT = ("8gaussians", "checkerboard", "moons")
MOONS_NOISE, MOONS_SCALE, MOONS_SHIFT = 0.05, 1.5, (0.5, 0.25)


def _moons_log_prob(pts: torch.Tensor, nodes: int = 1000) -> torch.Tensor:
    """log density of the moons generator by quadrature over the arc parameter.

    make_moons puts points evenly along two half circles (angle theta in [0, pi],
    half of the points on each) and adds N(0, noise^2) to each coordinate; we
    integrate the Gaussian over theta with the trapezoid rule (``nodes`` points, far
    finer than the noise), in float64.
    """
    theta = torch.linspace(0, math.pi, nodes, dtype=torch.float64)
    outer = torch.stack([torch.cos(theta), torch.sin(theta)], 1)
    inner = torch.stack([1 - torch.cos(theta), 1 - torch.sin(theta) - 0.5], 1)
    shift = torch.tensor(MOONS_SHIFT, dtype=torch.float64)
    centres = (torch.cat([outer, inner]) - shift) * MOONS_SCALE  # (2 nodes, 2)
    sigma2 = (MOONS_NOISE * MOONS_SCALE) ** 2
    weights = torch.full((nodes,), 1.0 / (nodes - 1), dtype=torch.float64)
    weights[[0, -1]] /= 2  # trapezoid rule for the mean over theta
    log_w = torch.log(torch.cat([weights, weights]) / 2)  # each moon has probability 1/2
    # -|p - c|^2 / (2 s^2) = (p.c - |c|^2 / 2) / s^2 - |p|^2 / (2 s^2): one product per
    # chunk of points instead of their differences to every node.
    scaled = centres.T / sigma2  # (2, 2 nodes)
    offset = log_w - (centres**2).sum(1) / (2 * sigma2)
    finite = torch.isfinite(pts).all(1)  # an infinite coordinate has density 0
    pts = torch.where(finite[:, None], pts, 0.0)
    out = []
    for chunk in pts.split(4096):
        log_terms = torch.addmm(offset, chunk, scaled)
        out.append(
            torch.logsumexp(log_terms, 1)
            - (chunk**2).sum(1) / (2 * sigma2)
            - math.log(2 * math.pi * sigma2)
        )
    return torch.where(finite, torch.cat(out), -math.inf)


def toy_2d_log_prob(name: str, x) -> torch.Tensor:
    """Exact log density (nats) of a toy distribution at points ``x`` ``(B, 2)``.

    Closed form for ``"8gaussians"`` and ``"checkerboard"`` (``-inf`` outside the
    checkerboard's support); for ``"moons"`` a one-dimensional quadrature over the
    arcs, accurate to about 1e-3 nats.
    """
    if name not in _EXACT:
        raise ValueError(f"no closed-form density for {name!r}; exact ones: {_EXACT}")
    where = x.device if isinstance(x, torch.Tensor) else torch.device("cpu")
    pts = torch.as_tensor(x).detach().to("cpu", torch.float64)  # a reference: on the CPU
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"x must have shape (B, 2), got {tuple(pts.shape)}")
    if torch.isnan(pts).any():
        raise ValueError("x contains NaN")
    if name == "8gaussians":
        centres = torch.as_tensor(eight_gaussian_centres())
        sq = ((pts[:, None, :] - centres[None]) ** 2).sum(-1)
        s2 = EIGHT_GAUSSIANS_STD**2
        log_comp = -sq / (2 * s2) - math.log(2 * math.pi * s2)
        out = torch.logsumexp(log_comp, dim=1) - math.log(8)
    elif name == "moons":
        out = _moons_log_prob(pts)
    else:
        cell = torch.floor(pts)
        inside = (pts.abs() <= 2).all(1) & ((cell[:, 0] + cell[:, 1]) % 2 == 0)
        out = torch.where(inside, torch.full_like(pts[:, 0], -math.log(8)), -math.inf)
    return out.float().to(where)


@functools.cache
def toy_2d_entropy(name: str) -> float:
    """Differential entropy (nats) of ``"8gaussians"``, ``"checkerboard"`` or ``"moons"``.

    Checkerboard: uniform on area 8, so ``log 8``. 8gaussians: the modes are
    7.6 standard deviations apart, so the mixture's entropy equals
    ``log 8 + log(2 pi e sigma^2)`` up to overlap terms far below 1e-6 nats.
    Moons: a Monte Carlo average of ``-log p`` over 20,000 samples (seed 12345)
    with the quadrature density; its standard error is about 0.006 nats.
    """
    if name == "checkerboard":
        return math.log(8)
    if name == "8gaussians":
        return math.log(8) + math.log(2 * math.pi * math.e * EIGHT_GAUSSIANS_STD**2)
    if name == "moons":
        x = toy_2d(name, 20_000, seed=12345).double()
        return float(-_moons_log_prob(x).mean())
    raise ValueError(f"no closed-form entropy for {name!r}; exact ones: {_EXACT}")
