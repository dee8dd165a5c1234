"""selfsup.models.gan: losses against their formulas, the gradient penalty by brute
force, the optimal discriminator, and the divergence stop."""

from __future__ import annotations

import math

import pytest
import torch

from selfsup import divergences as D
from selfsup.models import gan as gan_module
from selfsup.models.gan import (
    GAN,
    Discriminator,
    Generator,
    d_loss,
    g_loss,
    gradient_penalty,
    train_gan,
)
from selfsup.train import TrainingDiverged


def test_losses_match_their_formulas():
    real, fake = torch.tensor([0.3, -1.2, 2.0]), torch.tensor([-0.5, 0.7])
    sig = torch.sigmoid
    expected_d = -(torch.log(sig(real)).mean() + torch.log(1 - sig(fake)).mean())
    assert torch.allclose(d_loss(real, fake, "nonsaturating"), expected_d)
    assert torch.allclose(d_loss(real, fake, "minimax"), expected_d)
    assert torch.allclose(g_loss(fake, "minimax"), torch.log(1 - sig(fake)).mean())
    assert torch.allclose(g_loss(fake, "nonsaturating"), -torch.log(sig(fake)).mean())
    assert torch.allclose(d_loss(real, fake, "wasserstein"), fake.mean() - real.mean())
    assert torch.allclose(g_loss(fake, "wasserstein"), -fake.mean())


def test_gradient_penalty_against_brute_force():
    torch.manual_seed(0)
    critic = Discriminator((3,), hidden=(8,)).double()
    real, fake = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    g = torch.Generator().manual_seed(5)
    gp = gradient_penalty(critic, real, fake, generator=g)
    eps = torch.rand((4, 1), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    total = 0.0
    for i in range(4):
        x_hat = eps[i] * real[i] + (1 - eps[i]) * fake[i]
        # finite differences of the critic around the interpolate
        grad = torch.stack(
            [
                (critic((x_hat + h)[None]) - critic((x_hat - h)[None]))[0] / (2e-6)
                for h in torch.eye(3, dtype=torch.float64) * 1e-6
            ]
        )
        total += (grad.norm() - 1) ** 2
    assert float(gp.detach()) == pytest.approx(float(total.detach()) / 4, rel=1e-5)


def test_optimal_discriminator_gives_jensen_shannon():
    # On a finite set, V(D*, G) = E_p log D* + E_q log(1 - D*) with D* = p / (p + q)
    # equals 2 JS(p || q) - log 4.
    p = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    q = torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64)
    d_star = p / (p + q)
    value = float((p * d_star.log()).sum() + (q * (1 - d_star).log()).sum())
    assert value == pytest.approx(
        2 * D.js_divergence(p.numpy(), q.numpy()) - math.log(4), rel=1e-12
    )
    # and no other discriminator does better
    for _ in range(100):
        d = torch.rand(4, dtype=torch.float64)
        assert float((p * d.log()).sum() + (q * (1 - d).log()).sum()) <= value + 1e-12


def test_train_gan_learns_a_shifted_gaussian():
    torch.manual_seed(0)
    data = torch.randn(4000, 1) * 0.5 + 3.0
    gan = GAN(Generator(1, (1,), hidden=(16,)), Discriminator((1,), hidden=(16,)))
    history = train_gan(gan, data, steps=600, batch_size=128, lr_g=2e-3, lr_d=2e-3)
    samples = gan.sample(2000, generator=torch.Generator().manual_seed(1))
    assert abs(float(samples.mean()) - 3.0) < 0.3 and len(history.d_loss) == 600


def test_divergence_stop_and_bad_input():
    gan = GAN(Generator(2, (2,), hidden=(4,)), Discriminator((2,), hidden=(4,)), loss="wasserstein")
    with pytest.raises(TrainingDiverged, match="at step 0"):
        train_gan(gan, torch.full((64, 2), 1e9), steps=3, batch_size=32, max_abs_loss=1e3)
    with pytest.raises(ValueError, match="data contains NaN"):
        train_gan(gan, torch.full((64, 2), float("nan")), steps=3, batch_size=32)
    with pytest.raises(ValueError, match="loss must be one of"):
        GAN(Generator(2, (2,)), Discriminator((2,)), loss="hinge")
    with pytest.raises(ValueError, match="at least batch_size"):
        train_gan(gan, torch.zeros(10, 2), steps=1, batch_size=32)
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(Discriminator((2,)), torch.zeros(3, 2), torch.zeros(4, 2))


def test_a_nan_loss_stops_training_before_any_update():
    """Both losses are checked before their optimiser step: the weights that come
    back are the last finite ones, not NaN."""

    class TurnsNaN(Discriminator):
        calls = 0

        def forward(self, x):
            TurnsNaN.calls += 1
            out = super().forward(x)
            return out * float("nan") if TurnsNaN.calls > 5 else out

    gan = GAN(Generator(2, (2,), hidden=(4,)), TurnsNaN((2,), hidden=(4,)))
    with pytest.raises(TrainingDiverged, match="became nan at step 1"):
        train_gan(gan, torch.randn(64, 2), steps=5, batch_size=32, device="cpu")
    assert all(torch.isfinite(p).all() for p in gan.parameters())


def test_the_generator_step_leaves_the_discriminators_weights_alone(monkeypatch):
    """The generator's step differentiates through the discriminator with its weights
    frozen: they train only in their own steps (one Adam step each, so with d_steps=1
    and steps=1 the result equals a discriminator step alone), every flag is restored
    afterwards, even when training stops with an error, and a weight the user froze stays
    frozen."""
    torch.manual_seed(0)
    data = torch.randn(256, 2)
    gan = GAN(Generator(2, (2,), hidden=(8,)), Discriminator((2,), hidden=(8,)))
    gan.discriminator.net[0].bias.requires_grad_(False)  # frozen by the user
    before = {k: v.clone() for k, v in gan.discriminator.state_dict().items()}
    train_gan(gan, data, steps=3, batch_size=64, seed=0, progress=False)
    flags = [p.requires_grad for p in gan.discriminator.parameters()]
    assert flags.count(False) == 1 and not gan.discriminator.net[0].bias.requires_grad
    # train_gan leaves the GAN on runtime.device(): bring its weights home to compare.
    assert torch.equal(gan.discriminator.net[0].bias.cpu(), before["net.0.bias"])
    assert not torch.equal(gan.discriminator.net[0].weight.cpu(), before["net.0.weight"])
    assert all(p.requires_grad for p in gan.generator.parameters())
    assert all(p.grad is None for p in gan.discriminator.parameters() if not p.requires_grad)

    def broken(*args, **kwargs):
        raise RuntimeError("the generator's loss failed")

    monkeypatch.setattr(gan_module, "g_loss", broken)  # fails inside the generator's step
    with pytest.raises(RuntimeError, match="generator's loss"):
        train_gan(gan, data, steps=2, batch_size=64, progress=False)
    assert [p.requires_grad for p in gan.discriminator.parameters()] == flags
