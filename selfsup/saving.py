"""Save a model and rebuild it: :func:`save` and :func:`load`.

``selfsup.save(model, path)`` writes what rebuilds the model with no chapter and no
data set at hand: its class, the arguments its constructor was called with (sizes,
shape, levels, and the sub-models passed in, such as a GAN's generator, recursively),
its weights (``state_dict``), and for the baselines their fitted state (a mixture's
parameters, a kernel density's training points). ``selfsup.load(path)`` rebuilds it::

    selfsup.save(vae, "vae.pt")
    vae = selfsup.load("vae.pt")             # the same weights, the same outputs

How: every model of the library inherits :class:`Saveable`, which records the
arguments of its constructor call as it is made (the outermost call, so a subclass
records its own). The file is one ``torch.save`` of plain containers (dicts, lists,
tuples, numbers, strings, tensors)::

    {"format": "selfsup", "version": 1, "object": {"class": "selfsup.models.vae:VAE",
     "args": [...], "kwargs": {...}, "state": state_dict or None, "extra": {...}, ...}}

Loading is safe on files from elsewhere: ``torch.load(weights_only=True)`` unpickles
nothing but those containers, and a class is imported only from inside the ``selfsup``
package and only if it is :class:`Saveable` (activation classes passed to a
constructor, from ``torch.nn``, are the one exception), so no code of the file's
choosing runs. A model of a class defined elsewhere (in a notebook) is refused by
:func:`save`: keep its ``state_dict`` with ``torch.save`` instead.
"""

from __future__ import annotations

import functools
import importlib
import io
import os
import pickle
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from . import _checks as checks

__all__ = ["FORMAT_VERSION", "Saveable", "load", "save"]

#: The version of the file layout :func:`save` writes (and :func:`load` reads).
FORMAT_VERSION = 1
_MARK = "__selfsup__"
_FLOAT_DTYPES = {str(d): d for d in (torch.float16, torch.bfloat16, torch.float32, torch.float64)}
_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.bool)
_ALL_DTYPES = {str(d): d for d in (*_FLOAT_DTYPES.values(), *_INT_DTYPES)}


class Saveable:
    """A mixin: the object remembers the arguments of its constructor call, so that
    :func:`save` can store them and :func:`load` can call the constructor again.

    A subclass records its own call (the outermost ``__init__``). Objects whose state
    is not all in a ``state_dict`` (the baselines' fitted parameters, a Python flag)
    override :meth:`_saved_extra` and :meth:`_load_extra`; one whose constructor
    arguments cannot be stored (a function) overrides :meth:`_saved_args`.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, "_selfsup_records", False):
            cls.__init__ = _recording(init)

    def _saved_args(self) -> tuple[tuple, dict]:
        """The constructor's ``(args, kwargs)`` to store (default: those it was called with)."""
        return self.__dict__.get("_selfsup_init", ((), {}))

    def _saved_extra(self) -> dict | None:
        """State that the constructor and ``state_dict`` do not restore (plain
        containers, tensors and arrays); ``None`` for none."""
        return None

    def _load_extra(self, extra: dict) -> None:
        """Restore what :meth:`_saved_extra` stored."""


def _recording(init):
    @functools.wraps(init)
    def __init__(self, *args, **kwargs):  # noqa: N807 (it is the class's __init__)
        if "_selfsup_init" not in self.__dict__:  # the outermost call records
            object.__setattr__(self, "_selfsup_init", (args, kwargs))
        init(self, *args, **kwargs)

    __init__._selfsup_records = True
    return __init__


# ------------------------------------------------------------------------- writing


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _inside_selfsup(module: str) -> bool:
    return module == "selfsup" or module.startswith("selfsup.")


