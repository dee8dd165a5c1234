"""One validation layer for the library's public boundary.

In the manner of scikit-learn's ``check_array`` / ``check_scalar``: every public
function and method converts and checks its arguments here, at its top, and every
refusal names the argument, what was expected, what came, and how to fix it.

- Conversion: lists, NumPy arrays and NumPy scalars become tensors, arrays and
  Python numbers, so ``bits_per_dim(nll, np.prod((8, 8)))`` works.
- Scalars: :func:`integer`, :func:`number`, :func:`probability`, :func:`choice`,
  :func:`sizes` (shapes and layer widths), :func:`sample_count` (``n >= 0``).
- Arrays: :func:`tensor`, :func:`array` (rank, trailing shape, length, dtype,
  finiteness), :func:`images` (the data kinds of the book's models: integer grey
  levels, binary pixels, floats in ``[0, 1]``, real values). Inputs are converted once,
  here, wherever nothing is lost: whole-number floats and NumPy arrays of grey levels
  become ``torch.long``, a singleton channel axis ``(B, 1, H, W)`` is dropped, and floats
  take the model's dtype and device (``like=model``, :func:`place`).
- Devices and randomness: :func:`device`, :func:`generator`.

Value checks (finiteness, ranges) read a tensor's values, which on a GPU is a
synchronisation. Training loops validate their data once and then run their steps
inside :func:`trusted`, where only the free checks (type, rank, shape, dtype) run.

Errors are :class:`ValueError`; a wrong *type* raises :class:`InputTypeError`,
which is both a ``ValueError`` and a ``TypeError``.
"""

from __future__ import annotations

import contextvars
import math
import numbers
from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "InputTypeError",
    "array",
    "as_images",
    "choice",
    "device",
    "finite",
    "generator",
    "images",
    "integer",
    "known_mask",
    "number",
    "place",
    "probability",
    "sample_count",
    "sizes",
    "tensor",
    "trusted",
    "unit_images",
    "values_checked",
    "whole",
]

KINDS = ("levels", "binary", "unit", "real")

_check_values = contextvars.ContextVar("selfsup_check_values", default=True)


class InputTypeError(ValueError, TypeError):
    """An argument of the wrong type (also a ``TypeError``, as Python would raise)."""


class trusted:  # noqa: N801 (used as a function: ``with checks.trusted():``)
    """Skip the checks that read values (finiteness, ranges) inside this block.

    For training loops, after the data have been checked once: the free checks
    (types, shapes, dtypes) still run, none synchronises with a GPU. While
    ``torch.compile`` traces, it does nothing: no value check runs there
    (:func:`values_checked`), and a context variable would break the graph.
    """

    def __enter__(self) -> None:
        compiling = torch.compiler.is_compiling()
        self._token = None if compiling else _check_values.set(False)

    def __exit__(self, *exc) -> bool:
        if self._token is not None:
            _check_values.reset(self._token)
        return False


def values_checked() -> bool:
    """Whether value checks run here: ``False`` inside :func:`trusted`, and while
    ``torch.compile`` traces (a check that reads values would break the graph and wait
    for the GPU)."""
    if torch.compiler.is_compiling():
        return False
    return _check_values.get()


def describe(x) -> str:
    """A short description of what came, for error messages."""
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    if isinstance(x, np.ndarray):
        return f"a {x.dtype} array of shape {x.shape}"
    if isinstance(x, (str, bytes, bool, numbers.Number)) or x is None:
        return f"{x!r} ({type(x).__name__})"
    return f"a {type(x).__name__}"


def _fail(name: str, expected: str, got, fix: str | None = None, cls=ValueError):
    message = f"{name} must be {expected}, got {describe(got)}"
    raise cls(f"{message}; {fix}" if fix else message)


# ------------------------------------------------------------------------ scalars


def _scalar(value):
    """NumPy scalars and one-element tensors/arrays as Python scalars; else unchanged."""
    if isinstance(value, (np.generic, np.ndarray, torch.Tensor)) and np.ndim(value) == 0:
        return value.item()
    return value


def integer(
    value, name: str, *, low: int | None = 1, high: int | None = None, fix: str | None = None
) -> int:
    """``value`` as a Python int in ``[low, high]`` (NumPy integers accepted; bools,
    floats and strings refused)."""
    v = _scalar(value)
    expected = _bounds_text(low, high, integer=True)
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        hint = fix
        if isinstance(v, float) and math.isfinite(v) and v.is_integer():
            hint = f"pass {name}={int(v)}"
        _fail(name, expected, value, hint, InputTypeError)
    v = int(v)
    if (low is not None and v < low) or (high is not None and v > high):
        _fail(name, expected, value, fix)
    return v


