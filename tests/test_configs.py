"""Every full-profile configuration (MNIST, 28x28) built and exercised on the CPU.

No GPU and no MNIST needed: random 28x28 tensors with the full profile's levels. For
each model: it is bigger than the quick one, one optimiser step changes the parameters,
and ``log_prob`` is finite per example where the model has it.
"""

from __future__ import annotations

import pytest
import torch

from selfsup import configs, protocols
from selfsup.data import ImageData
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
    """The full profile's sizes: bigger than the quick ones, one optimiser step on integer
    28x28 images moves the parameters, and a density model's ``log_prob`` is finite. The
    rest of the contract is tests/test_protocol.py's, for every model alike."""
    torch.manual_seed(0)
    data = _mnist_like(LEVELS[name])
    model = configs.ALL[name](data, profile="full")
    quick = configs.ALL[name](_mnist_like(LEVELS[name]), profile="quick")
    n_full = sum(p.numel() for p in model.parameters())
    assert n_full > sum(p.numel() for p in quick.parameters()), "full is the bigger model"
    before = [p.detach().clone() for p in model.parameters()]
    history = fit(model, data.x_train, epochs=1, batch_size=4, lr=1e-4, progress=False,
                  device="cpu")  # fmt: skip
    assert torch.isfinite(torch.tensor(history.train_loss)).all()
    changed = any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    assert changed, "one optimiser step must move the parameters"
    if isinstance(model, protocols.DensityModel):
        with torch.no_grad():
            logp = model.log_prob(data.x_train[:2])
        assert logp.shape == (2,) and torch.isfinite(logp).all()


def test_configs_reject_an_unknown_profile():
    with pytest.raises(ValueError, match="profile must be 'quick' or 'full'"):
        configs.vae(_mnist_like(2), profile="huge")
