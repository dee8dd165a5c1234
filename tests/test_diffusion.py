"""The diffusion model (``selfsup.models.diffusion``) against closed forms and the contract.

- The forward process: ``q(z_t | x)`` in closed form against a simulated Markov chain of
  many small steps.
- The bound, with an exact denoiser: on Gaussian data the optimal noise prediction is
  known in closed form, and the continuous-time bound must then sit just below the
  exact log-density (its only gap: the two ends of the schedule); the ``T``-step bounds
  climb towards it as ``T`` grows.
- Tweedie: the exact denoiser's implied score ``-eps_hat / sigma`` is the score of the
  noisy marginal.
- The contract: loss, log_prob, sample and complete on the CPU's stand-in for Apple's
  GPU, no float64, a fixed number of host reads per sample call, reproducible under a
  generator, bad input refused.
"""

from __future__ import annotations

import collections
import math

import pytest
import torch

from selfsup import devicecheck, train
from selfsup.models.diffusion import Diffusion

MU, S = torch.tensor([0.5, -1.0]), 0.7


class _ExactDenoiser(torch.nn.Module):
    """``E[eps | z]`` for data ``N(MU, S^2 I)``: ``sigma (z - alpha MU) / (alpha^2 S^2 +
    sigma^2)``."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))  # a model has parameters
        self.owner = []  # the model, outside the module tree (no cycle)

    def forward(self, z, level):
        m = self.owner[0]
        gamma = m.gamma_min + (m.gamma_max - m.gamma_min) * level
        alpha, sigma = m.alpha_sigma(gamma)
        var = alpha[:, None] ** 2 * S**2 + sigma[:, None] ** 2
        return sigma[:, None] * (z - alpha[:, None] * MU) / var


def _exact_model(schedule: str) -> Diffusion:
    net = _ExactDenoiser()
    model = Diffusion((2,), None, network=net, schedule=schedule)
    net.owner.append(model)
    return model


def _gaussian(n: int, seed: int) -> torch.Tensor:
    return MU + S * torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))


def _log_density(x: torch.Tensor) -> torch.Tensor:
    return (-0.5 * ((x - MU) / S) ** 2 - math.log(S) - 0.5 * math.log(2 * math.pi)).sum(1)


def test_forward_marginal_matches_a_simulated_chain():
    """Composing 200 small steps q(z_t | z_s) gives q(z_t | x) = N(alpha_t x, sigma_t^2)."""
    model = Diffusion((3,), None, schedule="cosine")
    x = torch.tensor([[1.0, -0.5, 0.0]]).repeat(20_000, 1)
    g = torch.Generator().manual_seed(0)
    steps, target = 200, 0.6
    gamma0 = model.gamma(torch.zeros(1))
    alpha0, sigma0 = model.alpha_sigma(gamma0)
    z = alpha0 * x + sigma0 * torch.randn(x.shape, generator=g)
    for i in range(1, steps + 1):
        gs, gt = (
            model.gamma(torch.tensor([(i - 1) * target / steps])),
            model.gamma(torch.tensor([i * target / steps])),
        )
        (a_s, s_s), (a_t, s_t) = model.alpha_sigma(gs), model.alpha_sigma(gt)
        a_ts = a_t / a_s
        z = a_ts * z + (s_t**2 - a_ts**2 * s_s**2).sqrt() * torch.randn(x.shape, generator=g)
    alpha, sigma = model.alpha_sigma(model.gamma(torch.tensor([target])))
    se_mean = float(sigma) / math.sqrt(len(x))
    torch.testing.assert_close(z.mean(0), alpha * x[0], atol=5 * se_mean, rtol=0)
    torch.testing.assert_close(z.std(0), sigma.expand(3), atol=0.02 * float(sigma), rtol=0)


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_bound_with_the_exact_denoiser_is_just_below_the_density(schedule):
    model = _exact_model(schedule)
    x = _gaussian(4000, 0)
    gap = model.log_prob(x, generator=torch.Generator().manual_seed(1), samples=32) - _log_density(
        x
    )
    se = float(gap.std()) / math.sqrt(len(x))
    assert -0.2 < float(gap.mean()) < 3 * se, f"bound - log p = {float(gap.mean()):.4f} +- {se:.4f}"
    # The T-step bounds: below the continuous one, and closer as T grows.
    means = [
        float((model.log_prob(x, generator=torch.Generator().manual_seed(2), steps=t, samples=8)
               - _log_density(x)).mean())
        for t in (10, 100, 1000)
    ]  # fmt: skip
    assert means[0] < means[1] < means[2] < 3 * se, means


def test_bound_terms_add_up_and_are_reproducible():
    model = Diffusion((4,), 5, hidden=(16,))
    x = torch.randint(0, 5, (6, 4), generator=torch.Generator().manual_seed(0))
    a = model.bound(x, generator=torch.Generator().manual_seed(3))
    b = model.bound(x, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    torch.testing.assert_close(a.bound, a.reconstruction - a.prior - a.diffusion)
    # integer images: a discrete decoder, so log p(x | z_0) <= 0; KL and diffusion >= 0
    assert (a.reconstruction <= 0).all() and (a.prior >= 0).all() and (a.diffusion >= 0).all()


def test_tweedie_the_exact_denoiser_gives_the_score():
    """The score of the noisy marginal N(alpha MU, alpha^2 S^2 + sigma^2) is
    -(z - alpha MU) / var, and the exact denoiser's -eps_hat / sigma is that score."""
    model = _exact_model("cosine")
    z = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    gamma = torch.full((50,), -1.0)
    alpha, sigma = model.alpha_sigma(gamma)
    var = alpha[:, None] ** 2 * S**2 + sigma[:, None] ** 2
    zr = z.clone().requires_grad_(True)
    log_q = (-0.5 * (zr - alpha[:, None] * MU) ** 2 / var).sum()
    (score,) = torch.autograd.grad(log_q, zr)
    torch.testing.assert_close(-model.eps(z, gamma) / sigma[:, None], score)


