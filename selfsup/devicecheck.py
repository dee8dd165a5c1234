"""A stand-in accelerator on the CPU: find device bugs without a GPU.

A chapter that works on the CPU can still fail on a reader's GPU: a tensor the chapter
made on the CPU meets a model's output on ``cuda`` (``x @ W``, ``torch.cdist``), or
``.numpy()`` and matplotlib get a CUDA tensor. On a CPU-only machine nothing shows it,
since every tensor is on the one device. Inside :func:`emulate` the CPU plays two
devices::

    with devicecheck.emulate() as device:     # device is torch.device("cpu", 1)
        model.to(device)                      # parameters now live "on the accelerator"
        model(torch.zeros(2, 64))             # RuntimeError: ... same device ...

Tensors moved to ``device`` (``.to``, ``device=`` of a factory, ``Module.to``), and
every tensor computed from one, are *on the accelerator*: they report
``device == DEVICE`` (``cpu:1``) and behave as a CUDA tensor does where it matters. An
operation that mixes them with a CPU tensor of one or more dimensions raises, as
PyTorch does across devices (CPU scalars and CPU index tensors are allowed, as on
CUDA); ``.numpy()``, ``np.asarray`` and so matplotlib refuse them; ``.cpu()`` and
``.to("cpu")`` bring a copy back. The numbers are the CPU's, so a run gives the same
results it gives on the CPU, only slower (every operation is checked in Python).

``SELFSUP_DEVICE=emulated`` makes :func:`selfsup.runtime.setup` turn it on for the
rest of the process, with :func:`selfsup.runtime.device` returning the stand-in.

Two accelerators can be played (``kind``):

- ``"cuda"`` (``SELFSUP_DEVICE=emulated``): the rules above;
- ``"mps"`` (``SELFSUP_DEVICE=emulated-mps``): the same, and also what Apple's GPUs
  refuse: a float64 (or complex128) tensor on the device raises, as MPS does. A
  library that passes here runs on a student's MacBook.

``make test-full-smoke`` runs every chapter on the MPS stand-in
(``tests/test_full_profile.py``), and the conformance test (``tests/test_protocol.py``)
runs every model on it.

:func:`host_reads` counts, inside its block, every read of a device tensor by the host
(``float(t)``, ``.item()``, ``.tolist()``, ``.cpu()``, ``nonzero``, a boolean-mask index,
...): on a GPU each one waits for all the work queued before it
(``tests/test_device_rules.py`` bounds them per training step and per ``sample`` call).

It is a check of where tensors live, not a simulator of a GPU: kernels, memory and
speed are the CPU's.
"""

from __future__ import annotations

import collections
import contextlib
import os
import traceback
import weakref

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

#: The device a chapter sees while the stand-in is on (its ``rt.device``). Its type is
#: ``cpu``, so torch's CPU kernels (fused Adam included) accept its tensors, and its index
#: 1 tells it from the CPU: ``DEVICE != torch.device("cpu")``, as for ``cuda:0``.
DEVICE = torch.device("cpu", 1)
_CPU = torch.device("cpu")
_NAME = "the emulated accelerator (selfsup.devicecheck)"

KINDS = ("cuda", "mps")

# id(tensor) -> weak reference, for every tensor on the stand-in.
_on_device: dict[int, weakref.ref] = {}
# What the stand-in plays now ("cuda" or "mps"), and the open host_reads counters.
_kind = "cuda"
_read_counters: list[collections.Counter] = []


def on_device(t) -> bool:
    """Whether ``t`` is a tensor on the stand-in accelerator."""
    if not isinstance(t, torch.Tensor):
        return False
    ref = _on_device.get(id(t))
    return ref is not None and ref() is t


def _forget(key):
    return lambda _ref: _on_device.pop(key, None)


_NO_MPS = (torch.float64, torch.complex128)


def _tag(t):
    if isinstance(t, torch.Tensor) and not on_device(t):
        if _kind == "mps" and t.dtype in _NO_MPS:
            _violation(
                TypeError(
                    f"Cannot convert a MPS Tensor to {str(t.dtype).removeprefix('torch.')} "
                    "dtype as the MPS framework doesn't support float64. Please use float32 "
                    f"instead. (on {_NAME} playing Apple's MPS; compute in float32 on the "
                    "device, or in float64 on the CPU)"
                )
            )
        _on_device[id(t)] = weakref.ref(t, _forget(id(t)))
    return t


# Functions that bring a device tensor's values to the host (and so wait for the GPU).
_READS = {
    torch.Tensor.__float__, torch.Tensor.__int__, torch.Tensor.__bool__,
    torch.Tensor.__index__, torch.Tensor.__format__, torch.Tensor.item, torch.Tensor.tolist,
    torch.Tensor.cpu, torch.Tensor.numpy, torch.Tensor.__array__, torch.Tensor.nonzero,
    torch.nonzero, torch.argwhere, torch.Tensor.argwhere, torch.masked_select,
    torch.Tensor.masked_select, torch.unique, torch.Tensor.unique, torch.equal,
    torch.Tensor.equal, torch.allclose, torch.Tensor.allclose,
}  # fmt: skip


