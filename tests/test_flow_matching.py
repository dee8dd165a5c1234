"""Flow matching (``selfsup.models.flow_matching``) against closed forms and the contract.

- The instantaneous change of variables where the answer is known: a linear field
  ``v = A x`` (``log p_1(x) = log N(e^{-A} x) - tr A``), the exact marginal field of a
  Gaussian mixture (the ODE's density is the mixture's), and a diffusion model with an
  exact denoiser on Gaussian data (its probability-flow density is the data's).
- The divergence: exact against the trace of autograd's full Jacobian; Hutchinson's
  mean against the exact value, within its standard error.
- A normalised density: a trained and a random 2-D model integrate to one on a grid.
- ``decode(encode(x)) == x`` to the solver's error; gradients of ``log_prob`` against
  finite differences; the solvers' orders; ``torchdiffeq``'s fixed-step solvers.
- The contract of tests/test_protocol.py and tests/test_device_rules.py (on the MPS
  stand-in: no float64, a fixed number of host reads per sample call, one graph under
  ``torch.compile``), and bad input refused by name.
"""

from __future__ import annotations

import math

import pytest
import torch

from selfsup import data, devicecheck, protocols, train
from selfsup.models.diffusion import Diffusion
from selfsup.models.flow_matching import (
    FlowMatching,
    VelocityMLP,
    _divergence,
    diffusion_log_prob,
    linear_path,
    mixture_velocity,
    ode_log_prob,
    odeint,
    straightness,
)
from tests.test_device_rules import _Float64
from tests.test_protocol import (
    _check_conditional,
    _check_density,
    _check_mode_preserved,
    _check_same_samples_on_the_cpu,
    _check_sampler,
    _quick_digits,
)


def _random_velocity(d=3, seed=0, std=0.3, dtype=torch.float64):
    torch.manual_seed(seed)
    net = VelocityMLP(d, (16, 16)).to(dtype)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, std)
    return net


def _seeded(seed):
    return torch.Generator().manual_seed(seed)


def _standard_normal(z):
    return -0.5 * (z**2).sum(-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)


# --------------------------------------------------------- closed forms


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_linear_field_matches_the_closed_form(dtype):
    """``dx/ds = A x`` carries ``N(0, I)`` to ``N(0, e^A e^A^T)``: at ``s = 1``,
    ``log p_1(x) = log N(e^{-A} x; 0, I) - tr A`` (the sign: where the field spreads
    space, ``tr A > 0``, the density falls)."""
    g = torch.Generator().manual_seed(0)
    a = (0.4 * torch.randn(3, 3, generator=g)).to(dtype)
    x = torch.randn(16, 3, generator=g).to(dtype)
    with torch.no_grad():
        got = ode_log_prob(lambda y, s: y @ a.T, x, steps=40)
    x0 = x @ torch.linalg.matrix_exp(-a).T
    expected = _standard_normal(x0) - torch.trace(a)
    tol = 1e-4 if dtype == torch.float32 else 1e-8
    torch.testing.assert_close(got, expected, atol=tol, rtol=0)
    # and the sign is the one of the theorem: a field that expands lowers the density
    with torch.no_grad():
        spread = ode_log_prob(lambda y, s: 0.5 * y, x, steps=40)
    torch.testing.assert_close(spread, _standard_normal(x * math.exp(-0.5)) - 1.5,
                               atol=tol, rtol=0)  # fmt: skip


def test_exact_mixture_field_gives_the_mixture_density():
    """The closed-form marginal field of the eight Gaussians, integrated backwards, gives
    the data's own log-density (:func:`selfsup.data.toy_2d_log_prob`)."""
    angles = torch.arange(8, dtype=torch.float64) * math.pi / 4
    means = data.EIGHT_GAUSSIANS_RADIUS * torch.stack([angles.cos(), angles.sin()], 1)
    x = data.toy_2d("8gaussians", 64, seed=3).double()

    def field(y, s):
        return mixture_velocity(y, s, means, data.EIGHT_GAUSSIANS_STD)

    with torch.no_grad():
        got = ode_log_prob(field, x, steps=100)
    expected = data.toy_2d_log_prob("8gaussians", x).double()
    assert (got - expected).abs().max() < 2e-3


