"""selfsup.models.flows: invertibility, log-determinants against autograd, normalisation."""

from __future__ import annotations

import pytest
import torch

from selfsup.models.flows import (
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    Flow,
    InvertibleLinear,
    LogitTransform,
    Permute,
    coupling_mask,
    realnvp,
)


def _randomised(module):
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.5 * torch.randn_like(p))
    return module.double()


def _transforms(d=4):
    return {
        "affine": _randomised(AffineCoupling(coupling_mask("half", (d,)), hidden=(8,))),
        "affine-checkerboard": _randomised(
            AffineCoupling(coupling_mask("checkerboard", (2, 2)), hidden=(8,))
        ),
        "additive": _randomised(
            AdditiveCoupling(coupling_mask("half", (d,), flip=True), hidden=(8,))
        ),
        "actnorm": _randomised(ActNorm(d)).eval(),
        "linear": _randomised(InvertibleLinear(d)),
        "permute": Permute(d, "random", seed=3).double(),
        "logit": LogitTransform(17).double(),
    }


def _input(name, d=4):
    g = torch.Generator().manual_seed(1)
    if name == "logit":
        return torch.rand(6, d, generator=g, dtype=torch.float64) * 17
    return torch.randn(6, d, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("name", list(_transforms()))
def test_inverse_of_forward_is_identity(name):
    t = _transforms()[name]
    x = _input(name)
    y, logdet = t(x)
    x_back, logdet_inv = t.inverse(y)
    assert torch.allclose(x_back, x, atol=1e-9)
    assert torch.allclose(logdet + logdet_inv, torch.zeros(6, dtype=torch.float64), atol=1e-9)


@pytest.mark.parametrize("name", list(_transforms()))
def test_logdet_matches_autograd_jacobian(name):
    t = _transforms()[name]
    x = _input(name)
    _, logdet = t(x)
    for i in range(len(x)):
        jac = torch.autograd.functional.jacobian(lambda v: t(v[None])[0][0], x[i])
        expected = float(torch.linalg.slogdet(jac)[1])
        assert float(logdet[i].detach()) == pytest.approx(expected, abs=1e-8)


def test_linear_factors_and_coupling_constants():
    # The LU factors against their definition, W = P (tril(L, -1) + I) (triu(U, 1) + diag s).
    lin = _randomised(InvertibleLinear(3))
    s = lin.sign_s * lin.log_s.exp()
    lower = torch.tril(lin.lower, -1) + torch.eye(3, dtype=torch.float64)
    upper = torch.triu(lin.upper, 1) + torch.diag(s)
    assert torch.equal(lin.weight(), lin.perm @ lower @ upper)
    x = _input("linear", 3)
    assert torch.allclose(lin(x)[0], x @ (lin.perm @ lower @ upper).T, atol=1e-12)
    # The constants kept as buffers are not saved, and a loaded mask moves its complement.
    assert not {"eye", "u_mask"} & set(lin.state_dict())
    a = AffineCoupling(coupling_mask("half", (4,)), hidden=(8,))
    b = AffineCoupling(coupling_mask("half", (4,), flip=True), hidden=(8,))
    assert "keep" not in a.state_dict()
    b.load_state_dict(a.state_dict())
    assert torch.equal(b.keep, 1 - a.mask)
    x = torch.randn(5, 4)
    assert torch.equal(b(x)[0], a(x)[0])


def test_actnorm_initialises_from_data():
    x = torch.randn(500, 3) * torch.tensor([2.0, 0.5, 3.0]) + torch.tensor([1.0, -2.0, 0.0])
    y, _ = ActNorm(3)(x)
    assert torch.allclose(y.mean(0), torch.zeros(3), atol=1e-5)
    assert torch.allclose(y.std(0), torch.ones(3), atol=1e-4)


def test_two_dimensional_flow_density_integrates_to_one():
    torch.manual_seed(0)  # the initial weights, whatever ran before
    flow = _randomised(realnvp((2,), layers=3, hidden=(16,))).eval()
    # A grid over the box the flow's own samples span, widened by a quarter on each
    # side: a random flow can put its mass far from the origin.
    x = flow.sample(20_000, generator=torch.Generator().manual_seed(0))
    lo, hi = x.min(0).values, x.max(0).values
    lo, hi = lo - (hi - lo) / 4, hi + (hi - lo) / 4
    gx1, gy1 = (torch.linspace(float(a), float(b), 1001, dtype=torch.float64)
                for a, b in zip(lo, hi, strict=True))  # fmt: skip
    gx, gy = torch.meshgrid(gx1, gy1, indexing="xy")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    with torch.no_grad():
        mass = flow.log_prob(pts).exp().sum() * (gx1[1] - gx1[0]) * (gy1[1] - gy1[0])
    assert float(mass) == pytest.approx(1.0, abs=1e-3)


def test_sampling_inverts_encoding():
    flow = realnvp((4,), layers=2, hidden=(8,))
    _randomised(flow).float().eval()
    x = flow.sample(10, generator=torch.Generator().manual_seed(0))
    z, _ = flow.transform(x)
    assert torch.allclose(flow.decode(z), x, atol=1e-4)
    assert len(flow.trajectory(z)) == len(flow.transforms) + 1


def test_bad_input():
    with pytest.raises(ValueError, match="checkerboard mask needs an image shape"):
        coupling_mask("checkerboard", (5,))
    with pytest.raises(ValueError, match="kind must be"):
        coupling_mask("stripes", (4,))
    with pytest.raises(ValueError, match=r"shape \(B, 4\)"):
        AffineCoupling(coupling_mask("half", (4,)))(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="dequantize integer data first"):
        LogitTransform(17)(torch.full((1, 2), 20.0))
    flow = realnvp((8, 8), layers=1, levels=17, mask="checkerboard")
    with pytest.raises(ValueError, match="integers in 0..16"):
        flow.loss(torch.full((2, 8, 8), 17))
    with pytest.raises(ValueError, match=r"grey levels 0..16 or dequantized values in \[0, 17\]"):
        flow.loss(torch.rand(2, 8, 8) + 17)  # loss takes dequantized values, as log_prob
    with pytest.raises(ValueError, match="NaN"):
        Flow([], (2,)).log_prob(torch.tensor([[float("nan"), 0.0]]))
