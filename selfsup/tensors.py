"""Tensors made where a model works: random draws and evaluation mode.

- :func:`randn`, :func:`rand`: random numbers drawn on a generator's own device (a CPU
  generator draws on the CPU) and moved to the model's device, so a seed means the same
  numbers on every device; :func:`draw_device` says where a draw happens.
- :func:`step_generator`: the generator of a training loop's per-step draws, on the
  accelerator when there is one (no copy from the host in a step).
- :func:`eval_mode`: a module in eval mode inside a ``with`` block, given back in the
  mode it came in.
"""

from __future__ import annotations

import contextlib

import torch

__all__ = ["draw_device", "eval_mode", "rand", "randn", "step_generator"]


def draw_device(generator: torch.Generator | None, device=None):
    """Where to draw random numbers: on ``generator``'s device when one is given (so a
    CPU generator gives the same numbers whatever the model's device), else ``device``.
    Draw there, then move the result to the model's device."""
    return generator.device if generator is not None else device


def step_generator(generator: torch.Generator, device) -> torch.Generator:
    """The generator of a training loop's per-step draws (noise, batch indices).

    On a device of ``generator``'s own type (the CPU, and the CPU's stand-in
    accelerator) it is ``generator`` itself, so CPU runs keep their numbers. On an
    accelerator it is a generator there, seeded once from ``generator``: a step then
    draws on the device and copies nothing from the host (a copy waits for the GPU).
    Runs on one GPU are reproducible; they differ from the CPU's, as training on a GPU
    does anyway.
    """
    device = torch.device(device)
    if device.type == generator.device.type:
        return generator
    seed = int(torch.randint(2**62, (), generator=generator, device=generator.device))
    return torch.Generator(device=device).manual_seed(seed)


def _draw(fn, shape, generator, device, **kw) -> torch.Tensor:
    out = fn(shape, generator=generator, device=draw_device(generator, device), **kw)
    return out if device is None else out.to(device)


def randn(shape, generator: torch.Generator | None = None, device=None, **kw) -> torch.Tensor:
    """``torch.randn(shape)`` drawn on ``generator``'s device and moved to ``device``.

    A model on the GPU sampled with a CPU generator draws exactly the numbers a CPU
    run draws, so a seed means the same samples on every device.
    """
    return _draw(torch.randn, tuple(shape), generator, device, **kw)


def rand(shape, generator: torch.Generator | None = None, device=None, **kw) -> torch.Tensor:
    """``torch.rand(shape)``, drawn like :func:`randn`."""
    return _draw(torch.rand, tuple(shape), generator, device, **kw)


@contextlib.contextmanager
def eval_mode(module: torch.nn.Module):
    """Evaluate ``module`` in eval mode inside the block, and give it back in the mode
    it came in (a method never leaves a model in a different mode)."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