def test_mixture_field_at_the_start_is_the_mean_minus_x():
    means = torch.tensor([[1.0, 2.0], [-3.0, 0.0]])
    x = torch.randn(5, 2)
    u = mixture_velocity(x, torch.zeros(5), means, 0.3, torch.tensor([0.25, 0.75]))
    torch.testing.assert_close(u, torch.tensor([-2.0, 0.5]) - x)


# --------------------------------------------------------- the divergence


def test_exact_divergence_is_the_trace_of_the_jacobian():
    net = _random_velocity(d=5)
    y = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
    s = torch.full((7,), 0.3, dtype=torch.float64)
    div = _divergence(net(y, s), y, None, create_graph=False)
    for b in range(7):
        jac = torch.autograd.functional.jacobian(lambda v, b=b: net(v[None], s[:1])[0], y[b])
        assert abs(float(div[b] - torch.trace(jac))) < 1e-10


@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
def test_hutchinson_is_unbiased(probe):
    """Many one-probe estimates of ``log_prob`` average to the exact value within four
    standard errors (each row of a repeated batch draws its own probe)."""
    net = _random_velocity(d=4, std=0.2)
    x = torch.randn(1, 4, dtype=torch.float64).expand(4000, 4)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        exact = ode_log_prob(net, x[:1], steps=8)
        estimates = ode_log_prob(net, x, steps=8, divergence="hutchinson", probe=probe,
                                 generator=g)  # fmt: skip
    se = estimates.std() / math.sqrt(len(estimates))
    assert estimates.std() > 0, "the estimate must be random"
    assert abs(float(estimates.mean() - exact[0])) < 4 * float(se)
    # more probes, less spread
    with torch.no_grad():
        eight = ode_log_prob(net, x[:2000], steps=8, divergence="hutchinson", probes=8,
                             probe=probe, generator=g)  # fmt: skip
    assert eight.std() < 0.6 * estimates.std()


def test_hutchinson_is_reproducible_under_a_generator():
    model = FlowMatching((3,), hidden=(8,))
    x = torch.randn(4, 3)
    with torch.no_grad():
        a, b = (
            model.log_prob(x, divergence="hutchinson", probes=2, generator=_seeded(5))
            for _ in range(2)
        )
    assert torch.equal(a, b)


# --------------------------------------------------------- a normalised density


def _grid_mass(model, half=5.0, n=161):
    side = torch.linspace(-half, half, n)
    xx, yy = torch.meshgrid(side, side, indexing="ij")
    pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    with torch.no_grad():
        logp = model.log_prob(pts, steps=20)
    cell = (side[1] - side[0]) ** 2
    return float(logp.exp().sum() * cell)


def test_a_trained_2d_model_integrates_to_one():
    torch.manual_seed(0)
    model = FlowMatching((2,), hidden=(64, 64))
    x = data.toy_2d("8gaussians", 2000, seed=0)
    train.fit(model, x, epochs=8, lr=3e-3, batch_size=128, progress=False, device="cpu")
    assert abs(_grid_mass(model) - 1) < 0.02


def test_a_random_2d_model_integrates_to_one():
    """Normalised for any weights (the ODE is invertible whatever the field)."""
    model = FlowMatching((2,), network=_random_velocity(d=2, std=0.2, dtype=torch.float32))
    assert abs(_grid_mass(model, half=7.0, n=201) - 1) < 0.02


# --------------------------------------------------------- solvers, encode/decode


def test_solvers_have_their_orders():
    """On ``dx/ds = x`` from 1 over ``[0, 1]`` (answer e), halving the step divides the
    error by about 2, 4 and 16."""
    x = torch.ones(1, 1, dtype=torch.float64)
    for solver, order in [("euler", 1), ("midpoint", 2), ("rk4", 4)]:
        errors = [
            abs(float(odeint(lambda y, s: y, x, 0.0, 1.0, n, solver)) - math.e) for n in (8, 16)
        ]
        assert abs(math.log2(errors[0] / errors[1]) - order) < 0.25, (solver, errors)


