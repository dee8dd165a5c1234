"""Every full-profile configuration (MNIST, 28x28) built and exercised on the CPU.

No GPU and no MNIST needed: random 28x28 tensors with the full profile's levels. For
each model: it is bigger than the quick one, one optimiser step changes the parameters,
and ``log_prob`` is finite per example where the model has it.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from selfsup import configs, protocols, runtime
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
          "diffusion": 256, "flow_matching": 256, "vqvae": 256, "autoencoder": 256, "gan": 256,
          "simclr": 256}  # fmt: skip


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
    if getattr(model, "adversarial", False):  # a game: train_gan, not fit
        history = train_gan(model, data.x_train, steps=1, batch_size=4, progress=False,
                            device="cpu")  # fmt: skip
        losses = history.d_loss + history.g_loss
    else:
        losses = fit(model, data.x_train, epochs=1, batch_size=4, lr=1e-4, progress=False,
                     device="cpu").train_loss  # fmt: skip
    assert torch.isfinite(torch.tensor(losses)).all()
    changed = any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    assert changed, "one optimiser step must move the parameters"
    if isinstance(model, protocols.DensityModel):
        with torch.no_grad():
            logp = model.log_prob(data.x_train[:2])
        assert logp.shape == (2,) and torch.isfinite(logp).all()


def test_configs_reject_an_unknown_profile():
    with pytest.raises(ValueError, match="profile must be 'quick' or 'full'"):
        configs.vae(_mnist_like(2), profile="huge")


def test_every_configuration_has_named_frozen_presets():
    assert set(configs.PRESETS) == set(configs.ALL)
    for name, by_profile in configs.PRESETS.items():
        assert set(by_profile) == {"quick", "full"}, name
        quick, full = by_profile["quick"], by_profile["full"]
        assert type(quick) is type(full) and dataclasses.is_dataclass(quick)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(quick, dataclasses.fields(quick)[0].name, 1)
    assert repr(configs.PRESETS["vae"]["full"]) == "VAESize(latent=32, hidden=(1024, 512))"
    rows = configs.presets_table()
    assert len(rows) == 2 * len(configs.PRESETS) and rows[0]["profile"] == "quick"


def test_a_configuration_is_built_from_its_preset(monkeypatch):
    data = _mnist_like(2)
    size = configs.preset("vae", "full")
    vae = configs.vae(data, profile="full")
    assert vae.latent_dim == size.latent
    widths = [m.out_features for m in vae.encoder.modules() if isinstance(m, torch.nn.Linear)]
    assert widths[: len(size.hidden)] == list(size.hidden)
    with pytest.raises(ValueError, match="no preset named 'vea'"):
        configs.preset("vea")


@pytest.mark.parametrize(
    ("profile", "smoke", "sizes"),
    [
        ("quick", "0", "quick"),
        ("quick", "1", "quick"),
        ("full", "0", "full"),
        ("full", "1", "quick"),
    ],
)
def test_smoke_means_quick_sizes_in_one_place(monkeypatch, profile, smoke, sizes):
    """The smoke check of the full profile takes the quick sizes and lengths everywhere, and
    a caller who names a profile gets that profile whole."""
    monkeypatch.setenv("SELFSUP_PROFILE", profile)
    monkeypatch.setenv("SELFSUP_SMOKE", smoke)
    checking = profile == "full" and smoke == "1"
    assert runtime.smoke_check() is checking
    assert runtime.sizes() == sizes
    assert configs.preset("gan") == configs.PRESETS["gan"][sizes]
    assert runtime.budget(quick=30, full=300) == (30 if sizes == "quick" else 300)
    assert runtime.smoke_cap(100, runtime.SMOKE_EPOCHS) == (
        runtime.SMOKE_EPOCHS if checking else 100
    )
    for named in ("quick", "full"):
        assert runtime.sizes(named) == named and not runtime.smoke_check(named)
        assert configs.preset("gan", named) == configs.PRESETS["gan"][named]