def _count_read(func, args, kwargs) -> None:
    """Count ``func`` in every open :func:`host_reads` when it reads a device tensor."""
    first = args[0] if args else None
    if func is torch.Tensor.to:
        target = next((a for a in args[1:] if isinstance(a, (str, torch.device))), None)
        target = kwargs.get("device", target)
        reads = (
            on_device(first)
            and target is not None
            and not _is_target(target)
            and (torch.device(target).type == "cpu")
        )
    elif func is torch.Tensor.__getitem__:  # a boolean mask: its size is read on the host
        index = args[1] if len(args) > 1 else None
        index = index if isinstance(index, tuple) else (index,)
        reads = on_device(first) and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool and i.dim() > 0 for i in index
        )
    elif func in _READS:
        flat, _ = tree_flatten((args, kwargs))
        reads = any(on_device(t) for t in flat)
        if func is torch.Tensor.__format__ or func is torch.Tensor.__index__:
            reads = reads and first.numel() == 1
    else:
        return
    if reads:
        name = getattr(func, "__name__", str(func))
        for counter in _read_counters:
            counter[name] += 1


@contextlib.contextmanager
def host_reads():
    """Count the host's reads of stand-in tensors inside the block (module doc).

    Yields a :class:`collections.Counter` of the reading functions' names; its
    ``total()`` is the number of reads. Use it inside :func:`emulate`::

        with devicecheck.emulate() as device, devicecheck.host_reads() as reads:
            ...
        assert reads.total() <= steps
    """
    counter = collections.Counter()
    _read_counters.append(counter)
    try:
        yield counter
    finally:
        _read_counters.remove(counter)


def _is_target(device) -> bool:
    if device is None:
        return False
    if isinstance(device, (str, int)):
        device = torch.device(device)
    return device == DEVICE


_GETTERS = {torch.Tensor.device.__get__}
_ALLOW_MIXED = {  # CUDA accepts CPU operands here
    torch.Tensor.__getitem__, torch.Tensor.__setitem__, torch.Tensor.copy_,
    torch.Tensor.data.__set__, torch._has_compatible_shallow_copy_type,
    torch.Tensor.grad.__set__, torch.Tensor.backward, torch.autograd.backward,
}  # fmt: skip
_OWN_RULES = {torch.autograd.grad, torch.Tensor.__deepcopy__}  # placed by their own rule
_TO_HOST = {torch.Tensor.cpu}
_NUMPY = {torch.Tensor.numpy, torch.Tensor.__array__}


def _mixed_error(func, tensors):
    shapes = ", ".join(
        f"{tuple(t.shape)} on {'the accelerator' if on_device(t) else 'cpu'}" for t in tensors
    )
    return RuntimeError(
        f"Expected all tensors to be on the same device, but found at least two devices, "
        f"{_NAME} and cpu! ({getattr(func, '__name__', func)} with tensors {shapes}). "
        f"Move the CPU tensor with .to(device) (or the result to the CPU with .cpu())."
    )


LOG_ENV = "SELFSUP_DEVICECHECK_LOG"


def _violation(error: Exception) -> None:
    """Raise ``error``; or, with ``SELFSUP_DEVICECHECK_LOG=path``, append it with the
    lines that led to it to that file and go on (to list every device bug in one run)."""
    path = os.environ.get(LOG_ENV, "").strip()
    if not path:
        raise error
    here = os.path.dirname(torch.__file__), os.path.abspath(__file__)
    frames = [
        f"  {f.filename}:{f.lineno} {f.line}"
        for f in traceback.extract_stack()[:-2]
        if not f.filename.startswith(here) and "site-packages" not in f.filename
    ]
    with open(path, "a") as log:
        log.write(f"{error}\n" + "\n".join(frames[-3:]) + "\n\n")