@pytest.mark.parametrize("levels", [None, 17])
def test_decode_undoes_encode(levels):
    torch.manual_seed(0)
    if levels is None:
        model = FlowMatching((2,), network=_random_velocity(d=2, std=0.2, dtype=torch.float32))
        x = torch.randn(10, 2)
    else:
        model = FlowMatching((8, 8), levels, hidden=(32,))
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0, 0.05)
        x = torch.randint(0, levels, (10, 8, 8))
    with torch.no_grad():
        z = model.encode(x, steps=40)
        back = model.decode(z, steps=40)
    assert z.shape == (10, model.d) and back.shape == x.shape
    assert (back - x).abs().max() < 1e-3
    assert not torch.allclose(z, model._to_model(x, centre=True), atol=1e-2), "the flow moves"


def test_log_prob_is_the_ode_likelihood_of_the_dequantized_points_plus_the_jacobian():
    torch.manual_seed(0)
    model = FlowMatching((2, 2), 5, hidden=(8,))
    x = torch.randint(0, 5, (4, 2, 2))
    with torch.no_grad():
        y = model.dequantize(x, generator=_seeded(3))
        direct = ode_log_prob(model.velocity, y, steps=3) + model.log_jacobian
        via_model = model.log_prob(x, generator=_seeded(3), steps=3)
    torch.testing.assert_close(via_model, direct)
    assert model.log_jacobian == pytest.approx(4 * math.log(2 / 5))
    assert float(y.min()) >= -1 and float(y.max()) < 1


def test_the_default_divergence_is_exact_for_small_inputs_and_hutchinson_above():
    torch.manual_seed(0)
    small, big = FlowMatching((8, 8), 17, hidden=(8,)), FlowMatching((17, 17), 17, hidden=(8,))
    for model, default in [(small, "exact"), (big, "hutchinson")]:
        x = torch.randint(0, 17, (2, *model.shape))
        with torch.no_grad():
            got = model.log_prob(x, generator=_seeded(0), steps=2)
            expected = model.log_prob(x, generator=_seeded(0), steps=2, divergence=default)
        assert torch.equal(got, expected), default


def test_log_prob_gradients_match_finite_differences():
    """Differentiable under autograd: the gradient of the log-likelihood with respect to
    the weights matches central differences (of the same discretised computation)."""
    model = FlowMatching((2,), network=_random_velocity(d=2, std=0.3))
    x = torch.randn(3, 2, dtype=torch.float64)
    param = model.net.mlp.out.weight
    loss = model.log_prob(x, steps=4).sum()
    (grad,) = torch.autograd.grad(loss, param)
    h = 1e-6
    for i, j in [(0, 0), (1, 3), (0, 7)]:
        with torch.no_grad():
            param[i, j] += h
            up = model.log_prob(x, steps=4).sum()
            param[i, j] -= 2 * h
            down = model.log_prob(x, steps=4).sum()
            param[i, j] += h
        assert abs(float((up - down) / (2 * h) - grad[i, j])) < 1e-6


def test_same_steps_as_torchdiffeq():
    torchdiffeq = pytest.importorskip("torchdiffeq")
    net = _random_velocity(d=3, dtype=torch.float32)
    x = torch.randn(6, 3)

    def ours(solver, steps):
        return odeint(lambda y, s: net(y, y.new_full((len(y),), s)), x, 0.0, 1.0, steps, solver)

    def theirs(solver, steps):
        grid = torch.linspace(0, 1, steps + 1)
        return torchdiffeq.odeint(lambda t, y: net(y, t.expand(len(y))), x, grid,
                                  method=solver)[-1]  # fmt: skip

    with torch.no_grad():
        for solver in ("euler", "midpoint"):
            torch.testing.assert_close(ours(solver, 10), theirs(solver, 10), atol=1e-6, rtol=0)
        # torchdiffeq's "rk4" is Kutta's 3/8 rule, another fourth-order method: the two
        # agree to their (small) error
        torch.testing.assert_close(ours("rk4", 40), theirs("rk4", 40), atol=1e-5, rtol=0)


def test_straightness():
    line = torch.linspace(0, 1, 11)[:, None, None] * torch.tensor([[1.0, 2.0]])
    assert float(straightness(line)) < 1e-10
    s = torch.linspace(0, 1, 101)[:, None, None]
    arc = torch.cat([torch.cos(math.pi / 2 * s), torch.sin(math.pi / 2 * s)], -1)
    # |v - chord|^2 = (pi/2)^2 + 2 - 2 (pi/2)(sin + cos) ... averages to pi^2/4 - 2
    assert abs(float(straightness(arc)) - (math.pi**2 / 4 - 2)) < 1e-3


