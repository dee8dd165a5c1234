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

It also checks the rules that make one contract: the same images as integers, as
whole-number floats, with a channel axis or as a NumPy array give the same results;
``log_prob`` takes ``generator=`` everywhere and is reproducible under it; ``sample``
returns one tensor; ``elbo`` has one type; ``selfsup.save``/``selfsup.load`` round-trip
every configuration and baseline to the same state and the same outputs.
"""

from __future__ import annotations

import copy
import io
import os
from contextlib import nullcontext

import numpy as np
import pytest
import torch

import selfsup
from selfsup import configs, data, devicecheck, protocols, tensors
from selfsup.data import ImageData
from selfsup.models import baselines
from selfsup.models.autoencoder import pca
from selfsup.models.autoregressive import MADE
from selfsup.models.gan import train_gan
from selfsup.models.vae import ELBO
from selfsup.saving import Saveable
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
             "flow": 256, "diffusion": 256, "flow_matching": 256, "vqvae": 256,
             "autoencoder": 256, "gan": 256, "simclr": 256}  # fmt: skip
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
    # one meaning: generator= is a keyword of every log_prob, and fixes the estimate (in
    # eval mode: dropout in training draws from the global generator)
    mode = tensors.eval_mode(model) if isinstance(model, torch.nn.Module) else nullcontext()
    with torch.no_grad(), mode:
        a = model.log_prob(x, generator=torch.Generator().manual_seed(5))
        b = model.log_prob(x, generator=torch.Generator().manual_seed(5))
    assert isinstance(logp, torch.Tensor) and logp.shape == (n,)
    assert torch.isfinite(logp).all(), f"log_prob must be finite: {logp}"
    assert torch.equal(a.cpu(), b.cpu()), "the same generator state must give the same log_prob"


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
        _check_seeded(model.encode, x)
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


def _check_seeded(method, *args) -> None:
    """``method`` takes ``generator`` as a keyword, and the same generator state gives the
    same result (a stochastic estimate draws with it; a deterministic one ignores it); a
    seed passed as an int is refused, naming the argument. In eval mode: dropout in
    training draws from the global generator."""
    model = getattr(method, "__self__", None)
    mode = tensors.eval_mode(model) if isinstance(model, torch.nn.Module) else nullcontext()
    with torch.no_grad(), mode:
        a = method(*args, generator=torch.Generator().manual_seed(5))
        b = method(*args, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.cpu(), b.cpu()), "the same generator state must give the same values"
    with pytest.raises(TypeError, match="generator"):
        method(*args, generator=5)


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
    _check_seeded(model.complete, x, known)
    if isinstance(model, protocols.ConditionalDensity):
        with torch.no_grad():
            logp = model.conditional_log_prob(x, known)
        assert logp.shape == (3,) and torch.isfinite(logp).all()
        _check_seeded(model.conditional_log_prob, x, known)


BASELINES = {
    "gaussian mixture": lambda d: baselines.Dequantized(
        baselines.GaussianMixture(2, reg_covar=0.3), d.levels
    ),
    "kernel density": lambda d: baselines.Dequantized(baselines.KernelDensity(1.0), d.levels),
    "uniform": lambda d: baselines.Dequantized(baselines.UniformDensity(d.levels), d.levels),
    "memorizer": lambda d: baselines.Memorizer(),
    "class conditional": lambda d: baselines.ClassConditional(
        lambda xc: baselines.Memorizer().fit(xc)
    ),
}


def _fitted_baseline(name: str, d: ImageData):
    model = BASELINES[name](d)
    if isinstance(model, baselines.ClassConditional):
        return model.fit(d.x_train, d.y_train % 2)
    return model.fit(d.x_train)


@pytest.mark.parametrize("which", DATA)
@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baseline_follows_the_protocol(name, which):
    d = _data(which, "flow")
    model = _fitted_baseline(name, d)
    assert isinstance(model, protocols.DensityModel)
    _check_density(model, d.x_train[:3])  # the memorizer gives new examples probability 0
    _check_sampler(model, d)
    if isinstance(model, protocols.Conditional):
        _check_conditional(model, d)


def test_only_a_density_that_conditions_is_conditional():
    d = _quick_digits()
    assert isinstance(BASELINES["gaussian mixture"](d), protocols.Conditional)
    assert not isinstance(BASELINES["kernel density"](d), protocols.Conditional)


def test_a_conditional_density_scores_what_it_completes():
    """The mixture and MADE give a conditional log-likelihood; the VAE, the diffusion
    model and flow matching complete without one. MADE's is the true conditional when
    the known pixels come first in its order: log p(x) minus it is the marginal of the
    known part, computed here by brute force over every completion; with the known
    pixels last it is not."""
    d = _quick_digits()
    assert isinstance(BASELINES["gaussian mixture"](d), protocols.ConditionalDensity)
    for name in ("vae", "diffusion", "flow_matching"):
        model = configs.ALL[name](d)
        assert isinstance(model, protocols.Conditional), name
        assert not isinstance(model, protocols.ConditionalDensity), name
    torch.manual_seed(0)
    made = MADE((2, 2), 3, hidden=(16,)).double()
    with torch.no_grad():
        for p in made.parameters():
            p.normal_(0, 1.0)  # a model far from uniform
    assert isinstance(made, protocols.ConditionalDensity)
    grid = torch.cartesian_prod(*[torch.arange(3)] * 4).reshape(-1, 2, 2)  # all 81 images
    x = torch.tensor([[[2, 0], [1, 2]]])
    for known, first in [([[True, True], [False, False]], True),
                         ([[False, False], [True, True]], False)]:  # fmt: skip
        known = torch.tensor(known)
        same_known = grid[(grid[:, known] == x[:, known]).all(1)]  # the 9 completions
        with torch.no_grad():
            marginal = torch.logsumexp(made.log_prob(same_known), 0)
            from_conditional = made.log_prob(x) - made.conditional_log_prob(x, known)
        if first:
            torch.testing.assert_close(from_conditional[0], marginal)
        else:
            assert (from_conditional[0] - marginal).abs() > 1e-3


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


# ----------------------------------------------------------- inputs as users hold them


def _forms(x: torch.Tensor) -> dict:
    """The same integer images as users hold them."""
    return {
        "x.float()": x.float(),
        "x[:, None]": x[:, None],
        "x.numpy()": x.numpy(),
        "float64 array": x.numpy().astype(np.float64),
        "uint8 array": x.numpy().astype(np.uint8),
    }


def _outputs(model, x, which=("loss", "log_prob", "encode", "embed")) -> dict:
    """What the model gives for ``x``, in eval mode, under fixed seeds, on the CPU."""
    out = {}
    with torch.no_grad():
        if "loss" in which:
            torch.manual_seed(0)
            out["loss"] = model.loss(x)
        if "log_prob" in which and isinstance(model, protocols.DensityModel):
            out["log_prob"] = model.log_prob(x, generator=torch.Generator().manual_seed(1))
        if "encode" in which and isinstance(model, protocols.LatentModel):
            out["encode"] = model.encode(x)
        if "embed" in which and isinstance(model, protocols.RepresentationModel):
            out["embed"] = model.embed(x)
    return {k: v.cpu() for k, v in out.items()}


@pytest.mark.parametrize("name", sorted(configs.ALL))
def test_images_in_every_lossless_form_give_the_same_results(name):
    """x, x.float(), x[:, None], x.numpy() (int, float64, uint8) give equal loss,
    log_prob, encode and embed, with the model on the device (float64 arrays are
    converted before they reach it: the MPS stand-in refuses float64 there)."""
    torch.manual_seed(0)
    d = _quick_digits()
    model = configs.ALL[name](d, profile="quick").to(DEVICE).eval()
    x = d.x_test[:4]
    reference = _outputs(model, x)
    assert reference, f"{name} has nothing to compare"
    for form, given in _forms(x).items():
        got = _outputs(model, given)
        for key, value in reference.items():
            assert torch.equal(got[key], value), f"{name}.{key}({form}) differs from the integers"


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baselines_take_images_in_every_lossless_form(name):
    d = _quick_digits()
    model = _fitted_baseline(name, d)
    x = d.x_train[:3]
    reference = model.log_prob(x, generator=torch.Generator().manual_seed(1))
    for form, given in _forms(x).items():
        got = model.log_prob(given, generator=torch.Generator().manual_seed(1))
        assert torch.equal(got, reference), f"{name}.log_prob({form}) differs from the integers"


def test_the_elbo_has_one_type():
    """VAE and hierarchical VAE return the same ELBO type with the same fields; a
    one-layer ELBO has no kl2 (hasattr tells), both have kl = the sum of the layers."""
    d = _quick_digits()
    x = d.x_test[:3]
    for name, layers in (("vae", 1), ("hvae", 2)):
        model = configs.ALL[name](d, profile="quick")
        with torch.no_grad():
            terms = model.elbo(x, generator=torch.Generator().manual_seed(0))
            again = model.elbo(x, generator=torch.Generator().manual_seed(0))
        assert type(terms) is ELBO and terms._fields == ELBO._fields
        assert len(terms.layers) == layers and hasattr(terms, "kl2") is (layers == 2)
        assert torch.allclose(terms.kl, sum(terms.layers))
        assert torch.allclose(terms.elbo, terms.reconstruction - terms.kl)
        assert torch.equal(terms.kl1, terms.layers[0])
        assert torch.equal(terms.elbo, again.elbo)
        with pytest.raises(TypeError):  # the generator is a keyword
            model.elbo(x, torch.Generator())


# ------------------------------------------------------------------ save and load


def _round_trip(model):
    buffer = io.BytesIO()
    selfsup.save(model, buffer)
    buffer.seek(0)
    return selfsup.load(buffer)


def _same_state(a, b) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype, key
        assert torch.equal(sa[key].cpu(), sb[key].cpu()), f"{key} differs after loading"


def _draws(model, n=2):
    with torch.no_grad():
        return model.sample(n, generator=torch.Generator().manual_seed(9)).cpu()


@pytest.mark.parametrize("name", sorted(configs.ALL))
def test_configuration_saves_and_loads(name):
    """selfsup.save / selfsup.load rebuild a trained configuration with no data set at
    hand: the same class, state, train/eval mode and outputs (loss, log_prob, encode,
    embed, samples under the same generator), from the device to the CPU."""
    torch.manual_seed(0)
    d = _quick_digits()
    model = configs.ALL[name](d, profile="quick")
    assert isinstance(model, Saveable), (
        f"{type(model).__name__} must inherit selfsup.saving.Saveable (its constructor's "
        "arguments are what load() rebuilds it from)"
    )
    if getattr(model, "adversarial", False):
        train_gan(model, d.x_train[:8], steps=2, batch_size=4, progress=False, device=DEVICE)
    else:
        fit(model, d.x_train[:8], epochs=1, batch_size=4, lr=1e-3, progress=False, device=DEVICE)
    model.eval()
    loaded = _round_trip(model)
    assert type(loaded) is type(model) and loaded.training is model.training
    _same_state(model, loaded)
    x = d.x_test[:3]
    mine, theirs = _outputs(model, x), _outputs(loaded, x)
    for key, value in mine.items():
        assert torch.equal(theirs[key], value), f"{key} differs after loading"
    if isinstance(model, protocols.Sampler):
        assert torch.equal(_draws(loaded), _draws(model))
    # the caller's random stream is untouched by rebuilding (initial weights are drawn)
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    _round_trip(model)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baseline_saves_and_loads(name):
    """The baselines keep their fitted state (a mixture's parameters, a kernel density's
    points, the memorizer's table, a class-conditional model's parts)."""
    d = _quick_digits()
    model = _fitted_baseline(name, d)
    loaded = _round_trip(model)
    assert type(loaded) is type(model)
    x = torch.cat([d.x_train[:2], d.x_test[:2]])
    a = model.log_prob(x, generator=torch.Generator().manual_seed(1))
    b = loaded.log_prob(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert torch.equal(_draws(loaded, 5), _draws(model, 5))
    if isinstance(model, baselines.ClassConditional):
        _, ys = loaded.sample_with_labels(6, generator=torch.Generator().manual_seed(2))
        _, expected = model.sample_with_labels(6, generator=torch.Generator().manual_seed(2))
        assert torch.equal(ys, expected)
    if isinstance(model, protocols.Conditional):
        known = torch.ones(d.shape, dtype=torch.bool)
        known[-1] = False
        g = torch.Generator().manual_seed(4)
        expected = model.complete(x, known, generator=g)
        assert torch.equal(loaded.complete(x, known, generator=torch.Generator().manual_seed(4)),
                           expected)  # fmt: skip


def test_an_unfitted_baseline_and_a_model_of_models_save_and_load():
    d = _quick_digits()
    unfitted = _round_trip(baselines.Dequantized(baselines.GaussianMixture(3), d.levels))
    assert isinstance(unfitted.model, baselines.GaussianMixture) and unfitted.shape is None
    with pytest.raises(ValueError, match="not fitted"):
        unfitted.sample(1)
    from selfsup.models.vae import VAE

    parts = baselines.ClassConditional(lambda xc: VAE(d.shape, 2, levels=d.levels, hidden=(8,)))
    parts.fit(d.x_train[:20], d.y_train[:20] % 2)
    loaded = _round_trip(parts)
    x = d.x_test[:2]
    kw = {"k": 4}
    assert torch.equal(
        loaded.log_prob(x, generator=torch.Generator().manual_seed(0), **kw),
        parts.log_prob(x, generator=torch.Generator().manual_seed(0), **kw),
    )
    with pytest.raises(ValueError, match="make_model"):
        loaded.fit(d.x_train[:20], d.y_train[:20] % 2)


def test_load_runs_no_code_from_a_file(tmp_path):
    """A file naming a class outside selfsup is refused before anything is imported, and
    a pickled object of another kind is refused by torch.load(weights_only=True)."""
    path = tmp_path / "evil.pt"

    def naming(cls, args=()):
        kwargs = {"__selfsup__": "dict", "value": {}}
        entry = {"__selfsup__": "object", "class": cls, "args": args, "kwargs": kwargs}
        return {"format": "selfsup", "version": 1, "object": {**entry, "extra": None}}

    torch.save(naming("os:system", ("echo",)), path)
    with pytest.raises(ValueError, match="outside selfsup"):
        selfsup.load(path)
    torch.save(naming("selfsup.runtime:Runtime"), path)
    with pytest.raises(ValueError, match="not a class load"):
        selfsup.load(path)

    class Sneaky:
        def __reduce__(self):
            return (print, ("ran",))

    torch.save({"format": "selfsup", "object": Sneaky()}, path, _use_new_zipfile_serialization=True)
    with pytest.raises(ValueError, match="not a selfsup save file"):
        selfsup.load(path)
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not a selfsup save file"):
        selfsup.load(path)
    with pytest.raises(ValueError, match="does not exist"):
        selfsup.load(tmp_path / "missing.pt")


def test_save_refuses_what_load_could_not_rebuild():
    d = _quick_digits()
    model = configs.vae(d, profile="quick")

    class Mine(type(model)):  # a class of a notebook, not of selfsup
        pass

    model.__class__ = Mine
    with pytest.raises(ValueError, match="not in selfsup"):
        selfsup.save(model, io.BytesIO())
    with pytest.raises(ValueError, match="selfsup model"):
        selfsup.save(torch.nn.Linear(2, 2), io.BytesIO())
    from selfsup.models.contrastive import TwoTower

    towers = TwoTower(torch.nn.Linear(3, 2), torch.nn.Linear(3, 2))
    with pytest.raises(ValueError, match="encoder_a|argument"):
        selfsup.save(towers, io.BytesIO())


def test_a_saved_file_loads_onto_the_cpu_and_keeps_a_float64_model(tmp_path):
    from selfsup.models.flows import realnvp

    flow = realnvp((2,), layers=2, hidden=(8,)).double()
    flow.log_prob(torch.randn(16, 2, dtype=torch.float64))  # ActNorm initialises
    path = tmp_path / "flow.pt"
    selfsup.save(flow, path)
    loaded = selfsup.load(path, map_location="cpu")
    assert next(loaded.parameters()).dtype == torch.float64
    _same_state(flow, loaded)
    x = torch.randn(4, 2, dtype=torch.float64)
    assert torch.equal(loaded.log_prob(x), flow.log_prob(x))


def test_pca_encodes_as_every_latent_model_does():
    """PCA (closed form, no configuration) is a latent model with the same ``encode``:
    a ``generator`` keyword, accepted and unused, and codes that decode on the data's
    scale."""
    d = _quick_digits()
    model = pca(d.x_train, 8)
    assert isinstance(model, protocols.LatentModel)
    _check_seeded(model.encode, d.x_test[:3])
    back = model.decode(model.encode(d.x_test[:3]))
    assert back.shape[0] == 3 and back.reshape(3, -1).shape[1] == d.x_test[0].numel()