def _encode(value, where: str):
    """``value`` as plain containers that ``torch.load(weights_only=True)`` reads."""
    if isinstance(value, np.generic):  # before float: np.float64 is a float subclass
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise ValueError(f"cannot save {where}: an object array")
        return {_MARK: "array", "value": torch.from_numpy(np.ascontiguousarray(value).copy())}
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, torch.Size):
        return tuple(value)
    if isinstance(value, torch.device):
        return {_MARK: "device", "value": str(value)}
    if isinstance(value, torch.dtype):
        return {_MARK: "dtype", "value": str(value)}
    if isinstance(value, Saveable):
        return _encode_object(value, where)
    if isinstance(value, type) and issubclass(value, nn.Module):
        if not (_inside_selfsup(value.__module__) or value.__module__.startswith("torch.nn.")):
            raise ValueError(
                f"cannot save {where}: the class {value.__qualname__} is from "
                f"{value.__module__}, not from selfsup or torch.nn"
            )
        return {_MARK: "type", "value": _class_path(value)}
    if isinstance(value, (tuple, list)):
        items = [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        items = {k: _encode(v, f"{where}[{k!r}]") for k, v in value.items()}
        return {_MARK: "dict", "value": items}
    raise ValueError(
        f"cannot save {where}: {checks.describe(value)} is not a number, string, tensor, "
        "array, container of them, or a selfsup model; a model built with a function or an "
        "object of its own cannot be rebuilt by load() (save its state_dict with torch.save)"
    )


def _encode_object(obj: Saveable, where: str) -> dict:
    cls = type(obj)
    if not _inside_selfsup(cls.__module__):
        raise ValueError(
            f"cannot save {where}: {cls.__qualname__} is defined in {cls.__module__}, not in "
            "selfsup, and load() rebuilds only selfsup's own classes (it runs no code from "
            "a file); save its weights with torch.save(model.state_dict(), path)"
        )
    args, kwargs = obj._saved_args()
    out = {
        _MARK: "object",
        "class": _class_path(cls),
        "args": _encode(tuple(args), f"{where}'s argument"),
        "kwargs": _encode(dict(kwargs), f"{where}'s argument"),
        "extra": _encode(obj._saved_extra(), f"{where}'s state"),
        "state": None,
        "training": None,
        "dtype": None,
    }
    if isinstance(obj, nn.Module):
        out["state"] = obj.state_dict()
        out["training"] = obj.training
        floats = [t for t in obj.parameters() if t.is_floating_point()]
        out["dtype"] = str(floats[0].dtype) if floats else None
    return out


def save(model, path) -> None:
    """Write ``model`` to ``path`` (a path or a binary file): its class, the arguments
    of its constructor, its weights and (for the baselines) its fitted state, so that
    :func:`load` rebuilds it.

    Args:
        model: a model of the library: every configuration of :mod:`selfsup.configs`
            and every baseline (:class:`~selfsup.models.baselines.GaussianMixture`,
            ``KernelDensity``, ``UniformDensity``, ``Memorizer``, ``Dequantized``,
            ``ClassConditional`` of such models), trained or not.
        path: where to write (``torch.save``'s file argument).
    Raises:
        ValueError: for an object that is not a selfsup model, a model of a class
            defined outside selfsup, or one built with an argument that cannot be
            stored (a function, an object of another library).
    """
    if not isinstance(model, Saveable):
        raise checks.InputTypeError(
            f"model must be a selfsup model (an object load() can rebuild), got "
            f"{checks.describe(model)}; for another module save its state_dict with "
            "torch.save(model.state_dict(), path)"
        )
    payload = {
        "format": "selfsup",
        "version": FORMAT_VERSION,
        "object": _encode_object(model, "model"),
    }
    torch.save(payload, path)


# ------------------------------------------------------------------------- reading


def _resolve(path: str, *, types_only: bool = False) -> type:
    """The class at ``"module:qualname"``, from inside selfsup (or an ``nn.Module`` type
    from ``torch.nn``, where only a type is wanted): nothing else is imported."""
    if not isinstance(path, str) or ":" not in path:
        raise ValueError(f"the file names a class as {path!r}, not 'module:qualname'")
    module, qualname = path.split(":", 1)
    allowed = _inside_selfsup(module) or (types_only and module.startswith("torch.nn."))
    if not allowed:
        raise ValueError(
            f"the file asks for {path}, outside selfsup: load() imports only selfsup's own "
            "classes, so that a file cannot run code of its choosing"
        )
    try:
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise ValueError(
            f"the file names {path}, which this version of selfsup does not have; load it "
            "with the version that saved it"
        ) from err
    if not isinstance(obj, type):
        raise ValueError(f"the file names {path}, which is not a class")
    if types_only:
        if not issubclass(obj, nn.Module):
            raise ValueError(f"the file names {path} as a layer type; it is not an nn.Module")
    elif not issubclass(obj, Saveable):
        raise ValueError(f"the file names {path}, which is not a class load() rebuilds")
    return obj


def _decode(value):
    if isinstance(value, tuple):
        return tuple(_decode(v) for v in value)
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict) and _MARK in value:
        kind = value[_MARK]
        if kind == "object":
            return _decode_object(value)
        if kind == "dict":
            return {k: _decode(v) for k, v in value["value"].items()}
        if kind == "array":
            return value["value"].numpy()
        if kind == "device":
            return torch.device(value["value"])
        if kind == "dtype":
            if value["value"] not in _ALL_DTYPES:
                raise ValueError(f"the file names an unknown dtype {value['value']!r}")
            return _ALL_DTYPES[value["value"]]
        if kind == "type":
            return _resolve(value["value"], types_only=True)
        raise ValueError(f"the file holds an unknown entry {kind!r}")
    return value