def number(
    value,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
    fix: str | None = None,
) -> float:
    """``value`` as a finite Python float in the given range."""
    v = _scalar(value)
    expected = _bounds_text(low, high, low_open=low_open, high_open=high_open)
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        _fail(name, expected, value, fix, InputTypeError)
    v = float(v)
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        _fail(name, expected.replace("number", "finite number", 1), value, fix)
    too_low = low is not None and (v <= low if low_open else v < low)
    too_high = high is not None and (v >= high if high_open else v > high)
    if too_low or too_high:
        _fail(name, expected, value, fix)
    return v


def probability(value, name: str, *, fix: str | None = None) -> float:
    """A probability in ``[0, 1]``."""
    return number(value, name, low=0.0, high=1.0, fix=fix)


def _bounds_text(low, high, low_open=False, high_open=False, integer=False) -> str:
    """``"a positive int"``, ``"a number in [0, 1]"``, ... for error messages."""
    noun = "int" if integer else "number"
    if high is None and low == 0 and (low_open or integer is False):
        if low_open:
            return f"a positive {noun}"
    if integer and high is None and low == 1:
        return "a positive int"
    if high is None and low == 0 and not low_open:
        return f"a non-negative {noun}"
    article = "an" if integer else "a"
    if low is not None and high is not None:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        return f"{article} {noun} in {left}{low:g}, {high:g}{right}"
    if low is not None:
        return f"{article} {noun} {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{article} {noun} {'<' if high_open else '<='} {high:g}"
    return f"{article} {noun}"


def choice(value, name: str, options: Sequence) -> object:
    """One of ``options`` (compared with ``==``)."""
    if isinstance(value, str) or not isinstance(value, (list, dict, set)):
        for option in options:
            if value == option:
                return option
    _fail(name, f"one of {tuple(options)}", value)


def sizes(value, name: str, *, allow_empty: bool = True, example: str = "(8, 8)") -> tuple:
    """A tuple of positive ints: an example's shape, or hidden-layer widths."""
    if isinstance(value, torch.Size):
        value = tuple(value)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        _fail(name, f"a tuple of positive ints such as {example}", value,
              f"pass {name}=({value!r},)" if isinstance(value, numbers.Integral) else None,
              InputTypeError)  # fmt: skip
    if not value and not allow_empty:
        _fail(name, f"a non-empty tuple of positive ints such as {example}", value)
    out = []
    for i, s in enumerate(value):
        out.append(integer(s, f"{name}[{i}]"))
    return tuple(out)


def sample_count(n, name: str = "n") -> int:
    """A number of samples: an int ``>= 0`` (``0`` gives an empty batch)."""
    return integer(n, name, low=0, fix=f"pass a whole number of samples, e.g. {name}=64")


# ------------------------------------------------------------------------- arrays


def _to_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (str, bytes)):
        _fail(name, "numeric (a tensor, a NumPy array or a nested list of numbers)", x,
              "pass numbers, not a string", InputTypeError)  # fmt: skip
    if x is None or isinstance(x, dict):
        _fail(name, "a tensor (or a NumPy array or nested list of numbers)", x, cls=InputTypeError)
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError):
        _fail(name, "a tensor (or a NumPy array or nested list of numbers)", x, cls=InputTypeError)
    if arr.dtype == object or arr.dtype.kind in "USV":
        _fail(name, "numeric", x, "pass numbers, not strings or ragged lists", InputTypeError)
    if arr.dtype == np.float64 and not isinstance(x, np.ndarray):
        arr = arr.astype(np.float32)  # a Python list of floats: torch's default dtype
    if arr.dtype.kind == "u" and arr.itemsize > 1:
        # torch has few kernels for uint16/32/64: grey levels fit in int64
        arr = arr.astype(np.int64)
    return torch.from_numpy(np.ascontiguousarray(arr))


def _shape_text(shape) -> str:
    return "(B, " + ", ".join(str(s) for s in shape) + ")" if shape else "(B,)"


def place(like) -> tuple[torch.device, torch.dtype]:
    """Where a model works: the device and floating dtype of ``like``, a module (its
    first floating parameter or buffer) or a tensor. Inputs are converted to these."""
    if isinstance(like, torch.Tensor):
        dtype = like.dtype if like.is_floating_point() else torch.get_default_dtype()
        return like.device, dtype
    first = None
    for group in (like.parameters(), like.buffers()):
        for t in group:
            if t.is_floating_point():
                return t.device, t.dtype
            first = t if first is None else first
    device = first.device if first is not None else torch.device("cpu")
    return device, torch.get_default_dtype()