class _Emulator(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if _read_counters:
            _count_read(func, args, kwargs)
        if func in _GETTERS:
            return DEVICE if on_device(args[0]) else func(*args, **kwargs)
        if func in _NUMPY and on_device(args[0]):
            _violation(
                TypeError(
                    f"can't convert a tensor on {_NAME} to numpy (as for cuda:0). "
                    f"Use Tensor.cpu() to copy the tensor to host memory first."
                )
            )
        if func in _TO_HOST:
            t = args[0]
            return t.clone() if on_device(t) else t
        if func is torch.Tensor.to:
            t = args[0]
            copy = bool(kwargs.pop("copy", False))
            other = next((a for a in args[1:] if isinstance(a, torch.Tensor)), None)
            if other is not None:  # t.to(other): other's device and dtype
                target, dtype, fmt = DEVICE if on_device(other) else other.device, other.dtype, None
            else:
                target, dtype, _, fmt = torch._C._nn._parse_to(*args[1:], **kwargs)
            settings = {"dtype": dtype} if dtype is not None else {}
            if fmt is not None:
                settings["memory_format"] = fmt
            out = t.to(**settings) if settings else t
            if copy and out is t:
                out = t.clone()
            if target is None:
                return _tag(out) if on_device(t) else out
            if _is_target(target):
                return _tag(out.clone() if out is t and not on_device(t) else out)
            return out.clone() if on_device(t) and out is t else out  # to the CPU
        # Factories and methods with device=.
        target = kwargs.get("device")
        if _is_target(target):
            kwargs["device"] = _CPU
            out = func(*args, **kwargs)
            return tree_map(_tag, out)
        flat, _ = tree_flatten((args, kwargs))
        tensors = [t for t in flat if isinstance(t, torch.Tensor)]
        tagged = [t for t in tensors if on_device(t)]
        if tagged and func not in _ALLOW_MIXED and func not in _OWN_RULES:
            host = [t for t in tensors if not on_device(t) and t.dim() > 0]
            if host:
                _violation(_mixed_error(func, tagged[:1] + host[:1]))
        if func is torch.Tensor.__getitem__ and not on_device(args[0]) and tagged:
            _violation(
                RuntimeError(
                    f"indices should be either on cpu or on the same device as the indexed "
                    f"tensor: a CPU tensor indexed with a tensor on {_NAME}"
                )
            )
        out = func(*args, **kwargs)
        if func is torch.Tensor.__deepcopy__:  # the copy is where the original is
            return _tag(out) if on_device(args[0]) else out
        if func is torch.autograd.grad:  # gradients live where their inputs do
            inputs = kwargs.get("inputs", args[1] if len(args) > 1 else ())
            inputs = [inputs] if isinstance(inputs, torch.Tensor) else list(inputs)
            for grad, x in zip(out, inputs, strict=False):
                if on_device(x):
                    _tag(grad)
            return out
        if func is torch.Tensor.data.__set__:
            if on_device(args[1]):
                _tag(args[0])
            return out
        if tagged:
            tree_map(_tag, out)
        return out


def _untag(t):
    _on_device.pop(id(t), None)
    return t


_module_to = torch.nn.Module.to


def _tensors_of(module: torch.nn.Module):
    for t in list(module.parameters()) + list(module.buffers()):
        yield t
        if t.grad is not None:
            yield t.grad


def _to(module: torch.nn.Module, *args, **kwargs):
    """``Module.to`` with the stand-in: the tensors stay on the CPU, marked as moved."""
    target, dtype, blocking, fmt = torch._C._nn._parse_to(*args, **kwargs)
    if target is None:
        return _module_to(module, *args, **kwargs)
    settings = {"non_blocking": blocking}
    if dtype is not None:
        settings["dtype"] = dtype
    if fmt is not None:
        settings["memory_format"] = fmt
    _module_to(module, _CPU, **settings)
    mark = _tag if _is_target(target) else _untag
    for t in _tensors_of(module):
        mark(t)
    return module


def _cpu(module: torch.nn.Module):
    return _to(module, _CPU)


_parameter_deepcopy = torch.nn.Parameter.__deepcopy__


def _deepcopy_parameter(param, memo):
    """A copy of a parameter on the stand-in is on the stand-in (``Parameter`` copies
    itself without a torch function)."""
    out = _parameter_deepcopy(param, memo)
    return _tag(out) if on_device(param) else out


class _Switch:
    """The mode plus the ``Module.to`` / ``Module.cpu`` patch, entered and left together."""

    def __init__(self, kind: str = "cuda"):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.mode, self.kind = _Emulator(), kind

    def __enter__(self):
        global _kind
        self.outer, _kind = _kind, self.kind
        torch.nn.Module.to, torch.nn.Module.cpu = _to, _cpu
        torch.nn.Parameter.__deepcopy__ = _deepcopy_parameter
        self.mode.__enter__()
        return DEVICE

    def __exit__(self, *exc):
        global _kind
        _kind = self.outer
        self.mode.__exit__(*exc)
        torch.nn.Module.to, torch.nn.Module.cpu = _module_to, _module_cpu
        torch.nn.Parameter.__deepcopy__ = _parameter_deepcopy
        _on_device.clear()
        return False


_module_cpu = torch.nn.Module.cpu
_active: _Switch | None = None


@contextlib.contextmanager
def emulate(kind: str = "cuda"):
    """Inside the block, :data:`DEVICE` is a stand-in accelerator of ``kind`` (``"cuda"``
    or ``"mps"``, which also refuses float64; module doc)."""
    with _Switch(kind) as device:
        yield device


def enable(kind: str = "cuda") -> torch.device:
    """Turn the stand-in on for the rest of the process (``SELFSUP_DEVICE=emulated`` or
    ``emulated-mps``)."""
    global _active
    if _active is None:
        _active = _Switch(kind)
        _active.__enter__()
    elif _active.kind != kind:
        raise RuntimeError(f"the stand-in already plays {_active.kind!r} in this process")
    return DEVICE


def enabled() -> bool:
    """Whether :func:`enable` turned the stand-in on in this process."""
    return _active is not None


def kind() -> str | None:
    """What :func:`enable` made the stand-in play (``"cuda"``, ``"mps"``), or ``None``."""
    return None if _active is None else _active.kind


def refuses_float64(device) -> bool:
    """Whether ``device`` is the stand-in while it plays Apple's MPS (inside
    :func:`emulate` or after :func:`enable`), where float64 raises."""
    return _kind == "mps" and _is_target(device)