def _decode_object(entry: dict):
    cls = _resolve(entry["class"])
    args, kwargs = _decode(entry["args"]), _decode(entry["kwargs"])
    # Building draws initial weights from torch's global generator: the weights are
    # replaced by the saved ones, and the caller's random stream is left as it was.
    with torch.random.fork_rng(devices=[]):
        obj = cls(*args, **kwargs)
    state = entry.get("state")
    if isinstance(obj, nn.Module):
        dtype = entry.get("dtype")
        if dtype is not None and dtype in _FLOAT_DTYPES:
            floats = [t for t in obj.parameters() if t.is_floating_point()]
            if floats and str(floats[0].dtype) != dtype:
                obj.to(_FLOAT_DTYPES[dtype])
        if state is not None:
            obj.load_state_dict(state)
        if entry.get("training") is not None:
            obj.train(bool(entry["training"]))
    extra = _decode(entry.get("extra"))
    if extra is not None:
        obj._load_extra(extra)
    return obj


def _first_tensor_device(entry: dict) -> torch.device | None:
    state = entry.get("state") or {}
    for t in state.values():
        if isinstance(t, torch.Tensor):
            return t.device
    return None


def load(path, map_location=None):
    """The model that :func:`save` wrote to ``path``, rebuilt: the same class, built with
    the same arguments, holding the same weights and fitted state.

    Args:
        path: a path or a binary file.
        map_location: as for ``torch.load``: where the weights go (e.g. ``"cpu"`` for a
            model saved on a GPU, on a machine without one). ``None``: where they were
            saved. A module model is moved there too.
    Raises:
        ValueError: for a file that is not a selfsup save file, or that names a class
            outside selfsup (nothing from such a file is run).
    """
    if isinstance(path, (str, os.PathLike)) and not os.path.exists(path):
        raise ValueError(f"path {os.fspath(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, io.UnsupportedOperation) as err:
        raise ValueError(
            f"path is not a selfsup save file (torch.load with weights_only=True refused "
            f"it: {str(err).splitlines()[0]})"
        ) from err
    if not (
        isinstance(payload, dict)
        and payload.get("format") == "selfsup"
        and isinstance(payload.get("object"), dict)
    ):
        raise ValueError("path is not a selfsup save file (written by selfsup.save)")
    if payload.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"path was written in format version {payload.get('version')!r}; this selfsup "
            f"reads version {FORMAT_VERSION}"
        )
    entry = payload["object"]
    model = _decode_object(entry)
    if isinstance(model, nn.Module):
        if isinstance(map_location, (str, torch.device)):
            model.to(map_location)
        else:
            device = _first_tensor_device(entry)
            if device is not None:
                model.to(device)
    return model
