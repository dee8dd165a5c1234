"""The CPU stand-in for an accelerator (``selfsup.devicecheck``): it must raise where a GPU
raises, stay silent where a GPU works, and give the CPU's numbers."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from selfsup import devicecheck, runtime, train
from selfsup.models.autoencoder import Autoencoder


def test_mixing_devices_raises_like_cuda():
    with devicecheck.emulate() as device:
        layer = nn.Linear(4, 3).to(device)
        assert layer.weight.device == device and device != torch.device("cpu")
        with pytest.raises(RuntimeError, match="same device"):
            layer(torch.randn(5, 4))
        with pytest.raises(RuntimeError, match="same device"):
            torch.cdist(layer.weight, torch.randn(2, 4))
        out = layer(torch.randn(5, 4, device=device))
        with pytest.raises(TypeError, match="numpy"):
            out.detach().numpy()
        with pytest.raises(TypeError, match="numpy"):
            np.asarray(out.detach())
        assert out.detach().cpu().numpy().shape == (5, 3)


def test_what_cuda_allows_is_allowed():
    with devicecheck.emulate() as device:
        x = torch.arange(6.0).to(device)
        assert (x * torch.tensor(2.0)).device == device  # a CPU scalar
        assert x[torch.tensor([0, 2])].device == device  # a CPU index
        x[torch.tensor([1])] = 5.0
        assert float(x.sum()) == 0 + 5 + 2 + 3 + 4 + 5
        assert x.tolist()[1] == 5.0 and x.max().item() == 5.0
        assert torch.zeros(2, device=device).device == device
        assert torch.zeros_like(x).device == device
        moved = [x.to(torch.float64), x.to(device, torch.float64), x.to(device, copy=True),
                 torch.ones(2).to(x), torch.ones(2).to(device, non_blocking=True)]  # fmt: skip
        assert all(t.device == device for t in moved)
        assert x.cpu().device == torch.device("cpu") and x.to("cpu").device.index is None
        with pytest.raises(RuntimeError, match="indices"):
            torch.arange(6.0)[torch.tensor([0]).to(device)]


def test_training_gives_the_cpus_numbers_and_the_model_stays():
    data = torch.randint(0, 17, (64, 1, 8, 8))

    def trained(device):
        torch.manual_seed(0)
        model = Autoencoder((1, 8, 8), 4, hidden=(16,), levels=17)
        train.fit(model, data, epochs=2, batch_size=32, seed=0, progress=False, device=device)
        return model

    reference = trained("cpu")
    with devicecheck.emulate() as device:
        model = trained(device)
        assert next(model.parameters()).device == device  # fit leaves it there
        codes = model.encode(data[:5])  # CPU input, moved by the model
        assert codes.device == device
        model.to("cpu")
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=0, atol=0)


def test_a_copy_stays_where_the_original_is():
    with devicecheck.emulate() as device:
        layer = nn.Linear(2, 2).to(device)
        twin = copy.deepcopy(layer)
        assert all(p.device == device for p in twin.parameters())
        assert twin(torch.ones(1, 2, device=device)).device == device
        assert copy.deepcopy(torch.ones(2)).device == torch.device("cpu")


def test_the_stand_in_is_left_cleanly():
    with devicecheck.emulate() as device:
        layer = nn.Linear(2, 2).to(device)
    assert layer(torch.randn(1, 2)).shape == (1, 2)  # an ordinary CPU module again
    assert nn.Module.to is devicecheck._module_to


def test_runtime_device_from_the_environment(monkeypatch):
    monkeypatch.setenv(runtime.DEVICE_ENV, "cpu")
    assert runtime.device() == torch.device("cpu")
    monkeypatch.setenv(runtime.DEVICE_ENV, "meta")
    with pytest.raises(ValueError, match="meta"):
        runtime.device()
    monkeypatch.setenv(runtime.DEVICE_ENV, "tpu")
    with pytest.raises(Exception, match="SELFSUP_DEVICE"):
        runtime.device()


def test_the_log_lists_every_device_bug_and_goes_on(tmp_path, monkeypatch):
    log = tmp_path / "device.log"
    monkeypatch.setenv(devicecheck.LOG_ENV, str(log))
    with devicecheck.emulate() as device:
        w = torch.ones(3, device=device)
        total = float((w * torch.ones(3)).sum())  # a bug, logged, and the CPU's answer
        w.numpy()
    assert total == 3.0
    text = log.read_text()
    assert "same device" in text and "numpy" in text and "test_devicecheck.py" in text


def test_training_on_the_meta_device_is_refused():
    model = Autoencoder((1, 8, 8), 4, hidden=(16,), levels=17)
    with pytest.raises(ValueError, match="device='meta'.*holds no numbers"):
        train.fit(model, torch.randint(0, 17, (8, 1, 8, 8)), epochs=1, device="meta")
