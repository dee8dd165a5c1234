"""Flow matching: a continuous normalizing flow trained by regression.

A velocity field ``v(x, s)`` defines an ODE ``dx/ds = v(x, s)``; its solution map from
``s = 0`` to ``s = 1`` is invertible for *any* (Lipschitz) ``v``, so it is a flow in the
sense of :mod:`selfsup.models.flows`, with infinitely many infinitesimal layers. The
change of variables becomes the **instantaneous change of variables** (Chen et al.
2018)::

    d/ds log p_s(x_s) = -div v(x_s, s),

so ``log p_1(x) = log N(x_0; 0, I) - int_0^1 div v(x_s, s) ds`` along the path that
ends at ``x_1 = x`` (:func:`ode_log_prob`).

Conventions (Lipman et al. 2023): time ``s`` runs from ``s = 0``, the noise
``N(0, I)``, to ``s = 1``, the data. Flow matching (Lipman et al. 2023; rectified
flow, Liu et al. 2023; stochastic interpolants, Albergo & Vanden-Eijnden 2023) trains
``v`` without solving the ODE: it regresses ``v(x_s, s)`` on the velocity of a
*conditional* path from a noise draw ``x_0`` to a data point ``x_1``
(:func:`linear_path`), whose minimiser is the marginal velocity field that carries
``N(0, I)`` to the data.

The pieces are small functions, one per idea: the path, the solvers' single steps
(:func:`euler_step`, :func:`midpoint_step`, :func:`rk4_step`), a fixed-step
:func:`odeint`, the likelihood :func:`ode_log_prob` of any velocity field, and
:func:`diffusion_log_prob`, the same likelihood for a diffusion model's
probability-flow ODE. :class:`FlowMatching` puts them together under the book's model
protocol.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .. import _checks as checks
from .. import tensors
from ..saving import Saveable
from .layers import TimeMLP

__all__ = [
    "DEFAULT_STEPS",
    "EXACT_UP_TO",
    "EVALUATIONS",
    "SOLVERS",
    "FlowMatching",
    "VelocityMLP",
    "diffusion_log_prob",
    "euler_step",
    "linear_path",
    "midpoint_step",
    "mixture_velocity",
    "ode_log_prob",
    "odeint",
    "rk4_step",
    "straightness",
]

#: A velocity field: ``x`` ``(B, d)`` and times ``s`` ``(B,)`` to ``dx/ds`` ``(B, d)``.
Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: The right-hand side a solver steps: a state and a time (a Python float) to its rate.
Field = Callable[[torch.Tensor, float], torch.Tensor]


# ----------------------------------------------------------------------- the path


def linear_path(
    x0: torch.Tensor, x1: torch.Tensor, s: torch.Tensor, sigma_min: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The conditional path from noise ``x0`` to data ``x1`` and its velocity.

    ``x_s = (1 - (1 - sigma_min) s) x0 + s x1`` and ``u_s = dx_s/ds = x1 - (1 - sigma_min)
    x0``: the optimal-transport path of Lipman et al. (2023), a straight line at constant
    speed. With ``sigma_min = 0`` it is rectified flow's interpolation (Liu et al. 2023)
    and ends exactly at ``x1``; with ``sigma_min > 0`` it ends at ``x1 + sigma_min x0``,
    so the model learns the data blurred by ``N(0, sigma_min^2 I)``.

    Args:
        x0: noise draws ``(B, d)``, from ``N(0, I)``.
        x1: data points ``(B, d)``, in the model's space.
        s: times ``(B,)`` in ``[0, 1]``.
        sigma_min: the width of the path's end around ``x1``, in ``[0, 1)``.
    Returns:
        ``(x_s, u_s)``, both ``(B, d)``.
    """
    if x0.shape != x1.shape or x0.ndim != 2:
        raise ValueError(
            f"x0 and x1 must both have shape (B, d), got {tuple(x0.shape)} and {tuple(x1.shape)}"
        )
    if s.shape != (len(x0),):
        raise ValueError(
            f"s must have shape ({len(x0)},), one time per example, got {tuple(s.shape)}"
        )
    # BEGIN SOLUTION
    t = s[:, None]
    x_s = (1 - (1 - sigma_min) * t) * x0 + t * x1
    u_s = x1 - (1 - sigma_min) * x0
    return x_s, u_s
    # END SOLUTION


