"""Every full-profile configuration (MNIST, 28x28) built and exercised on the CPU.

No GPU and no MNIST needed: random 28x28 tensors with the full profile's levels. For
each model: the output shapes, one optimiser step that changes the parameters, and
``log_prob`` (finite, per example) and ``sample`` where the model has them.
"""

from __future__ import annotations

import inspect

import pytest
import torch

from selfsup import configs
from selfsup.data import ImageData
from selfsup.models.gan import train_gan
from selfsup.train import fit


def _mnist_like(levels: int, n: int = 8) -> ImageData:
    g = torch.Generator().manual_seed(levels)
    x = torch.randint(0, levels, (n, 28, 28), generator=g)
    y = torch.arange(n) % 10
    return ImageData(x, y, x[:4], y[:4], (28, 28), levels, "mnist", "random 28x28")


# Likelihood models on binarized MNIST (the literature's NLLs), the rest on 256 levels.
LEVELS = {"vae": 2, "hvae": 2, "made": 2, "pixelcnn": 2, "pixel_transformer": 2, "flow": 256,
          "vqvae": 256, "autoencoder": 256, "gan": 256, "simclr": 256}  # fmt: skip


def test_every_configuration_is_covered():
    assert set(configs.ALL) == set(LEVELS)


@pytest.mark.parametrize("name", sorted(LEVELS))
def test_full_configuration_on_28x28(name):
    torch.manual_seed(0)
    data = _mnist_like(LEVELS[name])
    model = configs.ALL[name](data, profile="full")
    quick = configs.ALL[name](_mnist_like(LEVELS[name]), profile="quick")
    n_full = sum(p.numel() for p in model.parameters())
    assert n_full > sum(p.numel() for p in quick.parameters()), "full is the bigger model"
    before = [p.detach().clone() for p in model.parameters()]
    x = data.x_train
    if name == "gan":
        train_gan(model, x.float() / 255, steps=1, batch_size=4, progress=False)
        out = model.sample(3, generator=torch.Generator().manual_seed(0))
        assert out.shape == (3, 28, 28)
    else:
        batch = x.float() / 255 if name in ("autoencoder", "simclr") else x
        history = fit(model, batch, epochs=1, batch_size=4, lr=1e-4, progress=False)
        assert torch.isfinite(torch.tensor(history.train_loss)).all()
    changed = any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    assert changed, "one optimiser step must move the parameters"

    model.eval()
    with torch.no_grad():
        if hasattr(model, "log_prob"):
            inputs = x[:2].float() + 0.5 if name == "flow" else x[:2]
            logp = model.log_prob(inputs)
            assert logp.shape == (2,) and torch.isfinite(logp).all()
            assert (logp < 0).all() or name == "flow"  # discrete models: log P < 0
        if hasattr(model, "complete"):
            # Autoregressive sampling is one network pass per pixel: 784 of them for a
            # full sample. The same code path, for the last row only.
            known = torch.ones(28, 28, dtype=torch.bool)
            known[-1] = False
            done = model.complete(x[:2], known, generator=torch.Generator().manual_seed(0))
            assert done.shape == (2, 28, 28) and torch.equal(done[:, :-1], x[:2, :-1])
        elif hasattr(model, "sample") and name != "gan":
            samples = model.sample(2, generator=torch.Generator().manual_seed(0))
            assert samples.shape == (2, 28, 28)
        if inspect.isfunction(getattr(type(model), "embed", None)):
            assert model.embed(x[:3].float() / 255).shape[0] == 3
        if hasattr(model, "encode") and name not in ("flow",):
            assert len(model.encode(x[:3] if name != "autoencoder" else x[:3].float() / 255)) == 3


def test_configs_reject_an_unknown_profile():
    with pytest.raises(ValueError, match="profile must be 'quick' or 'full'"):
        configs.vae(_mnist_like(2), profile="huge")