def _to_place(t: torch.Tensor, like, device) -> torch.Tensor:
    """``t`` with floats in ``like``'s dtype (cast where ``t`` is, before the move: a
    float64 tensor never reaches a device without float64, Apple's MPS), on ``device``
    if given, else on ``like``'s device."""
    if like is not None:
        like_device, dtype = place(like)
        if t.is_floating_point() and t.dtype != dtype:
            t = t.to(dtype)
        device = like_device if device is None else device
    return t if device is None else t.to(device)


def tensor(
    x,
    name: str,
    *,
    ndim: int | Sequence[int] | None = None,
    shape: Sequence[int] | None = None,
    min_len: int = 1,
    dtype: str | None = None,
    finite: bool = True,
    device=None,
    like=None,
    what: str = "a tensor",
) -> torch.Tensor:
    """``x`` as a tensor, checked (``what`` names it in an error about its rank).

    Args:
        ndim: the rank (or the allowed ranks).
        shape: the shape of one example (everything after the batch axis).
        min_len: the least number of examples (length of the first axis).
        dtype: ``"float"`` (converted from integers), ``"int"`` (integer, not bool),
            or ``None`` (any numeric dtype).
        finite: refuse NaN and inf (a value check: skipped inside :func:`trusted`).
        device: move the result there.
        like: a module (or tensor): give floats its floating dtype (a float64 NumPy
            array for a float32 model becomes float32) and move the result to its device
            (unless ``device`` is given).
    """
    t = _to_tensor(x, name)
    if shape is not None:
        shape = tuple(int(s) for s in shape)
        if t.ndim != len(shape) + 1 or tuple(t.shape[1:]) != shape:
            if t.ndim == len(shape) and tuple(t.shape) == shape:
                fix = f"this is one example: pass a batch, {name}[None]"
            else:
                fix = None
            _fail(name, f"of shape {_shape_text(shape)}", t, fix)
    elif ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if t.ndim not in allowed:
            rank = " or ".join(str(a) for a in allowed)
            _fail(name, f"{what} with {rank} dimensions", t)
    if t.ndim == 0 and min_len > 0:
        _fail(name, "a tensor with a batch axis", t)
    if t.ndim > 0 and len(t) < min_len:
        what = "non-empty" if min_len == 1 else f"at least {min_len} examples long"
        _fail(name, what, t, f"pass at least {min_len} example{'s' * (min_len > 1)}")
    if t.is_complex():
        _fail(name, "real-valued", t, cls=InputTypeError)
    if dtype == "float":
        if not t.is_floating_point():
            t = t.float()
    elif dtype == "int":
        if t.is_floating_point() or t.dtype == torch.bool:
            _fail(name, "an integer tensor", t, f"convert it with {name}.long()",
                  InputTypeError)  # fmt: skip
    elif dtype is not None:
        raise ValueError(f"dtype must be 'float', 'int' or None, got {dtype!r}")
    if finite and t.is_floating_point() and values_checked() and t.numel():
        if not torch.isfinite(t).all():
            bad = int((~torch.isfinite(t)).sum())
            raise ValueError(
                f"{name} contains NaN or inf ({bad} of {t.numel()} values); "
                f"remove or replace them first, e.g. {name}[torch.isfinite({name}).all(-1)]"
            )
    return _to_place(t, like, device)


def finite(t: torch.Tensor, name: str) -> torch.Tensor:
    """Refuse a tensor with NaN or inf values (unless inside :func:`trusted`)."""
    return tensor(t, name, min_len=0)