def mixture_velocity(
    x: torch.Tensor,
    s: torch.Tensor,
    means: torch.Tensor,
    std: float,
    weights: torch.Tensor | None = None,
    sigma_min: float = 0.0,
) -> torch.Tensor:
    """The marginal velocity field of :func:`linear_path` when the data are a mixture of
    isotropic Gaussians ``sum_k w_k N(means[k], std^2 I)``, in closed form.

    Given component ``k``, ``x_s`` is Gaussian with mean ``s mu_k`` and variance
    ``c = a^2 + s^2 std^2`` per dimension (``a = 1 - (1 - sigma_min) s``), and the
    conditional velocity's mean given ``x_s = x`` is linear in ``x``:
    ``mu_k + (s std^2 - (1 - sigma_min) a) (x - s mu_k) / c``. The marginal field is
    their average under the posterior weights of the components at ``x``: the field
    that flow matching's regression converges to.

    Args:
        x: points ``(B, d)``; s: times ``(B,)`` in ``[0, 1]``.
        means: ``(K, d)``; std: the components' standard deviation (> 0);
        weights: ``(K,)`` summing to 1 (default: equal).
    Returns:
        ``(B, d)``.
    """
    means = checks.tensor(means, "means", ndim=2, dtype="float").to(x.device, x.dtype)
    std = checks.number(std, "std", low=0.0, low_open=True)
    k, d = means.shape
    if weights is None:
        log_w = means.new_full((k,), -math.log(k))
    else:
        log_w = checks.tensor(weights, "weights", ndim=1, dtype="float").to(x.device, x.dtype).log()
    a = 1 - (1 - sigma_min) * s  # (B,)
    c = a**2 + (s * std) ** 2  # (B,): the variance of x_s given the component
    diff = x[:, None, :] - s[:, None, None] * means[None]  # (B, K, d)
    logits = log_w - 0.5 * (diff**2).sum(-1) / c[:, None]  # the posterior's logits
    posterior = torch.softmax(logits, 1)  # (B, K)
    slope = (s * std**2 - (1 - sigma_min) * a) / c  # (B,)
    u_k = means[None] + slope[:, None, None] * diff  # (B, K, d)
    return (posterior[..., None] * u_k).sum(1)


# -------------------------------------------------------------------- the solvers


def euler_step(f: Field, x: torch.Tensor, s: float, h: float) -> torch.Tensor:
    """One Euler step of ``dx/ds = f(x, s)`` from time ``s`` to ``s + h`` (``h < 0``
    goes back in time): ``x + h f(x, s)``. One evaluation of ``f``, error O(h^2) a step."""
    return x + h * f(x, s)


def midpoint_step(f: Field, x: torch.Tensor, s: float, h: float) -> torch.Tensor:
    """One explicit midpoint step: the slope at a half Euler step. Two evaluations of
    ``f``, error O(h^3) a step."""
    return x + h * f(x + (h / 2) * f(x, s), s + h / 2)


def rk4_step(f: Field, x: torch.Tensor, s: float, h: float) -> torch.Tensor:
    """One step of the classical fourth-order Runge-Kutta method. Four evaluations of
    ``f``, error O(h^5) a step."""
    k1 = f(x, s)
    k2 = f(x + (h / 2) * k1, s + h / 2)
    k3 = f(x + (h / 2) * k2, s + h / 2)
    k4 = f(x + h * k3, s + h)
    return x + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)


SOLVERS: dict[str, Callable[[Field, torch.Tensor, float, float], torch.Tensor]] = {
    "euler": euler_step,
    "midpoint": midpoint_step,
    "rk4": rk4_step,
}
"""The fixed-step solvers by name."""
EVALUATIONS = {"euler": 1, "midpoint": 2, "rk4": 4}
"""Evaluations of the velocity per step, by solver."""
DEFAULT_STEPS = {"euler": 100, "midpoint": 50, "rk4": 25}
"""Default number of steps by solver: about 100 evaluations of the velocity each."""
EXACT_UP_TO = 256
""":meth:`FlowMatching.log_prob`'s default divergence is exact up to this many dimensions
(the toys, the 8x8 digits) and Hutchinson's estimate above (MNIST's 784 dimensions
would take 784 vector-Jacobian products per evaluation)."""


def _solver(solver: str, steps: int | None) -> tuple[Callable, int]:
    solver = checks.choice(solver, "solver", tuple(SOLVERS))
    if steps is None:
        return SOLVERS[solver], DEFAULT_STEPS[solver]
    return SOLVERS[solver], checks.integer(steps, "steps", fix="pass steps=1 or more")


