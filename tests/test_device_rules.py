"""Every reader's device: the rules of :mod:`selfsup.protocols` that a CPU run cannot see.

For every configuration, on the CPU's stand-in playing Apple's GPU
(:mod:`selfsup.devicecheck`, ``kind="mps"``):

- no float64 tensor is made in ``fit``, ``sample`` or ``log_prob`` of a float32 model,
  on any device (MPS has none; counted at the dispatcher, so CPU tensors count too);
- training reads the device from the host at most once a step (the loss, which the CPU
  path reads before each step; on a GPU with fused Adam not even that) plus a few
  times an epoch; a ``sample`` call reads it a fixed number of times, whatever the
  number of samples or pixels (:func:`selfsup.devicecheck.host_reads`);
- training works under bf16 autocast, and ``torch.compile`` traces each loss in one
  graph (the library's checks step aside while compiling).
"""

from __future__ import annotations

import collections

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from selfsup import configs, data, devicecheck, train
from selfsup.data import ImageData
from selfsup.models.gan import train_gan

NAMES = sorted(set(configs.ALL) - {"gan"})


class _Float64(TorchDispatchMode):
    """Counts the float64 tensors that torch's operators return."""

    def __init__(self):
        super().__init__()
        self.made = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.dtype in (torch.float64, torch.complex128):
                self.made[str(func)] += 1
        return out


def _digits(n: int = 64) -> ImageData:
    d = data.images(profile="quick")
    return ImageData(d.x_train[:n], d.y_train[:n], d.x_test[:8], d.y_test[:8], d.shape,
                     d.levels, d.name, d.description)  # fmt: skip


def _fit_reads(name: str, d: ImageData, epochs: int) -> tuple[collections.Counter, object]:
    torch.manual_seed(0)
    model = configs.ALL[name](d, profile="quick")
    with devicecheck.emulate("mps") as device, devicecheck.host_reads() as reads:
        train.fit(model, d.x_train, epochs=epochs, batch_size=16, progress=False, device=device)
    return reads, model


@pytest.mark.parametrize("name", NAMES)
def test_training_reads_the_device_at_most_once_a_step(name):
    d = _digits(64)
    steps = 64 // 16
    one, _ = _fit_reads(name, d, 1)
    three, _ = _fit_reads(name, d, 3)
    per_epoch = (three.total() - one.total()) / 2
    # The CPU path reads each loss once before its step, and fit reads the epoch's
    # losses back once; nothing else may read the device in a step.
    assert per_epoch <= steps + 2, f"{per_epoch} reads an epoch of {steps} steps: {three - one}"


def test_the_codebook_data_start_reads_the_device_once():
    # The full profile's VQ-VAE starts its codebook from the first batch: one read of
    # the saved flag, at the first step, and nothing per step after it (MPS stand-in).
    d = _digits(64)
    counts = {}
    for init, epochs in (("random", 1), ("data", 1), ("data", 3)):
        torch.manual_seed(0)
        model = configs.vqvae(d, profile="quick", init=init, restart_dead=True)
        with devicecheck.emulate("mps") as device, devicecheck.host_reads() as reads:
            train.fit(model, d.x_train, epochs=epochs, batch_size=16, progress=False,
                      device=device)  # fmt: skip
        counts[init, epochs] = reads
    assert bool(model.quantizer.initialized)
    assert counts["data", 1].total() - counts["random", 1].total() == 1
    per_epoch = (counts["data", 3].total() - counts["data", 1].total()) / 2
    assert per_epoch <= 64 // 16 + 2, f"{per_epoch} reads an epoch: {counts['data', 3]}"


@pytest.mark.parametrize("name", NAMES)
def test_no_float64_and_a_fixed_number_of_reads_per_call(name):
    d = _digits(32)
    torch.manual_seed(0)
    model = configs.ALL[name](d, profile="quick")
    with devicecheck.emulate("mps") as device:
        with _Float64() as f64:
            train.fit(model, d.x_train, epochs=1, batch_size=16, progress=False, device=device)
        assert not f64.made, f"fit made float64 tensors: {dict(f64.made)}"
        calls = {}
        with torch.no_grad():
            if hasattr(model, "log_prob"):
                with _Float64() as f64:
                    model.log_prob(d.x_test[:4])
                assert not f64.made, f"log_prob made float64 tensors: {dict(f64.made)}"
            if hasattr(model, "sample"):
                for n in (2, 6):
                    g = torch.Generator().manual_seed(0)
                    with _Float64() as f64, devicecheck.host_reads() as reads:
                        model.sample(n, generator=g)
                    assert not f64.made, f"sample made float64 tensors: {dict(f64.made)}"
                    calls[n] = reads.total()
                # a handful per call, none per pixel or per sample
                assert calls[2] == calls[6] <= 6, f"reads per sample call: {calls}"


def test_a_gan_step_reads_only_its_two_losses():
    d = _digits(64)

    def reads(steps: int) -> int:
        torch.manual_seed(0)
        gan = configs.gan(d, profile="quick")
        with devicecheck.emulate("mps") as device, devicecheck.host_reads() as r:
            with _Float64() as f64:
                train_gan(gan, d.x_train, steps=steps, batch_size=16, progress=False,
                          device=device, callback_every=1000)  # fmt: skip
        assert not f64.made, f"train_gan made float64 tensors: {dict(f64.made)}"
        return r.total()

    assert (reads(6) - reads(3)) / 3 <= 2  # the discriminator's and the generator's loss


