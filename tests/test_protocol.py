"""The conformance test: every configuration and every baseline through the contract of
:mod:`selfsup.protocols`, in the manner of a shared test mixin (normflows' ``FlowTest``).

A new model passes it or does not ship. It runs on the quick profile's digits and on
random 28x28 images, on CUDA when present and otherwise on the CPU's stand-in for an
accelerator playing Apple's GPU (:mod:`selfsup.devicecheck`, which raises where a GPU
would: a CPU tensor meeting the model's, ``.numpy()`` of an output, a float64 tensor on
the device). ``SELFSUP_TEST_DEVICE`` picks one (``cuda``, ``mps``, ``cpu``, ``emulated``,
``emulated-mps``). It checks: ``loss`` is a finite scalar that
backpropagates; ``log_prob`` is finite per example; ``sample`` has the data's shape
and dtype, is fixed by a generator (a CPU generator also for a model on the GPU) and
gives an empty batch for ``n = 0``; ``encode``/``embed``/``complete`` return tensors
of the right size; inputs on the CPU are accepted; every output is on the model's
device; no method changes the train/eval mode; ``fit`` leaves the model on its device.
"""

from __future__ import annotations

import copy
import os

import pytest
import torch

from selfsup import configs, data, devicecheck, protocols
from selfsup.data import ImageData
from selfsup.models import baselines
from selfsup.models.gan import train_gan
from selfsup.train import fit


def _device() -> tuple[torch.device, str | None]:
    """The device of the suite, and what the stand-in plays (None on a real device)."""
    chosen = os.environ.get("SELFSUP_TEST_DEVICE", "").strip().lower()
    if not chosen and not torch.cuda.is_available():
        chosen = "emulated-mps"  # the stricter stand-in: CUDA's rules and MPS's dtypes
    if chosen in ("emulated", "emulated-mps"):
        return devicecheck.DEVICE, "mps" if chosen == "emulated-mps" else "cuda"
    return torch.device(chosen or "cuda"), None


DEVICE, PLAYS = _device()
EMULATED = PLAYS is not None


@pytest.fixture(autouse=True)
def _accelerator():
    """The stand-in accelerator around each test when there is no real one."""
    if EMULATED:
        with devicecheck.emulate(PLAYS):
            yield
    else:
        yield


def _random_28x28(levels: int, n: int = 8) -> ImageData:
    g = torch.Generator().manual_seed(levels)
    x = torch.randint(0, levels, (n, 28, 28), generator=g)
    y = torch.arange(n) % 10
    return ImageData(x, y, x[:4], y[:4], (28, 28), levels, "mnist", "random 28x28")


def _quick_digits() -> ImageData:
    d = data.images(profile="quick")
    return ImageData(d.x_train[:64], d.y_train[:64], d.x_test[:8], d.y_test[:8], d.shape,
                     d.levels, d.name, d.description)  # fmt: skip


# The full profile's data for each configuration: binarized MNIST for the likelihood
# models (the literature's NLLs), 256 grey levels for the rest.
LEVELS_28 = {"vae": 2, "hvae": 2, "made": 2, "pixelcnn": 2, "pixel_transformer": 2,
             "flow": 256, "diffusion": 256, "vqvae": 256, "autoencoder": 256, "gan": 256, "simclr": 256}  # fmt: skip
DATA = ("digits", "28x28")


def _data(which: str, name: str) -> ImageData:
    return _quick_digits() if which == "digits" else _random_28x28(LEVELS_28[name])


def test_every_configuration_is_covered():
    assert set(configs.ALL) == set(LEVELS_28)


def _same(a: torch.device, b: torch.device) -> bool:
    return a.type == b.type and (a.index or 0) == (b.index or 0)  # cuda is cuda:0


def _on_device(t: torch.Tensor, model) -> None:
    params = list(model.parameters())
    assert t.device == params[0].device, f"output on {t.device}, model on {params[0].device}"