def test_linear_path_ends_and_velocity():
    x0, x1 = torch.randn(4, 3), torch.randn(4, 3)
    for sigma_min in (0.0, 0.1):
        start, _ = linear_path(x0, x1, torch.zeros(4), sigma_min)
        end, u = linear_path(x0, x1, torch.ones(4), sigma_min)
        torch.testing.assert_close(start, x0)
        torch.testing.assert_close(end, x1 + sigma_min * x0)
        mid, _ = linear_path(x0, x1, torch.full((4,), 0.5), sigma_min)
        torch.testing.assert_close(u, (end - start), msg="constant velocity")
        torch.testing.assert_close(mid, (start + end) / 2)


def test_reflow_pairs_train_a_model():
    torch.manual_seed(0)
    model = FlowMatching((2,), hidden=(16,))
    x0, x1 = model.reflow_pairs(64, generator=torch.Generator().manual_seed(0), steps=4)
    assert x0.shape == x1.shape == (64, 2)
    student = FlowMatching((2,), hidden=(16,))
    history = train.fit(student, (x0, x1), epochs=2, batch_size=16, progress=False, device="cpu")
    assert all(math.isfinite(v) for v in history.train_loss)


# --------------------------------------------------------- the diffusion model's ODE


class _Gaussian:
    """A stand-in diffusion model whose data are ``N(0, STD^2 I)`` and whose ODE is
    linear: ``dz/dt = -log(STD) z`` takes ``N(0, STD^2)`` at ``t = 0`` to ``N(0, 1)``."""

    STD = 0.4

    def __init__(self, d=3, levels=None):
        self.d, self.levels = d, levels
        self.bin_width = None if levels is None else 2.0 / (levels - 1)

    def scale(self, x):
        if self.levels is None:
            return x.reshape(len(x), self.d).float()
        return x.reshape(len(x), self.d).float() * self.bin_width - 1.0

    def ode_velocity(self, z, t):
        return -math.log(self.STD) * z


def test_diffusion_ode_of_a_linear_stand_in():
    model = _Gaussian()
    x = torch.randn(8, 3)
    with torch.no_grad():
        got = diffusion_log_prob(model, x, steps=10)
    expected = _standard_normal(x / model.STD) - 3 * math.log(model.STD)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


def test_diffusion_ode_of_images_bounds_the_discrete_probability():
    """Dequantized in the model's space: the bound sits below log P(x), the Gaussian's
    mass on each grey level's bin, and near it when the density is smooth on a bin."""
    model = _Gaussian(d=2, levels=9)
    x = torch.randint(2, 7, (6, 2))
    width = model.bin_width
    centre = model.scale(x).double()
    normal = torch.distributions.Normal(0.0, model.STD)
    mass = (normal.cdf(centre + width / 2) - normal.cdf(centre - width / 2)).log().sum(-1)
    with torch.no_grad():
        draws = torch.stack([
            diffusion_log_prob(model, x, steps=10, generator=torch.Generator().manual_seed(k))
            for k in range(200)
        ])  # fmt: skip
    bound = draws.mean(0).double()
    assert (bound <= mass + 1e-3).all()
    assert (mass - bound).max() < 0.05


class _ExactDenoiser(torch.nn.Module):
    """``E[eps | z]`` for data ``N(0, S^2 I)``: the probability-flow ODE is then exact."""

    S = 0.6

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))
        self.owner = []

    def forward(self, z, level):
        m = self.owner[0]
        gamma = m.gamma_min + (m.gamma_max - m.gamma_min) * level
        alpha, sigma = m.alpha_sigma(gamma)
        return sigma[:, None] * z / (alpha[:, None] ** 2 * self.S**2 + sigma[:, None] ** 2)