def test_the_counters_can_fail():
    """A read hidden in a step, and a float64 tensor on the MPS stand-in, are caught."""
    with devicecheck.emulate("mps") as device:
        x = torch.ones(4, device=device)
        with devicecheck.host_reads() as reads:
            y = x * 2 + 1  # device work: no read
            assert reads.total() == 0
            if y.sum() > 0:  # a read
                pass
            y[y > 1].sum()  # a boolean mask: its size is read
            torch.nonzero(y)
            y.cpu()
            float(y[0])
        assert reads.total() == 5, dict(reads)
        makers = (
            lambda: x.double(),
            lambda: torch.zeros(2, dtype=torch.float64, device=device),
            lambda: x.to(device, torch.float64),
            lambda: x.to(float),
        )
        for make in makers:
            with pytest.raises(TypeError, match="MPS.*float64"):
                make()
        assert torch.zeros(2, dtype=torch.float64).dtype == torch.float64  # the CPU has it
        assert x.cpu().double().sum().item() == 4.0
    with devicecheck.emulate("cuda") as device:  # CUDA has float64
        assert torch.ones(2, device=device).double().device == device


@pytest.mark.parametrize("name", NAMES + ["gan"])
def test_trains_under_bf16_autocast(name):
    d = _digits(32)
    torch.manual_seed(0)
    model = configs.ALL[name](d, profile="quick")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        if name == "gan":
            history = train_gan(model, d.x_train, steps=2, batch_size=16, progress=False,
                                device="cpu")  # fmt: skip
            losses = history.d_loss + history.g_loss
        else:
            losses = train.fit(model, d.x_train, epochs=1, batch_size=16, progress=False,
                               device="cpu").train_loss  # fmt: skip
    assert all(torch.isfinite(torch.tensor(losses)))


@pytest.mark.parametrize("name", NAMES + ["gan"])
def test_compiles_in_one_graph_and_trains(name):
    d = _digits(32)
    torch.manual_seed(0)
    model = configs.ALL[name](d, profile="quick")
    model.train()
    model.loss(d.x_train[:16])  # eager first: a flow's ActNorm initialises from this batch
    explained = torch._dynamo.explain(model.loss)(d.x_train[:16])
    reasons = [str(b.reason)[:200] for b in explained.break_reasons]
    assert explained.graph_break_count == 0, reasons
    if name != "gan":  # fit refuses nothing here; the GAN trains with train_gan
        model.loss = torch.compile(model.loss, backend="eager")
        history = train.fit(model, d.x_train, epochs=1, batch_size=16, progress=False,
                            device="cpu")  # fmt: skip
        assert history.epochs == 1 and all(map(torch.isfinite, torch.tensor(history.train_loss)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (the CUDA workflow)")
@pytest.mark.parametrize("name", NAMES)
def test_on_cuda_a_training_step_never_waits_for_the_gpu(name):
    """On a real GPU, CUDA's own sync detector counts the waits of ``fit``: after the
    first step (which checks the data's values once) only the losses' read-back once an
    epoch may wait, never a step."""
    import warnings

    d = _digits(64)
    torch.manual_seed(0)
    model = configs.ALL[name](d, profile="quick")
    train.fit(model, d.x_train, epochs=1, batch_size=16, progress=False, device="cuda")
    epochs, steps = 3, 64 // 16
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            train.fit(model, d.x_train, epochs=epochs, batch_size=16, progress=False,
                      device="cuda")  # fmt: skip
    finally:
        torch.cuda.set_sync_debug_mode(0)
    waits = [w for w in caught if "synchroniz" in str(w.message)]
    # the first step's value checks, and one read-back an epoch: never one per step
    assert len(waits) < epochs * steps, [str(w.message)[:120] for w in waits[:5]]


def test_float64_work_goes_to_the_cpu_where_the_device_has_none():
    """An exact float64 model (probabilistic PCA) trains on the CPU when the default
    device is Apple's GPU, is refused there when asked for, and the exact KDE keeps its
    float64 kernels on the CPU; on the CUDA stand-in both stay on the device."""
    from selfsup import runtime
    from selfsup.models.baselines import KernelDensity
    from selfsup.models.vae import LinearGaussianVAE

    x = torch.rand(32, 6, dtype=torch.float64)
    with devicecheck.emulate("mps") as device:
        assert not runtime.has_float64(device) and runtime.has_float64("cpu")
        ppca = LinearGaussianVAE(6, 2)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(runtime, "device", lambda: device)
            train.fit(ppca, x, epochs=1, batch_size=16)
            with pytest.raises(ValueError, match="has no float64.*device='cpu'"):
                train.fit(ppca, x, epochs=1, batch_size=16, device=device)
            kde = KernelDensity(0.5).fit(x.numpy())
            assert kde._train.device == torch.device("cpu")
            assert torch.isfinite(kde.log_prob(x.numpy())).all()
        assert ppca.W.device == torch.device("cpu")
    with devicecheck.emulate("cuda") as device:
        assert runtime.has_float64(device)
        assert KernelDensity(0.5, device=device).fit(x.numpy())._train.device == device