def test_ddim_is_deterministic_and_ancestral_follows_the_generator():
    torch.manual_seed(0)
    model = Diffusion((3, 3), 4, hidden=(16,))
    a = model.sample(5, generator=torch.Generator().manual_seed(0), steps=7, sampler="ddim")
    b = model.sample(5, generator=torch.Generator().manual_seed(0), steps=7, sampler="ddim")
    c = model.sample(5, generator=torch.Generator().manual_seed(0), steps=7)
    assert torch.equal(a, b) and a.shape == (5, 3, 3) and a.dtype == torch.long
    assert int(c.min()) >= 0 and int(c.max()) <= 3
    assert model.sample(0, steps=3).shape == (0, 3, 3)


def test_samples_of_a_trained_2d_model_follow_the_data():
    x = _gaussian(2000, 5)
    torch.manual_seed(0)
    model = Diffusion((2,), None, hidden=(64, 64), gamma_min=-10.0)
    train.fit(model, x, epochs=40, lr=3e-3, batch_size=128, progress=False, device="cpu")
    s = model.sample(2000, generator=torch.Generator().manual_seed(0), steps=100)
    assert torch.allclose(s.mean(0), MU, atol=0.1), s.mean(0)
    assert torch.allclose(s.std(0), torch.full((2,), S), atol=0.1), s.std(0)


def test_complete_keeps_the_known_part():
    torch.manual_seed(0)
    model = Diffusion((4, 4), 3, hidden=(16,))
    x = torch.randint(0, 3, (5, 4, 4), generator=torch.Generator().manual_seed(1))
    known = torch.zeros(4, 4, dtype=torch.bool)
    known[:2] = True
    for resample in (1, 3):
        out = model.inpaint(x, known, generator=torch.Generator().manual_seed(0), steps=5,
                            resample=resample)  # fmt: skip
        assert out.shape == x.shape and out.dtype == torch.long
        assert torch.equal(out[:, known], x[:, known])
        again = model.inpaint(x, known, generator=torch.Generator().manual_seed(0), steps=5,
                              resample=resample)  # fmt: skip
        assert torch.equal(out, again)
    mean = model.complete(x, known, generator=torch.Generator().manual_seed(0), samples=4, steps=5)
    assert mean.dtype == torch.float32 and torch.equal(mean[:, known], x[:, known].float())
    assert float(mean.min()) >= 0 and float(mean.max()) <= 2
    assert model.embed(x).shape == (5, 16)


@pytest.mark.parametrize("shape, levels", [((2,), None), ((1, 2), 2), ((8, 8), 17)])
def test_follows_the_device_rules_on_the_mps_stand_in(shape, levels):
    from tests.test_device_rules import _Float64

    torch.manual_seed(0)
    model = Diffusion(shape, levels, hidden=(16,))
    if levels is None:
        x = torch.randn(32, *shape)
    else:
        x = torch.randint(0, levels, (32, *shape))
    with devicecheck.emulate("mps") as device:
        with _Float64() as f64:
            train.fit(model, x, epochs=2, batch_size=8, progress=False, device=device)
            lp = model.log_prob(x[:4], generator=torch.Generator().manual_seed(0), samples=2)
        assert not f64.made, dict(f64.made)
        assert lp.shape == (4,) and lp.device == device and torch.isfinite(lp).all()
        reads = collections.Counter()
        for n in (2, 5):
            with devicecheck.host_reads() as r, _Float64() as f64:
                s = model.sample(n, generator=torch.Generator().manual_seed(0), steps=6)
            assert not f64.made and s.device == device and s.shape == (n, *shape)
            reads[n] = r.total()
        assert reads[2] == reads[5] <= 2, dict(reads)
        again = model.sample(2, generator=torch.Generator().manual_seed(0), steps=6)
        on_cpu = model.to("cpu").sample(2, generator=torch.Generator().manual_seed(0), steps=6)
        assert torch.equal(again.cpu(), on_cpu), "a CPU generator gives the same samples everywhere"


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m: Diffusion((2,), None, schedule="sigmoid"), "schedule"),
        (lambda m: Diffusion((2,), None, gamma_min=5, gamma_max=-5), "gamma_min"),
        (lambda m: Diffusion((2,), None, weighting="mse"), "weighting"),
        (lambda m: m.sample(2, steps=0), "steps"),
        (lambda m: m.sample(2, sampler="euler"), "sampler"),
        (lambda m: m.log_prob(torch.zeros(3, 3, 3)), "x"),
        (lambda m: m.log_prob(torch.full((2, 2, 2), 7)), "0..2"),
        (lambda m: m.log_prob(torch.zeros(2, 2, 2).long(), steps=0), "steps"),
        (lambda m: m.loss(torch.zeros(0, 2, 2).long()), "empty"),
    ],
)
def test_bad_input_is_refused_by_name(call, match):
    model = Diffusion((2, 2), 3, hidden=(8,))
    with pytest.raises(ValueError, match=match):
        call(model)
