"""selfsup.train.fit: learns, validates, stops early, and stops on NaN."""

from __future__ import annotations

import math

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
    # fit leaves the model on runtime.device(): bring its weights home to compare.
    assert torch.allclose(model.linear.weight.squeeze().cpu(), solution[:3], atol=0.02)


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


# ------------------------------------------------------------ which parts of a batch

_LABELLED = None


def _labelled_digits():
    global _LABELLED
    if _LABELLED is None:
        from selfsup import data

        d = data.images(profile="quick")
        _LABELLED = d._replace(x_train=d.x_train[:16], y_train=d.y_train[:16])
    return _LABELLED


def _unsupervised_configurations():
    from selfsup import configs

    return sorted(configs.ALL)


@pytest.mark.parametrize("name", _unsupervised_configurations())
def test_a_labelled_dataloader_trains_every_configuration_on_the_images(name):
    """DataLoader(TensorDataset(x, y)) yields (x, y) batches; an unsupervised model
    trains on x alone (the GAN is refused by fit whatever its data: train_gan)."""
    from torch.utils.data import DataLoader, TensorDataset

    from selfsup import configs

    d = _labelled_digits()
    torch.manual_seed(0)
    model = configs.ALL[name](d, profile="quick")
    loader = DataLoader(TensorDataset(d.x_train, d.y_train), batch_size=8, shuffle=False)
    if getattr(model, "adversarial", False):
        with pytest.raises(TypeError, match="train_gan"):
            fit(model, loader, epochs=1, progress=False, device="cpu")
        return
    seen = []
    original = model.loss

    def loss(batch):
        seen.append(batch)
        return original(batch)

    model.loss = loss
    history = fit(model, loader, epochs=1, lr=1e-4, progress=False, device="cpu")
    assert all(isinstance(b, torch.Tensor) and b.shape[1:] == d.shape for b in seen)
    assert len(history.train_loss) == 1 and math.isfinite(history.train_loss[0])


def test_a_declared_model_trains_on_x_of_a_tuple_as_on_x_alone():
    """fit(vae, (x, y)) is fit(vae, x): the VAE declares batch_parts = 1, the labels are
    dropped (before they reach the device), and the same seed gives the same run."""
    from torch.utils.data import TensorDataset

    from selfsup import configs

    d = _labelled_digits()
    runs = []
    for train in (d.x_train, (d.x_train, d.y_train), TensorDataset(d.x_train, d.y_train)):
        torch.manual_seed(0)
        model = configs.vae(d, profile="quick")
        runs.append(fit(model, train, epochs=2, batch_size=8, seed=3, progress=False).train_loss)
    assert runs[0] == runs[1] == runs[2]


def test_an_undeclared_model_keeps_tuples_whole_and_gets_x_of_a_dataset():
    """A model that does not declare batch_parts (one of a notebook: the gans chapter's
    critic takes (real, fake)) gets a tuple of tensors whole, as before; the items of a
    Dataset or DataLoader are reduced to x."""
    from torch.utils.data import DataLoader, TensorDataset

    class Records(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(()))
            self.kinds = []

        def loss(self, batch):
            self.kinds.append(type(batch).__name__ if not isinstance(batch, tuple) else len(batch))
            return self.w**2

    x, y = _data(16)
    model = Records()
    fit(model, (x, y), epochs=1, batch_size=8, progress=False)
    assert model.kinds == [2, 2]
    model = Records()
    fit(model, DataLoader(TensorDataset(x, y), batch_size=8), epochs=1, progress=False)
    assert model.kinds == ["Tensor", "Tensor"]
    model = Records()
    fit(model, TensorDataset(x, y), epochs=1, batch_size=8, progress=False)
    assert model.kinds == ["Tensor", "Tensor"]


def test_a_model_of_pairs_gets_pairs_and_drops_labels():
    """TwoTower declares batch_parts = 2: (x_a, x_b, y) trains on the pairs; a tensor
    alone is refused with the rule in the message."""
    from selfsup.models.contrastive import TwoTower

    x, y = _data(32)
    towers = TwoTower(nn.Linear(3, 4), nn.Linear(3, 4))
    history = fit(towers, (x, x + 0.1, y), epochs=1, batch_size=8, progress=False)
    assert math.isfinite(history.train_loss[0])
    with pytest.raises(ValueError, match="batch_parts=2"):
        fit(towers, x, epochs=1, batch_size=8, progress=False)
    with pytest.raises(ValueError, match="model.batch_parts"):
        bad = LinearRegression()
        bad.batch_parts = 0
        fit(bad, _data(16), epochs=1, progress=False)


def test_a_list_of_examples_is_refused_with_the_fix():
    """A list of per-example arrays is not a tuple of parts: fit names the fix (stack
    them) whatever the list's length, where it used to train on one of them silently;
    the parts of the data, and a declared pair of views, still train."""
    from selfsup import configs

    d = _labelled_digits()
    vae = configs.vae(d, profile="quick")
    for examples in (
        [x for x in d.x_train[:5]],  # (8, 8) each
        [x[None] for x in d.x_train[:5]],  # with a channel axis: one row each
        [x.numpy() for x in d.x_train[:12]],
        tuple(d.x_train[:2]),
    ):
        with pytest.raises(ValueError, match=r"arrays of one shape.*torch\.stack\(train\)"):
            fit(vae, examples, epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"^val is a list"):
        fit(vae, d.x_train[:16], val=[x for x in d.x_train[:3]], epochs=1, progress=False)
    with pytest.raises(ValueError, match="one row per example"):
        fit(vae, d.x_train[0, 0, 0], epochs=1, progress=False)
    # (x, y) and a declared pair of views of one shape train as before.
    assert fit(vae, [d.x_train[:16], d.y_train[:16]], epochs=1, progress=False).epochs == 1

    class Views(nn.Module):  # takes two views of one shape, as TwoTower does
        batch_parts = 2

        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(()))

        def loss(self, batch):
            a, b = batch
            return ((self.w * a - b) ** 2).mean()

    a = torch.randn(32, 3)
    assert fit(Views(), (a, 2 * a), epochs=1, progress=False).epochs == 1
    with pytest.raises(ValueError, match=r"takes 2 parts per batch"):
        fit(Views(), (a, a, a), epochs=1, progress=False)
