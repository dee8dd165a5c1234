"""selfsup.train.fit: learns, validates, stops early, and stops on NaN."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from selfsup.train import TrainingDiverged, fit


class LinearRegression(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def loss(self, batch):
        x, y = batch
        return ((self.linear(x).squeeze(-1) - y) ** 2).mean()


def _data(n=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
    return x, y


def test_fit_recovers_least_squares():
    torch.manual_seed(0)
    model = LinearRegression()
    x, y = _data()
    history = fit(model, (x, y), val=_data(128, 1), epochs=60, lr=0.05, batch_size=64)
    assert history.epochs == 60 and len(history.val_loss) == 60
    assert history.train_loss[-1] < 1e-3 < history.train_loss[0]
    # An independent oracle: the closed-form least-squares solution.
    design = torch.cat([x, torch.ones(len(x), 1)], 1)
    solution = torch.linalg.lstsq(design, y[:, None]).solution.squeeze()
    assert torch.allclose(model.linear.weight.squeeze(), solution[:3], atol=0.02)


def test_early_stopping_restores_the_best_weights():
    class Overfits(nn.Module):
        """Validation loss is best at epoch 2, then grows."""

        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor(0.0))

        def loss(self, batch):
            target = 3.0 if self.training else 2.0
            return (self.w - target) ** 2

    model = Overfits()
    h = fit(
        model,
        torch.zeros(8, 1),
        val=torch.zeros(8, 1),
        epochs=100,
        lr=0.3,
        batch_size=8,
        patience=3,
    )
    assert h.stopped_early and h.epochs < 100
    best = min(range(h.epochs), key=h.val_loss.__getitem__)
    assert h.best_epoch == best
    assert float(model.loss(None).detach()) == pytest.approx(h.val_loss[best])


def test_nan_loss_stops_with_epoch_and_step():
    class Explodes(LinearRegression):
        def loss(self, batch):
            return super().loss(batch) * float("nan") if self.calls > 2 else super().loss(batch)

        calls = 0

        def forward(self, *a):
            return None

    model = Explodes()
    original = model.loss

    def counting(batch):
        model.calls += 1
        return original(batch)

    model.loss = counting
    with pytest.raises(
        TrainingDiverged, match=r"loss became nan in epoch 0, step 2.*lower the learning rate"
    ):
        fit(model, _data(), epochs=3, batch_size=128)


def test_bad_arguments():
    model = LinearRegression()
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        fit(model, _data(), epochs=0)
    with pytest.raises(ValueError, match="patience needs validation data"):
        fit(model, _data(), epochs=2, patience=2)
    with pytest.raises(ValueError, match="different lengths"):
        fit(model, (torch.zeros(3, 3), torch.zeros(4)), epochs=1)
    with pytest.raises(ValueError, match="loss\\(batch\\) method"):
        fit(nn.Linear(2, 2), torch.zeros(3, 2), epochs=1)


def test_progress_bar_only_when_asked(capsys, monkeypatch):
    monkeypatch.setenv("SELFSUP_PROGRESS", "0")
    fit(LinearRegression(), _data(64), epochs=2)
    assert capsys.readouterr().err == ""
    fit(LinearRegression(), _data(64), epochs=2, progress=True)
    assert "LinearRegression" in capsys.readouterr().err


def test_cosine_schedule_anneals_to_zero():
    model = LinearRegression()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    fit(model, _data(64), epochs=3, batch_size=16, optimizer=opt, schedule="cosine")
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="schedule must be"):
        fit(model, _data(64), epochs=1, schedule="step")


def test_fit_refuses_a_game_and_names_train_gan():
    """A GAN's loss is the discriminator's: minimising it over every parameter would
    train the generator to help the discriminator. fit refuses; train_gan trains it."""
    from selfsup.models.gan import GAN, Discriminator, Generator

    gan = GAN(Generator(2, (2,), hidden=(8,)), Discriminator((2,), hidden=(8,)))
    before = [p.detach().clone() for p in gan.parameters()]
    with pytest.raises(TypeError, match="train_gan"):
        fit(gan, torch.randn(16, 2), epochs=1, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, gan.parameters(), strict=True))