def odeint(
    f: Field,
    x: torch.Tensor,
    s0: float,
    s1: float,
    steps: int,
    solver: str = "euler",
    *,
    path: bool = False,
) -> torch.Tensor:
    """Solve ``dx/ds = f(x, s)`` from ``x`` at time ``s0`` to time ``s1`` in ``steps``
    equal steps of ``solver`` (``"euler"``, ``"midpoint"`` or ``"rk4"``).

    The times are Python floats, so the loop never reads the device: a sampler built on
    it queues all its steps on a GPU without waiting. Returns the state at ``s1``, of
    ``x``'s shape, or with ``path`` every state ``(steps + 1, *x.shape)``.
    """
    step, steps = _solver(solver, steps)
    s0 = checks.number(s0, "s0")
    s1 = checks.number(s1, "s1")
    h = (s1 - s0) / steps
    states = [x]
    for k in range(steps):
        x = step(f, x, s0 + k * h, h)
        if path:
            states.append(x)
    return torch.stack(states) if path else x


def straightness(path: torch.Tensor) -> torch.Tensor:
    """How far an ODE's paths are from straight lines (Liu et al. 2023), per path.

    ``S = int_0^1 |(x_1 - x_0) - dx_s/ds|^2 ds``, estimated from the states of
    ``steps`` equal steps (``path`` ``(steps + 1, B, d)``, e.g. from
    :meth:`FlowMatching.trajectory`) with the finite differences of the states. It is 0
    for paths at constant velocity, which one Euler step follows exactly. Returns
    ``(B,)``, in squared units of the model's space.
    """
    path = checks.tensor(path, "path", ndim=3, min_len=2, dtype="float")
    steps = len(path) - 1
    chord = path[-1] - path[0]  # (B, d)
    speed = (path[1:] - path[:-1]) * steps  # (steps, B, d): dx/ds on each step
    return ((speed - chord) ** 2).sum(-1).mean(0)


# ---------------------------------------------------------------- the likelihood


def _standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * (z**2).sum(-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)


def _batched_vjp(
    v: torch.Tensor, y: torch.Tensor, vectors: torch.Tensor, create_graph: bool
) -> torch.Tensor:
    """``vectors[k]^T dv/dy`` for each of the ``K`` rows of ``vectors`` ``(K, B, d)``:
    one vector-Jacobian product each, batched with ``vmap`` (a loop where an operator
    has no batching rule). Returns ``(K, B, d)``."""
    try:
        (rows,) = torch.autograd.grad(
            v, y, vectors, retain_graph=True, create_graph=create_graph,
            is_grads_batched=True, allow_unused=True,
        )  # fmt: skip
    except RuntimeError:  # an operator without a vmap rule: one product at a time
        rows = []
        for vector in vectors:
            (row,) = torch.autograd.grad(
                v, y, vector, retain_graph=True, create_graph=create_graph, allow_unused=True
            )
            rows.append(torch.zeros_like(y) if row is None else row)
        return torch.stack(rows)
    return torch.zeros_like(vectors) if rows is None else rows


#: Entries of the batched one-hot vectors of the exact divergence, at most (memory bound).
_EXACT_CHUNK = 2**22