def _check_mode_preserved(model, call) -> torch.Tensor:
    """Run ``call()`` in train and in eval mode; the mode must come back unchanged."""
    out = None
    for training in (True, False):
        model.train(training)
        out = call()
        assert model.training is training, "a method changed the train/eval mode"
        for m in model.modules():
            assert m.training is training, f"{type(m).__name__} was left in another mode"
    return out


def _check_sampler(model, d: ImageData, generator_device="cpu") -> None:
    def draw(n=2, seed=0):
        g = torch.Generator(device=generator_device).manual_seed(seed)
        with torch.no_grad():
            return model.sample(n, generator=g)

    a, b = draw(), draw()
    assert isinstance(a, torch.Tensor) and a.shape == (2, *d.shape)
    assert torch.equal(a.cpu(), b.cpu()), "the same generator state must give the same samples"
    assert a.dtype == torch.long, f"samples must be integer images, got {a.dtype}"
    assert int(a.min()) >= 0 and int(a.max()) < d.levels
    empty = draw(0)
    assert empty.shape == (0, *d.shape)


def _check_density(model, x: torch.Tensor) -> None:
    n = len(x)
    with torch.no_grad():
        logp = model.log_prob(x)
    assert isinstance(logp, torch.Tensor) and logp.shape == (n,)
    assert torch.isfinite(logp).all(), f"log_prob must be finite: {logp}"


@pytest.mark.parametrize("which", DATA)
@pytest.mark.parametrize("name", sorted(LEVELS_28))
def test_configuration_follows_the_protocol(name, which):
    torch.manual_seed(0)
    d = _data(which, name)
    model = configs.ALL[name](d, profile="quick")
    assert isinstance(model, protocols.Trainable)

    # fit (train_gan for a game) moves the model to the device and leaves it there
    if getattr(model, "adversarial", False):
        with pytest.raises(TypeError, match="train_gan"):
            fit(model, d.x_train[:8], epochs=1, batch_size=4, progress=False, device=DEVICE)
        train_gan(model, d.x_train[:8], steps=2, batch_size=4, progress=False, device=DEVICE)
    else:
        fit(model, d.x_train[:8], epochs=1, batch_size=4, lr=1e-4, progress=False, device=DEVICE)
    params = list(model.parameters())
    assert all(_same(p.device, DEVICE) for p in params), "fit must leave the model there"

    # loss: a finite scalar that backpropagates, from CPU integer images
    model.train()
    loss = model.loss(d.x_train[:4])
    assert loss.ndim == 0 and torch.isfinite(loss)
    model.zero_grad(set_to_none=True)
    loss.backward()
    grads = [p.grad for p in params if p.grad is not None]
    assert grads, "loss must backpropagate to the parameters"
    assert all(torch.isfinite(g).all() for g in grads)
    model.eval()

    x = d.x_test[:3]  # CPU integer images, as the data set holds them
    if isinstance(model, protocols.DensityModel):
        _check_mode_preserved(model, lambda: _check_density(model, d.x_test[:3]))
        with torch.no_grad():
            _on_device(model.log_prob(x), model)
    if isinstance(model, protocols.Sampler) and (which == "digits" or "pixel" not in name):
        # Autoregressive sampling is one network pass per pixel (784 at 28x28): that path
        # is checked on the digits and, through complete(), on 28x28 below.
        _check_mode_preserved(model, lambda: _check_sampler(model, d))
        if DEVICE.type == "cuda":  # a generator on the model's device works too
            _check_sampler(model, d, generator_device=DEVICE)
        if EMULATED:  # the stand-in computes as the CPU does: a seed, the same samples
            _check_same_samples_on_the_cpu(model)
    if isinstance(model, protocols.LatentModel):
        z = _check_mode_preserved(model, lambda: model.encode(x))
        assert isinstance(z, torch.Tensor) and len(z) == 3
        _on_device(z, model)
        with torch.no_grad():
            back = model.decode(z)
        assert isinstance(back, torch.Tensor) and back.shape == (3, *d.shape)
    if isinstance(model, protocols.RepresentationModel):
        f = _check_mode_preserved(model, lambda: model.embed(x))
        assert isinstance(f, torch.Tensor) and f.ndim == 2 and len(f) == 3
        _on_device(f, model)
    if isinstance(model, protocols.Conditional):
        _check_mode_preserved(model, lambda: _check_conditional(model, d))