def test_diffusion_ode_with_an_exact_denoiser_gives_the_data_density():
    """With the exact denoiser the ODE carries the data's N(0, S^2) to the marginal at
    t = 1, N(0, v_1) with v_1 = alpha_1^2 S^2 + sigma_1^2, linearly: x -> x sqrt(v_1) / S.
    Its density under the prior N(0, I) follows in closed form."""
    net = _ExactDenoiser()
    model = Diffusion((2,), None, network=net)
    net.owner.append(model)
    x = _ExactDenoiser.S * torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got = diffusion_log_prob(model, x, steps=25)
        alpha, sigma = model.alpha_sigma(model.gamma(torch.ones(1)))
    gain = float((alpha**2 * net.S**2 + sigma**2).sqrt()) / net.S
    expected = _standard_normal(x * gain) + 2 * math.log(gain)
    assert (got - expected).abs().max() < 1e-3


def test_diffusion_log_prob_of_a_diffusion_model_on_digits():
    d = _quick_digits()
    torch.manual_seed(0)
    model = Diffusion(d.shape, d.levels, hidden=(16,))
    with torch.no_grad():
        lp = diffusion_log_prob(model, d.x_test[:3], steps=4, divergence="hutchinson",
                                generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert lp.shape == (3,) and torch.isfinite(lp).all()


# --------------------------------------------------------- the contract


def _digits_model():
    d = _quick_digits()
    torch.manual_seed(0)
    return d, FlowMatching(d.shape, d.levels, hidden=(32, 32))


def test_follows_the_protocol_on_the_mps_stand_in():
    d, model = _digits_model()
    assert isinstance(model, protocols.Trainable | protocols.DensityModel)
    assert isinstance(model, protocols.LatentModel)
    with devicecheck.emulate("mps") as device:
        with _Float64() as f64:
            train.fit(model, d.x_train[:16], epochs=1, batch_size=8, progress=False, device=device)
        assert not f64.made, dict(f64.made)
        assert all(p.device == device for p in model.parameters())
        model.train()
        loss = model.loss(d.x_train[:4])
        assert loss.ndim == 0 and torch.isfinite(loss)
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters())
        model.eval()
        small = dict(steps=2)
        with _Float64() as f64:
            _check_mode_preserved(model, lambda: _check_density(model, d.x_test[:3]))
            with torch.no_grad():
                g = torch.Generator().manual_seed(0)
                hutch = model.log_prob(
                    d.x_test[:3], divergence="hutchinson", probes=2, generator=g, **small
                )
            assert hutch.device == device and torch.isfinite(hutch).all()
            _check_mode_preserved(model, lambda: _check_sampler(model, d))
            _check_mode_preserved(model, lambda: _check_conditional(model, d))
            z = _check_mode_preserved(model, lambda: model.encode(d.x_test[:3], **small))
            assert z.shape == (3, 64) and z.device == device
            back = model.decode(z, **small)
            assert back.shape == (3, 8, 8) and back.device == device
        assert not f64.made, dict(f64.made)
        _check_same_samples_on_the_cpu(model)
        reads = {}
        for n in (2, 6):
            with devicecheck.host_reads() as r, torch.no_grad():
                model.sample(n, generator=torch.Generator().manual_seed(0), steps=5)
            reads[n] = r.total()
        assert reads[2] == reads[6] <= 2, reads
        known = torch.ones(d.shape, dtype=torch.bool)
        known[4:] = False
        with devicecheck.host_reads() as r:
            model.inpaint(d.x_test[:3], known, generator=torch.Generator().manual_seed(0), steps=5)
        assert r.total() <= 2, r.total()


class _ExactMixtureField(torch.nn.Module):
    """The closed-form marginal velocity of a Gaussian mixture, as a velocity network."""

    def __init__(self, means, std):
        super().__init__()
        self.register_buffer("means", torch.as_tensor(means, dtype=torch.float32))
        self.std = std
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # a parameter gives the device

    def forward(self, x, s):
        return mixture_velocity(x, s, self.means, self.std)