def array(x, name: str, *, ndim: int | None = None, min_len: int = 1, finite: bool = True):
    """``x`` as a float64 NumPy array (tensors are detached and moved to the CPU)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    elif isinstance(x, (list, tuple, numbers.Number, np.generic)):
        try:
            x = np.asarray(x, dtype=np.float64)  # lists keep double precision
        except (TypeError, ValueError):
            pass  # tensor() names the problem
    t = tensor(x, name, ndim=ndim, min_len=min_len, finite=finite)
    return t.numpy().astype(np.float64, copy=False)


def _single_channel(t: torch.Tensor, name: str, shape, ndim) -> torch.Tensor:
    """Images ``(B, 1, H, W)`` as ``(B, H, W)`` for a model of single-channel images
    (``shape`` ``(H, W)``, or any size with ``ndim=3``); several channels are refused."""
    if shape is not None:
        shape = tuple(int(s) for s in shape)
        image = len(shape) == 2 and t.ndim == 4 and tuple(t.shape[2:]) == shape
    else:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim or ())
        image = 3 in allowed and 4 not in allowed and t.ndim == 4
    if not image:
        return t
    if t.shape[1] != 1:
        _fail(name, "single-channel images (B, H, W) or (B, 1, H, W)", t,
              f"this model has one grey channel: pass one channel, e.g. {name}[:, 0], or "
              "convert colour images to grey levels first")  # fmt: skip
    return t[:, 0]


def as_images(
    x, name: str, shape: Sequence[int] | None, *, ndim=None, min_len: int = 1
) -> torch.Tensor:
    """``x`` as a tensor ``(B, *shape)`` in the dtype it came in (NumPy arrays and lists
    converted, a singleton channel axis dropped), its shape and length checked: the
    free part of :func:`images`, for a model that decides the kind from the values."""
    t = _single_channel(_to_tensor(x, name), name, shape, ndim)
    return tensor(t, name, shape=shape, ndim=ndim, min_len=min_len, finite=False,
                  what="a batch of images")  # fmt: skip


def images(
    x,
    name: str,
    shape: Sequence[int] | None,
    kind: str,
    levels: int | None = None,
    *,
    ndim: int | Sequence[int] | None = None,
    min_len: int = 1,
    device=None,
    like=None,
) -> torch.Tensor:
    """A batch of examples ``(B, *shape)`` of one data kind, checked and converted.

    ``shape=None`` accepts any example shape, with ``ndim`` dimensions in all (e.g.
    ``ndim=3`` for images ``(B, H, W)`` of any size).

    - ``"levels"``: integer grey levels in ``0..levels-1`` (``ImageData.x_train``),
      returned as ``torch.long``;
    - ``"binary"``: values in ``{0, 1}`` (any dtype), returned as floats;
    - ``"unit"``: floats in ``[0, 1]`` (grey levels divided by ``levels - 1``);
    - ``"real"``: finite floats (integers are converted).

    Converted where nothing is lost, in the manner of scikit-learn: NumPy arrays and
    nested lists; for ``"levels"`` any dtype that holds whole numbers (``x.float()``
    of grey levels, ``float64`` arrays, ``uint8``, ``bool``); a singleton channel axis
    ``(B, 1, H, W)`` of single-channel images (dropped). Refused, with the fix in the
    message: fractional values where grey levels are meant, values outside
    ``0..levels-1``, several channels. Floats are returned in ``like``'s floating dtype
    (see :func:`tensor`). Inside :func:`trusted` the value checks do not run: floats
    given as grey levels are then converted without checking that they are whole.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    t = _single_channel(_to_tensor(x, name), name, shape, ndim)
    t = tensor(t, name, shape=shape, ndim=ndim, min_len=min_len, finite=kind != "levels",
               what="a batch of images")  # fmt: skip
    check = values_checked() and t.numel() > 0
    if kind == "levels":
        t = _grey_levels(t, name, levels, check)
    elif kind == "binary":
        if check and not ((t == 0) | (t == 1)).all():
            raise ValueError(
                f"{name} must be binary (0 or 1); binarize it first, e.g. ({name} > 0.5).float()"
            )
        t = t.float()
    elif kind == "unit":
        if not t.is_floating_point():
            _fail(name, "float images with values in [0, 1]", t,
                  f"divide integer grey levels by levels - 1, e.g. {name}.float() / 16",
                  InputTypeError)  # fmt: skip
        if check:
            lo, hi = float(t.min()), float(t.max())
            if lo < 0 or hi > 1:
                raise ValueError(
                    f"{name} must hold values in [0, 1], got values in [{lo:g}, {hi:g}]; "
                    f"divide grey levels by levels - 1, e.g. {name} / (data.levels - 1)"
                )
    else:
        t = t.float() if not t.is_floating_point() else t
    return _to_place(t, like, device)


def whole(t: torch.Tensor) -> bool:
    """Whether every value of ``t`` is a whole number (integer dtypes always are); reads
    the values of a float tensor."""
    if not t.is_floating_point():
        return True
    return t.numel() == 0 or bool((torch.isfinite(t) & (t == t.round())).all())