def _divergence(
    v: torch.Tensor, y: torch.Tensor, probes: torch.Tensor | None, create_graph: bool
) -> torch.Tensor:
    """``div v = tr dv/dy`` per example ``(B,)``: exact with ``probes=None`` (one
    vector-Jacobian product per dimension, in chunks), else Hutchinson's estimate
    ``mean_k eps_k^T (dv/dy) eps_k`` over the probes ``(K, B, d)``."""
    batch, d = v.shape
    if probes is not None:
        rows = _batched_vjp(v, y, probes, create_graph)
        return (rows * probes).sum(-1).mean(0)
    eye = torch.eye(d, device=v.device, dtype=v.dtype)
    per_chunk = max(1, _EXACT_CHUNK // max(1, batch * d))
    total = v.new_zeros(batch)
    for block in eye.split(per_chunk):  # (c, d): the one-hot vectors e_i of this chunk
        vectors = block[:, None, :].expand(len(block), batch, d)
        rows = _batched_vjp(v, y, vectors, create_graph)  # rows[i, b] = e_i^T J_b
        total = total + (rows * vectors).sum((0, 2))  # sum_i J_b[i, i]
    return total


def _draw_probes(shape: tuple[int, ...], kind: str, generator, device, dtype) -> torch.Tensor:
    """Hutchinson probes with mean 0 and covariance I: Rademacher signs or Gaussians."""
    if kind == "gaussian":
        return tensors.randn(shape, generator, device).to(dtype)
    return (tensors.rand(shape, generator, device) < 0.5).to(dtype) * 2 - 1


def ode_log_prob(
    velocity: Velocity,
    x: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    steps: int | None = None,
    solver: str = "rk4",
    divergence: str = "exact",
    probes: int = 1,
    probe: str = "rademacher",
) -> torch.Tensor:
    """``log p_1(x)`` in nats ``(B,)``: the density at ``s = 1`` of the flow
    ``dx/ds = velocity(x, s)`` that starts from ``N(0, I)`` at ``s = 0``.

    It solves the ODE backwards from ``x`` at ``s = 1`` to ``x_0`` at ``s = 0``,
    together with the integral of the divergence (the instantaneous change of
    variables), and returns ``log N(x_0; 0, I) - int_0^1 div velocity(x_s, s) ds``.

    Args:
        velocity: ``(x (B, d), s (B,)) -> (B, d)``, differentiable in ``x``.
        x: points ``(B, d)``.
        generator: draws the Hutchinson probes (once per call, fixed along the path).
        steps, solver: the fixed-step solver (default 25 steps of ``"rk4"``).
        divergence: ``"exact"``, the trace of the Jacobian from one vector-Jacobian
            product per dimension (``d`` products, batched); or ``"hutchinson"``, the
            unbiased estimate ``eps^T J eps`` with ``probes`` random vectors ``eps``
            (``probe``: ``"rademacher"`` signs or ``"gaussian"``), one product each.
            Both integrate the same path, so the estimate's mean is the exact value.
    Called under ``torch.no_grad()`` it returns a value without a graph (the Jacobian
    products enable gradients inside); otherwise it can be differentiated with respect
    to ``velocity``'s parameters and ``x``.
    """
    x = checks.tensor(x, "x", ndim=2, min_len=0, dtype="float", what="points (B, d)")
    _solver(solver, steps)
    checks.choice(divergence, "divergence", ("exact", "hutchinson"))
    probes = checks.integer(probes, "probes")
    checks.choice(probe, "probe", ("rademacher", "gaussian"))
    generator = checks.generator(generator)
    batch, d = x.shape
    if batch == 0:
        return x.new_zeros(0)
    eps = None
    if divergence == "hutchinson":
        eps = _draw_probes((probes, batch, d), probe, generator, x.device, x.dtype)
    keep = torch.is_grad_enabled()

    def augmented(state: torch.Tensor, s: float) -> torch.Tensor:
        # State (B, d + 1): the point and the running integral of the divergence.
        y = state[:, :d]
        with torch.enable_grad():
            if not y.requires_grad:
                y = y.detach().requires_grad_(True)
            v = velocity(y, y.new_full((batch,), s))
            div = _divergence(v, y, eps, create_graph=keep)
        if not keep:
            v, div = v.detach(), div.detach()
        return torch.cat([v, div[:, None]], 1)

    start = torch.cat([x, x.new_zeros(batch, 1)], 1)
    with checks.trusted():  # the input is checked; the steps read nothing
        end = odeint(augmented, start, 1.0, 0.0, steps, solver)
    # Going back from s = 1 to 0, the last column gathers int_1^0 div = -int_0^1 div.
    return _standard_normal_log_prob(end[:, :d]) + end[:, d]


def diffusion_log_prob(
    diffusion,
    x: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    steps: int | None = None,
    solver: str = "rk4",
    divergence: str = "exact",
    probes: int = 1,
    probe: str = "rademacher",
) -> torch.Tensor:
    """The log-likelihood of a diffusion model's probability-flow ODE, in nats ``(B,)``.

    A diffusion model (:class:`selfsup.models.diffusion.Diffusion`) runs its time ``t``
    from the data (``t = 0``) to the prior ``N(0, I)`` (``t = 1``) and gives the velocity
    of its probability-flow ODE, ``diffusion.ode_velocity(z, t)``. In this module's time,
    ``s = 1 - t``, that is the flow ``v(z, s) = -ode_velocity(z, 1 - s)`` from
    ``N(0, I)`` to the data, and :func:`ode_log_prob` gives its density. It is the
    diffusion model's density only where its score is exact, so it is neither above
    nor below the model's ELBO in general.

    Integer images (``diffusion.levels``) are dequantized inside the model's space,
    ``y = diffusion.scale(x) + bin_width (w - 1/2)`` with ``w ~ U[0, 1)^d`` drawn with
    ``generator``, and ``d log(bin_width)`` is added: a one-draw estimate of a lower
    bound on ``log P(x)``, the discrete log-likelihood, as for every continuous model of
    the book. Continuous data are scored in the model's space (``diffusion.scale(x)``).
    The other arguments are :func:`ode_log_prob`'s.
    """
    for name in ("d", "levels", "scale", "bin_width", "ode_velocity"):
        if not hasattr(diffusion, name):
            raise checks.InputTypeError(
                f"diffusion must be a diffusion model with d, levels, scale, bin_width and "
                f"ode_velocity (selfsup.models.diffusion.Diffusion), got "
                f"{checks.describe(diffusion)} without {name}"
            )
    generator = checks.generator(generator)
    y = diffusion.scale(x)
    shift = 0.0
    if diffusion.levels is not None:
        width = float(diffusion.bin_width)
        u = tensors.rand(tuple(y.shape), generator, y.device).to(y.dtype)
        y = y + width * (u - 0.5)
        shift = y.shape[-1] * math.log(width)

    def velocity(z: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return -diffusion.ode_velocity(z, 1 - s)

    log_p = ode_log_prob(
        velocity, y, generator=generator, steps=steps, solver=solver,
        divergence=divergence, probes=probes, probe=probe,
    )  # fmt: skip
    return log_p + shift


# -------------------------------------------------------------------- the model


class VelocityMLP(Saveable, nn.Module):
    """The default velocity network: a :class:`~selfsup.models.layers.TimeMLP` of the
    flattened example and of the time ``s``, slowed down by ``time_scale``.

    ``TimeMLP``'s sinusoidal features oscillate up to 1000 half-turns per unit of
    their input, which a diffusion needs to tell its noise levels apart. A velocity
    field that oscillates that fast in ``s`` defeats a solver with tens of steps (the
    likelihood of a random network moves by nats between 25 and 400 RK4 steps), so the
    flow feeds it ``time_scale * s``: the fastest feature then turns 5 times over
    ``[0, 1]``, and 25 RK4 steps reach the converged likelihood to about 1e-5 nats.
    """

    def __init__(self, d: int, hidden: Sequence[int] = (256, 256), time_scale: float = 0.01):
        super().__init__()
        self.mlp = TimeMLP(d, hidden)
        self.time_scale = checks.number(time_scale, "time_scale", low=0.0, low_open=True)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """``(B, d)`` velocities at ``x`` ``(B, d)`` and times ``s`` ``(B,)``."""
        return self.mlp(x, s * self.time_scale)


class FlowMatching(Saveable, nn.Module):
    """A continuous normalizing flow trained by conditional flow matching.

    Args:
        shape: one example's shape, e.g. ``(2,)`` or ``(8, 8)``.
        levels: ``None`` for continuous data; an integer for images with grey levels
            ``0..levels-1`` (the data set's integer images), which the model
            dequantizes inside, ``y = x + w`` with ``w ~ U[0, 1)``, and maps to about
            ``[-1, 1]`` by the affine map ``(2 / levels) y - 1``. Its ``log_prob`` is
            then the density of ``y`` on the grey-level scale (the map's log-Jacobian
            ``d log(2 / levels)`` included): a lower bound on the discrete
            log-likelihood, comparable with RealNVP's in :mod:`selfsup.models.flows`.
        hidden: widths of the default velocity network, a :class:`VelocityMLP` of the
            flattened example and the time.
        sigma_min: the end width of the conditional paths (:func:`linear_path`): 0
            (the default) is rectified flow's straight line to each data point;
            Lipman et al. use a small positive value, which makes the model's data the
            training data blurred by ``N(0, sigma_min^2 I)`` in the model's space.
        network: a velocity network ``(x (B, d), s (B,)) -> (B, d)`` to use instead.

    Time ``s`` runs from the noise ``N(0, I)`` (``s = 0``) to the data (``s = 1``).
    Sampling, encoding and decoding solve the ODE with a fixed-step solver
    (:data:`SOLVERS`); ``log_prob`` adds the integral of the divergence.
    """

    def __init__(
        self,
        shape: Sequence[int],
        levels: int | None = None,
        *,
        hidden: Sequence[int] = (256, 256),
        sigma_min: float = 0.0,
        network: nn.Module | None = None,
    ):
        super().__init__()
        self.shape = checks.sizes(shape, "shape", allow_empty=False, example="(2,)")
        self.d = math.prod(self.shape)
        self.levels = None if levels is None else checks.integer(levels, "levels", low=2)
        self.sigma_min = checks.number(sigma_min, "sigma_min", low=0.0, high=1.0, high_open=True)
        if network is None:
            hidden = checks.sizes(hidden, "hidden", allow_empty=False, example="(256, 256)")
            network = VelocityMLP(self.d, hidden)
        elif not isinstance(network, nn.Module):
            raise checks.InputTypeError(
                f"network must be an nn.Module mapping (x (B, {self.d}), s (B,)) to "
                f"(B, {self.d}), got {checks.describe(network)}"
            )
        self.net = network

    # ---------------------------------------------------------------- the spaces

    @property
    def bin_width(self) -> float | None:
        """The width of one grey level in the model's space, ``2 / levels`` (None for
        continuous data)."""
        return None if self.levels is None else 2.0 / self.levels

    def _param(self) -> torch.Tensor:
        return next(self.parameters())

    def _to_model(
        self, x, name: str = "x", generator=None, *, centre: bool = False, min_len: int = 0
    ):
        """Data ``(B, *shape)`` to the model's space ``(B, d)`` on the model's device.
        Integer images are dequantized with ``generator`` (or at each bin's centre)."""
        p = self._param()
        if self.levels is None:
            x = checks.tensor(x, name, shape=self.shape, min_len=min_len, dtype="float")
            return x.reshape(len(x), self.d).to(p.device, p.dtype)
        x = checks.images(x, name, self.shape, "levels", self.levels, min_len=min_len)
        x = x.reshape(len(x), self.d).to(p.device)
        if centre:
            u = 0.5
        else:
            u = tensors.rand((len(x), self.d), generator, p.device).to(p.dtype)
        return (x.to(p.dtype) + u) * self.bin_width - 1

    @property
    def log_jacobian(self) -> float:
        """``log |det|`` of the map from the data's scale to the model's space, in nats:
        ``d log(2 / levels)`` for images, 0 for continuous data."""
        return 0.0 if self.levels is None else self.d * math.log(self.bin_width)

    def dequantize(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The data ``(B, *shape)`` as points ``(B, d)`` of the model's space, on its
        device: integer images dequantized with uniform noise drawn with ``generator``
        and mapped by ``(2 / levels)(x + w) - 1``; continuous data flattened.

        ``log_prob(x)`` is ``ode_log_prob(self.velocity, self.dequantize(x)) +
        self.log_jacobian`` with the same draws of the noise."""
        return self._to_model(x, "x", checks.generator(generator))

    def _field(self, x: torch.Tensor, s: float) -> torch.Tensor:
        return self.net(x, x.new_full((len(x),), s))

    def _latent(self, z, name: str = "z") -> torch.Tensor:
        p = self._param()
        z = checks.tensor(z, name, shape=(self.d,), min_len=0, dtype="float")
        return z.to(p.device, p.dtype)

    # ---------------------------------------------------------------- the protocol

    def velocity(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """The learned velocity ``v(x, s)`` ``(B, d)`` at points ``x`` ``(B, d)`` of the
        model's space and times ``s`` ``(B,)`` (0: noise, 1: data), on the model's
        device (inputs from the CPU are moved there)."""
        p = self._param()
        return self.net(x.to(p.device, p.dtype), s.to(p.device, p.dtype))

    def loss(self, batch) -> torch.Tensor:
        """The conditional flow matching loss: ``E |v(x_s, s) - u_s|^2``, the mean over
        examples and dimensions, with ``s ~ U[0, 1]``, ``x_0 ~ N(0, I)`` and the
        path of :func:`linear_path` to each example of ``batch``.

        ``batch`` is a batch of the data (integer images, dequantized here with fresh
        noise), or a pair ``(x0, x1)`` of noise and model-space points from
        :meth:`reflow_pairs`: reflow trains on those couplings instead of independent
        noise. Its minimum is not 0: the conditional target varies around the marginal
        velocity, whose regression has the same gradients (Lipman et al., Theorem 2).
        """
        if isinstance(batch, (tuple, list)):
            if len(batch) != 2:
                raise ValueError(
                    f"batch must be the data or a pair (x0, x1) from reflow_pairs, got a "
                    f"sequence of {len(batch)}"
                )
            p = self._param()
            x0 = checks.tensor(batch[0], "batch[0]", shape=(self.d,), dtype="float")
            x1 = checks.tensor(batch[1], "batch[1]", shape=(self.d,), dtype="float")
            if len(x0) != len(x1):
                raise ValueError(
                    f"batch[0] and batch[1] must pair one noise with one point each, got "
                    f"{len(x0)} and {len(x1)}"
                )
            x0, x1 = x0.to(p.device, p.dtype), x1.to(p.device, p.dtype)
        else:
            x1 = self._to_model(batch, "batch", min_len=1)
            x0 = torch.randn_like(x1)
        s = torch.rand(len(x1), device=x1.device, dtype=x1.dtype)
        x_s, u_s = linear_path(x0, x1, s, self.sigma_min)
        return ((self.net(x_s, s) - u_s) ** 2).mean()

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        steps: int | None = None,
        solver: str = "euler",
    ) -> torch.Tensor:
        """``n`` samples: ``x_0 ~ N(0, I)`` carried to ``s = 1`` by ``steps`` steps of
        ``solver`` (default 100 Euler steps). Floats ``(n, *shape)`` for continuous
        data; integer images for ``levels``, the dequantized value rounded down onto
        the grey levels and clamped to ``0..levels-1``."""
        n = checks.sample_count(n)
        generator = checks.generator(generator)
        _, steps = _solver(solver, steps)
        p = self._param()
        z = tensors.randn((n, self.d), generator, p.device).to(p.dtype)
        x = odeint(self._field, z, 0.0, 1.0, steps, solver)
        if self.levels is None:
            return x.reshape(n, *self.shape)
        grey = ((x + 1) / self.bin_width).floor().clamp(0, self.levels - 1)
        return grey.long().reshape(n, *self.shape)

    def log_prob(
        self,
        x: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        steps: int | None = None,
        solver: str = "rk4",
        divergence: str | None = None,
        probes: int = 1,
        probe: str = "rademacher",
    ) -> torch.Tensor:
        """``log p(x)`` in nats ``(B,)`` by the instantaneous change of variables
        (:func:`ode_log_prob`; default 25 steps of ``"rk4"``, and the exact divergence
        up to :data:`EXACT_UP_TO` dimensions, Hutchinson's estimate above).

        Continuous data: the model's density, exact up to the solver's error. Integer
        images: ``log p(x + w)`` on the grey-level scale with ``w ~ U[0, 1)`` drawn with
        ``generator``, a one-draw estimate of a **lower bound** on the discrete
        log-likelihood (uniform dequantization, as :func:`selfsup.data.dequantize`).
        ``divergence="hutchinson"`` estimates the divergence with ``probes`` random
        vectors from ``generator`` instead: unbiased, cheaper in high dimension.
        """
        y = self._to_model(x, "x", checks.generator(generator))
        if divergence is None:
            divergence = "exact" if self.d <= EXACT_UP_TO else "hutchinson"
        log_p = ode_log_prob(
            self.velocity, y, generator=generator, steps=steps, solver=solver,
            divergence=divergence, probes=probes, probe=probe,
        )  # fmt: skip
        return log_p + self.log_jacobian

    def encode(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None,
        steps: int | None = None, solver: str = "rk4",
    ) -> torch.Tensor:  # fmt: skip
        """The noise ``x_0`` ``(B, d)`` that the flow carries to ``x``: the ODE from
        ``s = 1`` back to ``s = 0``. Integer images are placed at the centre of each grey
        level's bin (no noise), so ``decode(encode(x))`` gives ``x`` back up to the
        solver's error; deterministic, so ``generator`` (accepted, as by every encoder)
        is unused."""
        checks.generator(generator)
        _, steps = _solver(solver, steps)
        y = self._to_model(x, "x", centre=True)
        return odeint(self._field, y, 1.0, 0.0, steps, solver)

    def decode(
        self, z: torch.Tensor, *, steps: int | None = None, solver: str = "rk4"
    ) -> torch.Tensor:
        """The data ``(B, *shape)`` that noise ``z`` ``(B, d)`` flows to, on the data's
        scale: for images, floats in ``[0, levels - 1]`` (the grey level whose bin's
        centre is reached; not rounded)."""
        _, steps = _solver(solver, steps)
        y = odeint(self._field, self._latent(z), 0.0, 1.0, steps, solver)
        if self.levels is not None:
            y = ((y + 1) / self.bin_width - 0.5).clamp(0, self.levels - 1)
        return y.reshape(len(y), *self.shape)

    @torch.no_grad()
    def inpaint(
        self, x, known_mask, *, generator: torch.Generator | None = None,
        steps: int | None = None, eta: float = 1.0,
    ) -> torch.Tensor:  # fmt: skip
        """Fill the positions where ``known_mask`` (one example's shape) is ``False``:
        one draw per example ``(B, *shape)``, integer images for ``levels`` (rounded
        down, as :meth:`sample`); the known positions keep their values.

        The replacement method on the linear path, with ``steps`` steps (default 100)
        from noise ``N(0, I)`` on every coordinate. Before each step the known
        coordinates are replaced by a fresh draw of the path at the known values ``y``,
        ``(1 - (1 - sigma_min) s) w + s y`` with ``w ~ N(0, I)`` (:func:`linear_path`;
        images at the centre of each grey level's bin). A step from ``s`` to ``s'``
        predicts the path's two ends from the velocity ``v`` (with ``sigma_min = 0``:
        the data ``x + (1 - s) v`` and the noise ``x - s v``) and puts the state back
        on the path at ``s'``, with the noise
        ``sqrt(1 - eta^2)`` times the predicted one plus ``eta`` times a fresh draw
        (except on the last step, which keeps the predicted noise).
        ``eta = 0`` is exactly the ODE's Euler step; the default ``eta = 1`` renews the
        noise at every step, so the unknown part can still change course when the
        known part disagrees with it (the deterministic ODE commits to a mode early
        and keeps it). The fill approximates the model's ``p(x_unknown | x_known)``;
        it is not an exact draw: the ODE gives no tractable sampler of that conditional.
        """
        generator = checks.generator(generator)
        _, steps = _solver("euler", steps)
        eta = checks.number(eta, "eta", low=0.0, high=1.0)
        keep = math.sqrt(1 - eta**2)
        p = self._param()
        mask = checks.known_mask(known_mask, self.shape).reshape(1, self.d).to(p.device)
        y = self._to_model(x, "x", centre=True)
        shape, c = (len(y), self.d), 1 - self.sigma_min

        def noise() -> torch.Tensor:
            return tensors.randn(shape, generator, p.device).to(p.dtype)

        z, h = noise(), 1.0 / steps
        for i in range(steps):
            s, s_next = i * h, (i + 1) * h
            z = torch.where(mask, (1 - c * s) * noise() + s * y, z)
            v = self._field(z, s)
            data, start = c * z + (1 - c * s) * v, z - s * v  # the path's ends, predicted
            if s_next < 1:
                start = keep * start + eta * noise()
            z = (1 - c * s_next) * start + s_next * data
        if self.levels is None:
            out = torch.where(mask, y, z)
        else:
            grey = ((z + 1) / self.bin_width).floor().clamp(0, self.levels - 1).long()
            known = ((y + 1) / self.bin_width - 0.5).round().long()
            out = torch.where(mask, known, grey)
        return out.reshape(len(y), *self.shape)

    def complete(
        self, x, known_mask, *, generator: torch.Generator | None = None,
        samples: int = 8, steps: int | None = None, eta: float = 1.0,
    ) -> torch.Tensor:  # fmt: skip
        """An estimate of the conditional mean of the unknown positions: the average
        of ``samples`` draws of :meth:`inpaint`, itself approximate (floats
        ``(B, *shape)`` on the data's scale; the known positions keep their values), as
        the diffusion model's ``complete``."""
        samples = checks.integer(samples, "samples")
        generator = checks.generator(generator)
        first = self.inpaint(x, known_mask, generator=generator, steps=steps, eta=eta)
        total = first.float()
        for _ in range(samples - 1):
            total += self.inpaint(x, known_mask, generator=generator, steps=steps, eta=eta).float()
        return total / samples

    @torch.no_grad()
    def trajectory(
        self, z: torch.Tensor, *, steps: int | None = None, solver: str = "euler"
    ) -> torch.Tensor:
        """The states ``(steps + 1, B, d)`` in the model's space from noise ``z``
        ``(B, d)`` at ``s = 0`` to ``s = 1`` (for pictures and :func:`straightness`)."""
        _, steps = _solver(solver, steps)
        return odeint(self._field, self._latent(z), 0.0, 1.0, steps, solver, path=True)

    @torch.no_grad()
    def reflow_pairs(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        steps: int | None = None,
        solver: str = "rk4",
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` couplings ``(x0, x1)`` of the model: noise ``x0 ~ N(0, I)`` ``(n, d)``
        and the point ``x1`` ``(n, d)`` the ODE carries it to, in the model's space.

        Rectification (reflow, Liu et al. 2023): a model trained on these pairs
        (``fit(new_model, pairs, ...)``, :meth:`loss` takes them) learns the same
        marginals with straighter paths, so fewer steps sample as well.
        """
        n = checks.sample_count(n)
        generator = checks.generator(generator)
        _, steps = _solver(solver, steps)
        p = self._param()
        x0 = tensors.randn((n, self.d), generator, p.device).to(p.dtype)
        return x0, odeint(self._field, x0, 0.0, 1.0, steps, solver)