def test_inpainting_with_the_exact_field_finds_the_known_coordinates_mode():
    """Data: two tight clusters at (-2, -2, -2) and (2, 2, 2). Knowing the first
    coordinate, the exact conditional puts the other two at its cluster (what the
    unknown positions of ``x`` hold is ignored). With the exact marginal field, the
    replacement method with fresh noise at each step lands there on nearly every
    draw; the deterministic ODE (``eta=0``) commits to a mode early and misses far more
    often. The known coordinate is kept exactly."""
    means = torch.tensor([[-2.0, -2.0, -2.0], [2.0, 2.0, 2.0]])
    model = FlowMatching((3,), network=_ExactMixtureField(means, 0.1))
    x = torch.tensor([[-2.0, 9.0, 9.0], [2.0, -9.0, -9.0]]).repeat(200, 1)
    known = torch.tensor([True, False, False])
    target = torch.sign(x[:, :1]) * 2

    def hits(filled):
        return float(((filled[:, 1:] - target).abs() < 0.5).all(1).float().mean())

    filled = model.inpaint(x, known, generator=_seeded(0), steps=100)
    assert torch.equal(filled[:, 0], x[:, 0])
    assert hits(filled) > 0.97
    assert hits(model.inpaint(x, known, generator=_seeded(0), steps=100, eta=0.0)) < 0.9
    mean = model.complete(x[:40], known, generator=_seeded(1), samples=8)
    assert (mean[:, 1:] - target[:40]).abs().max() < 1.0
    # the fill is random (the noise), and reproducible under a generator
    assert torch.equal(filled, model.inpaint(x, known, generator=_seeded(0), steps=100))
    assert not torch.equal(filled, model.inpaint(x, known, generator=_seeded(5), steps=100))


def test_inpainting_with_eta_zero_is_the_euler_sampler_where_nothing_is_known():
    net = _random_velocity(d=3, dtype=torch.float32)
    model = FlowMatching((3,), network=net, sigma_min=0.1)
    nothing = torch.zeros(3, dtype=torch.bool)
    filled = model.inpaint(torch.zeros(4, 3), nothing, generator=_seeded(2), steps=7, eta=0.0)
    sampled = model.sample(4, generator=_seeded(2), steps=7)
    torch.testing.assert_close(filled, sampled, rtol=1e-5, atol=1e-5)


def test_inpainting_images_keeps_the_known_grey_levels_and_fills_integers():
    d, model = _digits_model()
    known = torch.zeros(d.shape, dtype=torch.bool)
    known[:4] = True
    x = d.x_test[:5]
    filled = model.inpaint(x, known, generator=_seeded(0), steps=3)
    assert filled.dtype == torch.long and filled.shape == x.shape
    assert torch.equal(filled[:, known], x[:, known])
    assert filled.min() >= 0 and filled.max() <= d.levels - 1
    assert model.inpaint(x[:0], known, steps=3).shape == (0, *d.shape)
    with pytest.raises(ValueError, match="known_mask"):
        model.inpaint(x, known[:4], steps=3)


def test_continuous_samples_are_floats_of_the_shape():
    model = FlowMatching((2,), hidden=(8,))
    g = torch.Generator().manual_seed(0)
    x = model.sample(5, generator=g, solver="midpoint", steps=3)
    assert x.shape == (5, 2) and x.dtype == torch.float32
    assert model.sample(0).shape == (0, 2)


def test_loss_compiles_in_one_graph_and_trains_under_bf16():
    d, model = _digits_model()
    explained = torch._dynamo.explain(model.loss)(d.x_train[:16])
    assert explained.graph_break_count == 0, [str(b.reason)[:200] for b in explained.break_reasons]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        history = train.fit(model, d.x_train[:32], epochs=1, batch_size=16, progress=False,
                            device="cpu")  # fmt: skip
    assert all(math.isfinite(v) for v in history.train_loss)


def test_fit_reads_the_device_at_most_once_a_step():
    d, _ = _digits_model()

    def reads(epochs):
        torch.manual_seed(0)
        model = FlowMatching(d.shape, d.levels, hidden=(16,))
        with devicecheck.emulate("mps") as device, devicecheck.host_reads() as r:
            train.fit(model, d.x_train[:64], epochs=epochs, batch_size=16, progress=False,
                      device=device)  # fmt: skip
        return r.total()

    assert (reads(3) - reads(1)) / 2 <= 64 // 16 + 2