def _grey_levels(t: torch.Tensor, name: str, levels: int, check: bool) -> torch.Tensor:
    """``t`` as ``torch.long`` grey levels in ``0..levels-1`` (checked when ``check``)."""
    top = levels - 1
    if t.is_floating_point() and check and not whole(t):
        finite = t[torch.isfinite(t)]
        if finite.numel() < t.numel():
            held = "NaN or inf"
        else:
            held = f"values that are not whole numbers (in [{float(finite.min()):g}, "
            held += f"{float(finite.max()):g}])"
        raise ValueError(
            f"{name} must be integers in 0..{top} (whole numbers: the grey levels of the data "
            f"set's x_train), got {describe(t)} holding {held}; if you hold floats in "
            f"[0, 1], multiply by levels - 1 and round: ({name} * {top}).round().long()"
        )
    if check:
        lo, hi = float(t.min()), float(t.max())
        if lo < 0 or hi > top:
            raise ValueError(
                f"{name} must be integers in 0..{top}, got values in {lo:g}..{hi:g}; "
                f"this model was built for levels={levels}: build it with the data set's "
                "levels, or clamp the data"
            )
    return t.long()


def unit_images(
    x,
    name: str,
    shape: Sequence[int] | None,
    levels: int | None,
    *,
    ndim: int | Sequence[int] | None = None,
    min_len: int = 1,
    device=None,
    like=None,
) -> torch.Tensor:
    """Images as floats in ``[0, 1]``, for a model that works on that scale.

    A model built with ``levels`` takes the data set's integer grey levels
    (``0..levels-1``, in any dtype that holds them, see :func:`images`) and divides them
    by ``levels - 1`` here; one built without (``levels=None``, e.g. by hand on other
    data) takes floats in ``[0, 1]``. Floats come back in ``like``'s dtype.
    """
    if levels is None:
        return images(x, name, shape, "unit", ndim=ndim, min_len=min_len, device=device,
                      like=like)  # fmt: skip
    t = images(x, name, shape, "levels", levels, ndim=ndim, min_len=min_len, device=device,
               like=like)  # fmt: skip
    dtype = place(like)[1] if like is not None else torch.get_default_dtype()
    return t.to(dtype) / (levels - 1)


def to_levels(u: torch.Tensor, levels: int) -> torch.Tensor:
    """Floats in ``[0, 1]`` back to integer grey levels ``0..levels-1`` (rounded)."""
    return (u.clamp(0, 1) * (levels - 1)).round().long()


def known_mask(mask, shape: Sequence[int], name: str = "known_mask") -> torch.Tensor:
    """A boolean mask of one example's ``shape``, ``True`` where a value is known
    (0/1 numbers are accepted)."""
    m = tensor(mask, name, min_len=0)
    if m.dtype != torch.bool:
        if ((m != 0) & (m != 1)).any():
            raise ValueError(f"{name} must be boolean (or 0/1): True where x is known")
        m = m.bool()
    if tuple(m.shape) != tuple(shape):
        raise ValueError(
            f"{name} must have shape {tuple(shape)} (one example's), got {tuple(m.shape)}"
        )
    return m


# ------------------------------------------------------------ devices, randomness


def device(value, name: str = "device") -> torch.device:
    """A torch device that exists on this machine."""
    try:
        d = torch.device(value)
    except (TypeError, RuntimeError, ValueError):
        _fail(name, "a device such as 'cpu' or 'cuda'", value, cls=InputTypeError)
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"{name}={value!r} asks for CUDA, but this torch sees no CUDA device "
                f"({'a CPU-only build' if torch.version.cuda is None else 'no GPU found'}); "
                f"pass {name}='cpu', or leave it out to use runtime.device()"
            )
        if d.index is not None and d.index >= torch.cuda.device_count():
            raise ValueError(
                f"{name}={value!r}: only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    if d.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"{name}={value!r}: MPS is not available here; pass {name}='cpu'")
    if d.type == "meta":
        raise ValueError(
            f"{name}={value!r}: a meta tensor holds no numbers, so nothing can be trained or "
            f"evaluated there; pass {name}='cpu' or 'cuda'"
        )
    return d


def generator(value, name: str = "generator") -> torch.Generator | None:
    """``None`` or a ``torch.Generator`` (an int seed is a common slip: say how to make one)."""
    if value is None or isinstance(value, torch.Generator):
        return value
    fix = (
        f"pass {name}=torch.Generator().manual_seed({value})"
        if isinstance(value, numbers.Integral)
        else None
    )
    _fail(name, "a torch.Generator or None", value, fix, InputTypeError)