def _check_same_samples_on_the_cpu(model) -> None:
    """A CPU generator gives the same samples from the model on the accelerator and from
    its copy on the CPU: random numbers are drawn on the generator's device and moved,
    never drawn from a device's own stream (exact on the stand-in, whose kernels are the
    CPU's)."""
    on_cpu = copy.deepcopy(model).to("cpu")
    with torch.no_grad():
        here = model.sample(3, generator=torch.Generator().manual_seed(7))
        there = on_cpu.sample(3, generator=torch.Generator().manual_seed(7))
    assert torch.equal(here.cpu(), there), "a seed must give the same samples on every device"


def _check_conditional(model, d: ImageData) -> None:
    """``complete`` fills the two unknown last pixels and keeps the known ones. Two
    positions keep an autoregressive model to two network passes per draw at any size
    (a 28x28 pixel transformer attends over 784 positions in each)."""
    x = d.x_test[:3]
    known = torch.ones(d.shape, dtype=torch.bool)
    known[-1, -2:] = False
    with torch.no_grad():
        done = model.complete(x, known, generator=torch.Generator().manual_seed(0))
    assert isinstance(done, torch.Tensor) and done.shape == (3, *d.shape)
    assert torch.equal(done[:, known].cpu(), x[:, known].to(done.dtype))


BASELINES = {
    "gaussian mixture": lambda d: baselines.Dequantized(
        baselines.GaussianMixture(2, reg_covar=0.3), d.levels
    ),
    "kernel density": lambda d: baselines.Dequantized(baselines.KernelDensity(1.0), d.levels),
    "uniform": lambda d: baselines.Dequantized(baselines.UniformDensity(d.levels), d.levels),
    "memorizer": lambda d: baselines.Memorizer(),
}


@pytest.mark.parametrize("which", DATA)
@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baseline_follows_the_protocol(name, which):
    d = _data(which, "flow")
    model = BASELINES[name](d)
    model.fit(d.x_train)
    assert isinstance(model, protocols.DensityModel)
    _check_density(model, d.x_train[:3])  # the memorizer gives new examples probability 0
    _check_sampler(model, d)
    if isinstance(model, protocols.Conditional):
        _check_conditional(model, d)


def test_only_a_density_that_conditions_is_conditional():
    d = _quick_digits()
    assert isinstance(BASELINES["gaussian mixture"](d), protocols.Conditional)
    assert not isinstance(BASELINES["kernel density"](d), protocols.Conditional)


def test_the_conformance_test_fails_a_model_that_breaks_the_contract():
    """The checks can fail: a sampler that ignores its generator, one that returns floats,
    and a method that leaves the model in eval mode are each caught."""
    d = _quick_digits()
    model = configs.vae(d, profile="quick")

    class Unseeded(type(model)):
        def sample(self, n, *, generator=None):
            return super().sample(n, generator=None)

    class Floats(type(model)):
        def sample(self, n, *, generator=None):
            return super().sample(n, generator=generator).float()

    for broken in (Unseeded, Floats):
        model.__class__ = broken
        with pytest.raises(AssertionError):
            _check_sampler(model, d)
    model.__class__ = Unseeded.__mro__[1]

    def leaves_eval():
        model.eval()
        return model.encode(d.x_test[:2])

    with pytest.raises(AssertionError, match="mode"):
        _check_mode_preserved(model, leaves_eval)