# --------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m: FlowMatching(2), "shape"),
        (lambda m: FlowMatching((2,), levels=1), "levels"),
        (lambda m: FlowMatching((2,), sigma_min=1.0), "sigma_min"),
        (lambda m: FlowMatching((2,), hidden=(0,)), "hidden"),
        (lambda m: FlowMatching((2,), network=lambda x, s: x), "network"),
        (lambda m: m.log_prob(torch.zeros(3, 5, 5).long()), "x"),
        (lambda m: m.log_prob(torch.rand(3, 2, 2) * 4), "x"),
        (lambda m: m.log_prob(torch.full((2, 2, 2), 7)), "0..4"),
        (lambda m: m.loss(torch.rand(3, 2, 2) * 4), "batch"),
        (lambda m: m.loss(torch.zeros(0, 2, 2).long()), "batch"),
        (lambda m: m.loss((torch.zeros(3, 4), torch.zeros(2, 4))), "batch"),
        (lambda m: m.sample(2, solver="heun"), "solver"),
        (lambda m: m.sample(2, steps=0), "steps"),
        (lambda m: m.sample(-1), "n"),
        (lambda m: m.sample(2, generator=0), "generator"),
        (lambda m: m.log_prob(torch.zeros(2, 2, 2).long(), steps=0), "steps"),
        (lambda m: m.log_prob(torch.zeros(2, 2, 2).long(), divergence="trace"), "divergence"),
        (lambda m: m.log_prob(torch.zeros(2, 2, 2).long(), divergence="hutchinson", probes=0),
         "probes"),
        (lambda m: m.log_prob(torch.zeros(2, 2, 2).long(), probe="uniform"), "probe"),
        (lambda m: m.encode(torch.zeros(2, 2, 2).long(), solver="rk45"), "solver"),
        (lambda m: m.decode(torch.zeros(2, 3)), "z"),
        (lambda m: m.decode(torch.full((2, 4), float("nan"))), "z"),
        (lambda m: m.reflow_pairs(2.5), "n"),
        (lambda m: diffusion_log_prob(object(), torch.zeros(2, 2)), "diffusion"),
        (lambda m: ode_log_prob(lambda x, s: x, torch.zeros(2, 2, 2)), "x"),
        (lambda m: mixture_velocity(torch.zeros(2, 2), torch.zeros(2), torch.zeros(2, 2), 0.0),
         "std"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_by_name(call, match):
    model = FlowMatching((2, 2), 5, hidden=(8,))
    with pytest.raises(ValueError, match=match):
        call(model)


# --------------------------------------------------------- the configuration


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_configuration_of_each_profile(profile):
    """The chapter's model: the quick one on the digits, the full one on 28x28 images of
    256 grey levels (bigger), one optimiser step and a finite likelihood."""
    from selfsup import configs

    if profile == "quick":
        d = _quick_digits()
    else:
        x = torch.randint(0, 256, (8, 28, 28), generator=_seeded(0))
        d = data.ImageData(x, torch.arange(8), x[:4], torch.arange(4), (28, 28), 256, "mnist",
                           "random 28x28")  # fmt: skip
    torch.manual_seed(0)
    model = configs.flow_matching(d, profile=profile)
    assert isinstance(model, FlowMatching) and model.levels == d.levels
    if profile == "full":
        quick = configs.flow_matching(d, profile="quick")
        assert sum(p.numel() for p in model.parameters()) > sum(
            p.numel() for p in quick.parameters()
        )
    history = train.fit(model, d.x_train[:8], epochs=1, batch_size=4, progress=False,
                        device="cpu")  # fmt: skip
    assert all(math.isfinite(v) for v in history.train_loss)
    with torch.no_grad():
        lp = model.log_prob(d.x_test[:2], steps=2, generator=_seeded(0))
    assert lp.shape == (2,) and torch.isfinite(lp).all()


# ---------------------------------------------- save and load with a network of its own


def test_a_model_with_its_own_velocity_network_saves_and_loads(tmp_path):
    import selfsup

    torch.manual_seed(0)
    model = FlowMatching((2,), network=VelocityMLP(2, (8,), time_scale=0.05), sigma_min=0.01)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    selfsup.save(model, tmp_path / "fm.pt")
    loaded = selfsup.load(tmp_path / "fm.pt")
    assert loaded.sigma_min == 0.01 and loaded.net.time_scale == 0.05
    x = torch.randn(3, 2)
    with torch.no_grad():
        assert torch.equal(loaded.log_prob(x, steps=3), model.log_prob(x, steps=3))
