"""One training loop for every model in the book.

``fit`` trains anything with a ``loss(batch) -> scalar tensor`` method: density
models, autoencoders, contrastive models. It records per-epoch train and
validation losses, can stop early and restore the best weights, shows a progress
bar only when someone is watching, and refuses to go on after a NaN or inf loss.

What a batch is (the rule of :func:`fit`, also in :class:`selfsup.protocols.Trainable`):

- A model that declares ``batch_parts = k`` takes ``k`` parts: from data made of
  several parts (a tuple of tensors, a ``TensorDataset``, a ``Dataset`` or
  ``DataLoader`` whose items are tuples), ``fit`` passes the first ``k`` and drops the
  rest (labels), a tensor for ``k = 1``, a tuple otherwise. Every model of the library
  declares it (``1`` for the unsupervised models, ``2`` for ``TwoTower``'s pairs), so
  ``fit(vae, (x, y))`` and ``fit(vae, DataLoader(TensorDataset(x, y)))`` train on ``x``.
- A model that does not declare it keeps the behaviour of tuples of tensors: a tuple
  of tensors given to ``fit`` gives it tuple batches, whole (a critic whose loss takes
  ``(real, fake)``); but the items of a ``Dataset`` or ``DataLoader`` (a
  ``TensorDataset`` included) that are tuples ``(x, y, ...)`` are reduced to ``x``,
  the data of an unsupervised model.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from . import _checks as checks
from . import runtime
from .runtime import progress_enabled
from .tensors import draw_device, eval_mode, randn, step_generator

__all__ = [
    "GANHistory",
    "History",
    "TrainingDiverged",
    "batch_parts",
    "fit",
    "iterate_batches",
    "train_gan",
]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class History:
    """What :func:`fit` measured: mean losses per epoch (in the model's units)."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int | None = None  # 0-based epoch whose weights the model holds
    stopped_early: bool = False
    seconds: float = 0.0

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    @property
    def best_val_epoch(self) -> int | None:
        """The 0-based epoch with the lowest validation loss (``None`` without ``val``).

        With ``patience`` the model holds its weights (``best_epoch``); without, it
        holds the last epoch's weights and this is only where validation was best.
        """
        if not self.val_loss:
            return None
        return min(range(len(self.val_loss)), key=self.val_loss.__getitem__)


Data = torch.Tensor | Sequence[torch.Tensor]


def batch_parts(model) -> int | None:
    """The number of parts of a batch that ``model.loss`` takes (its ``batch_parts``),
    or ``None`` where it does not declare it (see the rule in :mod:`selfsup.train`)."""
    parts = getattr(model, "batch_parts", None)
    return None if parts is None else checks.integer(parts, "model.batch_parts")


def _keep(parts: tuple, declared: int | None, from_dataset: bool, name: str) -> tuple:
    """The parts of a batch (or of the data) that the model takes, by the rule of
    :mod:`selfsup.train`: the first ``declared``; undeclared, all of a tuple of tensors
    and the first of a data set's items."""
    if declared is None:
        return parts[:1] if from_dataset else parts
    if len(parts) < declared:
        raise ValueError(
            f"the model's loss takes batches of {declared} parts (batch_parts={declared}), "
            f"but {name} has {len(parts)}; pass a tuple of {declared} tensors"
        )
    return parts[:declared]


def _not_a_list_of_examples(parts: tuple, kind: str, name: str, declared: int | None) -> None:
    """Refuse a list of examples passed where a tuple of parts is expected.

    A tuple holds the parts of the data, ``(x, y)``, each with one row per example; a
    list of per-example arrays looks the same to ``fit``. The parts of a model that
    declares ``batch_parts = k`` differ in shape or dtype (images and labels) beyond the
    first ``k`` (a pair of views of one shape for ``k = 2``); more arrays than that, all
    of one shape and dtype, are examples. A model that declares nothing gets its tuple
    whole, unchecked."""
    if declared is None or len(parts) <= declared:  # declared >= 1 (batch_parts)
        return
    shapes = {(tuple(np.shape(t)), str(t.dtype)) for t in parts}
    if len(shapes) == 1:
        ((shape, dtype),) = shapes
        raise ValueError(
            f"{name} is a {kind} of {len(parts)} arrays of one shape {shape} and dtype "
            f"{dtype}, but the model takes {declared} part{'s' * (declared > 1)} per batch "
            f"(batch_parts = {declared}): a list of examples? Stack them into one batch: "
            f"torch.stack({name}) or np.stack({name}). A tuple holds the parts of the data, "
            "such as (x, y), each with one row per example"
        )


def _as_tensors(data: Data, name: str, declared: int | None = None) -> tuple[torch.Tensor, ...]:
    """``data`` (a tensor, an array, a tuple of them or a ``TensorDataset``) as a tuple
    of checked tensors, the parts the model takes (:func:`_keep`): non-empty, of equal
    lengths, without NaN or inf (checked once, here)."""
    from_dataset = isinstance(data, torch.utils.data.TensorDataset)
    if from_dataset:
        data = data.tensors
    if isinstance(data, (torch.Tensor, np.ndarray)):
        parts = (data,)
    elif (
        isinstance(data, (tuple, list))
        and data
        and all(isinstance(t, (torch.Tensor, np.ndarray)) for t in data)
    ):
        parts = tuple(data)
        _not_a_list_of_examples(parts, type(data).__name__, name, declared)
    else:
        raise checks.InputTypeError(
            f"{name} must be a tensor or a tuple of tensors, got {checks.describe(data)}; "
            "or a torch Dataset or DataLoader"
        )
    scalars = [t for t in parts if np.ndim(t) == 0]
    if scalars:
        raise ValueError(
            f"{name} must hold one row per example, got a single number (a 0-d "
            f"{type(scalars[0]).__name__}); pass a batch (N, ...), e.g. x[None] for one example"
        )
    n = len(parts[0])
    if any(len(t) != n for t in parts):
        raise ValueError(
            f"the tensors of {name} have different lengths {[len(t) for t in parts]}; "
            "pair each example with its own label or view"
        )
    kept = _keep(parts, declared, from_dataset, name)
    return tuple(
        checks.tensor(t, name if len(parts) == 1 else f"{name}[{i}]") for i, t in enumerate(kept)
    )


def iterate_batches(
    tensors: tuple[torch.Tensor, ...],
    batch_size: int,
    shuffle: bool,
    generator: torch.Generator | None = None,
    device=None,
    min_size: int = 1,
):
    """Yield batches (a tensor, or a tuple for several tensors) on ``device``.

    ``tensors`` is one tensor or a tuple of tensors of equal length. With
    ``min_size``, a last batch smaller than that is left out (the order is shuffled
    every epoch, so no example is always the one left out).
    """
    if isinstance(tensors, torch.Tensor):
        tensors = (tensors,)
    tensors = tuple(tensors)
    batch_size = checks.integer(batch_size, "batch_size")
    min_size = checks.integer(min_size, "min_size")
    n = len(tensors[0])
    if shuffle:
        # Drawn on the generator's device (the CPU's numbers on every device) and moved
        # to the data once per epoch: a CPU index into data on a GPU is copied there at
        # every step, and the copy waits for the GPU.
        order = torch.randperm(n, generator=generator, device=draw_device(generator))
        order = order.to(tensors[0].device)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        if stop - start < min_size:
            break
        if shuffle:
            idx = order[start:stop]
            batch = tuple(t[idx] for t in tensors)
        else:
            batch = tuple(t[start:stop] for t in tensors)
        if device is not None:
            batch = tuple(t.to(device) for t in batch)
        yield batch[0] if len(batch) == 1 else batch


def _fused(optimizer: type[torch.optim.Optimizer], params, **settings) -> torch.optim.Optimizer:
    """``optimizer`` (Adam or AdamW), fused where this torch and device have the kernel:
    about 15% faster training for the book's small models on a CPU, and on a GPU a NaN
    step is skipped without waiting for it (:class:`_GuardedSteps`). The plain loop
    elsewhere."""
    params = list(params)
    try:
        return optimizer(params, fused=True, **settings)
    except (RuntimeError, TypeError, ValueError):
        return optimizer(params, **settings)


class _Source:
    """Where the batches of an epoch come from: tensors (checked once, moved to the
    training device once when small, shuffled with ``fit``'s generator) or a
    ``Dataset`` / ``DataLoader`` (each batch moved to the device as it comes)."""

    #: Tensors up to this size move to the training device once, before the first epoch.
    ON_DEVICE_BYTES = 1 << 30

    def __init__(self, data, name: str, batch_size: int, device, min_size: int, generator,
                 declared: int | None = None):  # fmt: skip
        self.name, self.batch_size, self.device, self.min_size = name, batch_size, device, min_size
        self.generator, self.loader, self.tensors = generator, None, None
        self.declared = declared
        if isinstance(data, torch.utils.data.DataLoader):
            self.loader = data
        elif isinstance(data, torch.utils.data.Dataset) and not isinstance(
            data, torch.utils.data.TensorDataset
        ):
            self.loader = torch.utils.data.DataLoader(
                data, batch_size=batch_size, shuffle=name == "train", generator=generator
            )
        else:
            tensors = _as_tensors(data, name, declared)
            if sum(t.nelement() * t.element_size() for t in tensors) <= self.ON_DEVICE_BYTES:
                tensors = tuple(t.to(device) for t in tensors)
            self.tensors = tensors

    def __len__(self) -> int:
        """The number of examples (of a loader: as its ``len`` says)."""
        if self.tensors is not None:
            return len(self.tensors[0])
        return len(self.loader.dataset) if hasattr(self.loader, "dataset") else len(self.loader)

    def steps(self) -> int:
        """The number of batches per epoch."""
        if self.tensors is None:
            return len(self.loader)
        full, rest = divmod(len(self), self.batch_size)
        return full + (rest >= self.min_size and rest > 0)

    def batches(self, shuffle: bool):
        if self.tensors is not None:
            yield from iterate_batches(self.tensors, self.batch_size, shuffle, self.generator,
                                       self.device, self.min_size)  # fmt: skip
            return
        for batch in self.loader:
            if isinstance(batch, (tuple, list)):
                parts = _keep(tuple(batch), self.declared, True, f"a batch of {self.name}")
                batch = tuple(torch.as_tensor(t).to(self.device) for t in parts)
                if len(batch) == 1:
                    batch = batch[0]
            else:
                _keep((batch,), self.declared, True, f"a batch of {self.name}")
                batch = torch.as_tensor(batch).to(self.device)
            if _size(batch) >= self.min_size:
                yield batch


def _size(batch) -> int:
    return len(batch if isinstance(batch, torch.Tensor) else batch[0])


def _scalar_loss(loss) -> torch.Tensor:
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"model.loss(batch) must return a scalar tensor, got {shape}")
    return loss


class _GuardedSteps:
    """Optimizer steps that never apply a NaN or inf loss, shared by :func:`fit` and
    :func:`selfsup.train.train_gan`.

    On the CPU each loss is read before its step, and a bad one raises at once. On an
    accelerator with fused Adam(W) the GPU is never waited for: a sticky flag on the
    device (``found_inf``, as ``torch.amp.GradScaler`` uses it) makes the fused kernel
    skip this step and every later one, and :meth:`flush` (once per epoch, or every
    ``callback_every`` GAN steps) reads the losses back, raising
    :class:`TrainingDiverged` with the first bad step's name. The model then holds the
    weights of the last good step in both cases.
    """

    def __init__(self, device: torch.device, hint: str, max_abs: float = math.inf):
        self.device, self.hint, self.max_abs = device, hint, max_abs
        self.bad = torch.zeros((), device=device)  # the shape of the fused kernels' step
        self.pending: list[tuple[torch.Tensor, str]] = []

    def _fails(self, value: float) -> bool:
        return not math.isfinite(value) or abs(value) > self.max_abs

    def _raise(self, value: float, where: str):
        raise TrainingDiverged(f"loss became {value:.4g} {where}; {self.hint}")

    def check(self, loss: torch.Tensor, where: str, optimizers=()) -> torch.Tensor:
        """Check ``loss`` before the step of ``optimizers``; returns it detached."""
        loss = _scalar_loss(loss)
        value = loss.detach()
        synced = self.device.type == "cpu" or not all(
            any(g.get("fused") for g in opt.param_groups) for opt in optimizers
        )
        if synced:
            v = float(value)
            if self._fails(v):
                self._raise(v, where)
        else:
            ok = torch.isfinite(value) & (value.abs() <= self.max_abs)
            self.bad = torch.maximum(self.bad, (~ok).float())
            for opt in optimizers:
                opt.found_inf = self.bad
        self.pending.append((value, where))
        return value

    def flush(self) -> list[float]:
        """The losses since the last flush, as floats (one read-back); raises on a bad one."""
        if not self.pending:
            return []
        values = torch.stack([v for v, _ in self.pending]).float().cpu().tolist()
        names = [w for _, w in self.pending]
        self.pending = []
        for value, where in zip(values, names, strict=True):
            if self._fails(value):
                self._raise(value, where)
        return values


class _Run:
    """The parts of a training run that :func:`fit` and ``train_gan`` share: the device,
    the progress bar (only when someone is watching), the timer."""

    def __init__(self, model: nn.Module, device, total: int, desc: str, unit: str, progress,
                 stay: bool = False):  # fmt: skip
        if progress is not None and not isinstance(progress, bool):
            raise checks.InputTypeError(f"progress must be True, False or None, got {progress!r}")
        self.device = runtime.device() if device is None else checks.device(device)
        params = list(model.parameters())
        self.home = params[0].device if params else torch.device("cpu")
        self.stay = bool(stay)
        model.to(self.device)
        self.bar = None
        if progress_enabled() if progress is None else progress:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit)
        self.start = time.perf_counter()

    def update(self, **postfix) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if postfix:
                self.bar.set_postfix(**{k: f"{v:.4g}" for k, v in postfix.items()})

    def close(self, model: nn.Module) -> float:
        """Close the bar; hand the model back to its first device unless it stays."""
        if not self.stay:
            model.to(self.home)
        if self.bar is not None:
            self.bar.close()
        return time.perf_counter() - self.start


@torch.no_grad()
def _evaluate(model: nn.Module, source: _Source, guard: _GuardedSteps, epoch: int) -> float:
    sizes = []
    with eval_mode(model):
        for batch in source.batches(shuffle=False):
            sizes.append(_size(batch))
            guard.check(model.loss(batch), f"on validation data in epoch {epoch}")
    return _mean(guard.flush(), sizes)


def _mean(values: list[float], sizes: list[int]) -> float:
    """The mean loss per example of an epoch, from its batches' mean losses, summed on
    the host in double precision (Apple's GPUs have no float64; one read per epoch)."""
    return math.fsum(v * n for v, n in zip(values, sizes, strict=True)) / sum(sizes)


def _training_device(model, params, device) -> torch.device:
    """``fit``'s device: the chosen one, or the default; a float64 model (an exact
    closed form such as probabilistic PCA) trains on the CPU where the default device
    has no float64, and asking for such a device explicitly is an error."""
    wide = any(p.dtype == torch.float64 for p in params)
    if device is None:
        device = runtime.device()
        return device if not wide or runtime.has_float64(device) else torch.device("cpu")
    device = checks.device(device)
    if wide and not runtime.has_float64(device):
        raise ValueError(
            f"device={str(device)!r} has no float64, and {type(model).__name__} has float64 "
            "parameters: train it on the CPU (device='cpu'), or convert it with "
            "model.float() first"
        )
    return device


def fit(
    model: nn.Module,
    train: Data,
    val: Data | None = None,
    *,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 128,
    weight_decay: float = 0.0,
    patience: int | None = None,
    seed: int | None = None,
    device: torch.device | str | None = None,
    progress: bool | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    schedule: str | None = None,
    stay_on_device: bool = True,
) -> History:
    """Train ``model`` by minimising ``model.loss(batch)`` with Adam(W).

    Args:
        model: an ``nn.Module`` with ``loss(batch) -> scalar tensor``.
        train: a tensor ``(N, ...)`` (or a NumPy array), a tuple of tensors of length
            ``N``, or a ``TensorDataset``; each batch is a slice of it (a tuple of
            slices for a tuple). It is checked once for NaN and inf, and moved to the
            device once when it is small (up to 1 GiB). Or a torch ``Dataset`` (batched
            and shuffled here) or a ``DataLoader`` (used as it is: its own batch size and
            order); each batch moves to the device as it comes. A list of per-example
            arrays is not a tuple of parts: stack it (``torch.stack``) first; more
            arrays of one shape and dtype than the model's ``batch_parts`` are refused.

            **Which parts the loss gets.** A model that declares ``batch_parts = k``
            gets the first ``k`` parts of each batch (a tensor for ``k = 1``); further
            parts, such as labels, are dropped: every model of the library declares
            it, so ``fit(vae, (x_train, y_train))`` or a labelled ``DataLoader`` trains
            on the images alone. A model that does not declare it gets a tuple of
            tensors whole (a critic whose loss takes ``(real, fake)``), and the first
            part, ``x``, of each item of a ``Dataset`` or ``DataLoader`` (a
            ``TensorDataset`` included) that holds tuples ``(x, y, ...)``.
        val: validation data of the same form, evaluated after every epoch.
        epochs: the maximum number of passes over ``train`` (cut to
            :data:`selfsup.runtime.SMOKE_EPOCHS` in the full profile's smoke check).
        lr, weight_decay: AdamW's settings (ignored when ``optimizer`` is given).
        batch_size: examples per step. A model with ``min_batch_size`` (a contrastive
            loss needs negatives) never gets a shorter batch: a shorter last batch
            is left out of that epoch.
        patience: with ``val``, stop after this many epochs without a new best
            validation loss and restore the best weights.
        seed: seeds the shuffling; default :func:`selfsup.runtime.derived_seed` (0 unless
            ``runtime.setup`` chose another seed, e.g. through ``SELFSUP_SEED``).
        device: where training runs; default :func:`selfsup.runtime.device` (CUDA
            when present), or the CPU for a float64 model where that device has no
            float64 (Apple's MPS). A float64 model on such a device is refused.
        stay_on_device: leave the model on ``device`` after training (the default):
            every model of the library takes CPU inputs there and keeps its work on
            that device (:mod:`selfsup.protocols`), so sampling and evaluation run on
            the GPU too. ``False`` hands it back to the device its parameters came from.
        progress: show a tqdm bar; default: only when interactive
            (:func:`selfsup.runtime.progress_enabled`).
        schedule: ``"cosine"`` anneals the learning rate to zero over all steps;
            ``None`` keeps it constant.
    Returns:
        the :class:`History` of mean losses per epoch.
    Raises:
        TypeError: for a model whose training is a game (``adversarial = True``, the
            GAN): train it with :func:`selfsup.train.train_gan`.
        TrainingDiverged: on a NaN or inf loss, naming the epoch and step. No step is
            taken with such a loss; on a GPU the losses are read back once per epoch
            (``_GuardedSteps``), not at every step.
    """
    if not callable(getattr(model, "loss", None)) or not isinstance(model, nn.Module):
        raise checks.InputTypeError(
            f"model must be an nn.Module with a loss(batch) method, got {checks.describe(model)}"
        )
    if getattr(model, "adversarial", False):
        raise checks.InputTypeError(
            f"{type(model).__name__} is adversarial: its loss is the discriminator's, which "
            "the generator maximises, so minimising it over every parameter would train the "
            "generator to help the discriminator. Train it with "
            "selfsup.train.train_gan(model, data, steps=...)"
        )
    epochs = checks.integer(epochs, "epochs")
    batch_size = checks.integer(batch_size, "batch_size")
    lr = checks.number(lr, "lr", low=0, low_open=True, fix="e.g. lr=1e-3")
    weight_decay = checks.number(weight_decay, "weight_decay", low=0)
    if patience is not None:
        patience = checks.integer(patience, "patience")
        if val is None:
            raise ValueError(
                "patience needs validation data: pass val=... (held-out examples), "
                "or leave patience=None"
            )
    if seed is not None:
        seed = checks.integer(seed, "seed", low=0)
    checks.choice(schedule, "schedule", (None, "cosine"))
    if progress is not None and not isinstance(progress, bool):
        raise checks.InputTypeError(f"progress must be True, False or None, got {progress!r}")
    epochs = runtime.smoke_cap(epochs, runtime.SMOKE_EPOCHS)
    # A model whose loss needs several examples per batch (a contrastive loss needs
    # negatives) declares min_batch_size; a shorter last batch is left out.
    min_size = checks.integer(getattr(model, "min_batch_size", 1), "model.min_batch_size")
    if batch_size < min_size:
        raise ValueError(
            f"batch_size must be >= {min_size} for {type(model).__name__}, got {batch_size}"
        )
    params = list(model.parameters())
    if optimizer is None and not params:
        raise ValueError("model has no parameters to train")
    device = _training_device(model, params, device)
    generator = torch.Generator().manual_seed(runtime.derived_seed() if seed is None else seed)
    declared = batch_parts(model)
    sources = {
        name: _Source(data, name, batch_size, device, min_size, generator, declared)
        for name, data in (("train", train), ("val", val))
        if data is not None
    }
    for name, source in sources.items():
        if len(source) < min_size:
            raise ValueError(
                f"{name} has {len(source)} examples, but {type(model).__name__} needs "
                f"batches of at least {min_size}; pass more data"
            )
    run = _Run(model, device, epochs, type(model).__name__, "epoch", progress, stay_on_device)
    if optimizer is None:
        optimizer = _fused(torch.optim.AdamW, params, lr=lr, weight_decay=weight_decay)
    scheduler = None
    if schedule == "cosine":
        steps = epochs * sources["train"].steps()
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    guard = _GuardedSteps(device, f"lower the learning rate (lr={lr:g}), or check the data "
                          "for NaN/inf")  # fmt: skip
    history = History()
    best_state, best_val, waited = None, math.inf, 0
    try:
        for epoch in range(epochs):
            model.train()
            sizes = []
            for step, batch in enumerate(sources["train"].batches(shuffle=True)):
                # The first step checks the batch's values in the model's own checks;
                # after that only the free checks run (no GPU synchronisation).
                with contextlib.nullcontext() if epoch == step == 0 else checks.trusted():
                    loss = model.loss(batch)
                guard.check(loss, f"in epoch {epoch}, step {step}", [optimizer])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                sizes.append(_size(batch))
            history.train_loss.append(_mean(guard.flush(), sizes))
            if "val" in sources:
                history.val_loss.append(_evaluate(model, sources["val"], guard, epoch))
                if history.val_loss[-1] < best_val:
                    best_val, waited, history.best_epoch = history.val_loss[-1], 0, epoch
                    if patience is not None:
                        best_state = copy.deepcopy(model.state_dict())
                else:
                    waited += 1
            run.update(train=history.train_loss[-1],
                       **({"val": history.val_loss[-1]} if history.val_loss else {}))  # fmt: skip
            if patience is not None and waited >= patience:
                history.stopped_early = True
                break
    finally:
        history.seconds = run.close(model)
    if best_state is not None:
        model.load_state_dict(best_state)
    else:  # the model holds the last epoch's weights (see History.best_val_epoch)
        history.best_epoch = history.epochs - 1
    model.eval()
    return history


@dataclass
class GANHistory:
    d_loss: list[float] = field(default_factory=list)
    g_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0


@contextlib.contextmanager
def _frozen(module: nn.Module):
    """``module``'s parameters need no gradient inside (restored after, also on an
    error; those already frozen stay frozen). A parameter the generator shares with the
    discriminator would get no gradient in the generator's step: the two networks of
    :class:`selfsup.models.gan.GAN` share none."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def train_gan(
    gan,
    data: torch.Tensor,
    steps: int,
    d_steps: int = 1,
    batch_size: int = 128,
    lr_g: float = 2e-4,
    lr_d: float = 2e-4,
    betas=(0.5, 0.9),
    seed: int | None = None,
    progress: bool | None = None,
    callback: Callable[[int, object], None] | None = None,
    callback_every: int = 100,
    max_abs_loss: float = 1e6,
    device: torch.device | str | None = None,
    stay_on_device: bool = True,
) -> GANHistory:
    """Alternating gradient training: ``d_steps`` Adam steps of the discriminator
    (towards, not to, its best response to the current generator), then one Adam step
    of the generator against that discriminator, ``steps`` times, for a
    :class:`selfsup.models.gan.GAN` (which :func:`fit` refuses: its loss is a game).

    The same machinery as :func:`fit`: training runs on ``device``
    (default :func:`selfsup.runtime.device`), and the GAN stays there unless
    ``stay_on_device=False`` (then it goes back to its first device, as in ``fit``); a progress bar
    when someone is watching; no step is taken with a loss that is NaN, infinite or
    larger than ``max_abs_loss`` in magnitude, and :class:`TrainingDiverged`
    names the step (on a GPU, losses are read back every ``callback_every`` steps, not at
    every step). ``callback(step, gan)`` runs every ``callback_every`` generator steps
    (and at the end), with the GAN in eval mode. ``data`` is as
    :meth:`selfsup.models.gan.GAN.loss` takes it (integer images with ``levels``). In the
    full profile's smoke check, ``steps`` is cut to :data:`selfsup.runtime.SMOKE_STEPS`.
    """
    from .models.gan import GAN, d_loss, g_loss, gradient_penalty

    if not isinstance(gan, GAN):
        raise checks.InputTypeError(f"gan must be a GAN, got {checks.describe(gan)}")
    steps = checks.integer(steps, "steps")
    d_steps = checks.integer(d_steps, "d_steps")
    batch_size = checks.integer(batch_size, "batch_size")
    lr_g = checks.number(lr_g, "lr_g", low=0, low_open=True)
    lr_d = checks.number(lr_d, "lr_d", low=0, low_open=True)
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise checks.InputTypeError(f"betas must be a pair (b1, b2), got {betas!r}")
    betas = tuple(checks.number(b, f"betas[{i}]", low=0, high=1, high_open=True)
                  for i, b in enumerate(betas))  # fmt: skip
    if seed is not None:
        seed = checks.integer(seed, "seed", low=0)
    callback_every = checks.integer(callback_every, "callback_every")
    max_abs_loss = checks.number(max_abs_loss, "max_abs_loss", low=0, low_open=True)
    steps = runtime.smoke_cap(steps, runtime.SMOKE_STEPS)
    data = gan._data(data, "data", device="cpu")  # checked once
    if len(data) < batch_size:
        raise ValueError(
            f"data must have at least batch_size={batch_size} examples, got {len(data)}; "
            "pass a smaller batch_size"
        )
    # The default seed follows runtime.setup; on an accelerator the steps draw there,
    # from a generator seeded by this one (selfsup.tensors.step_generator).
    g = torch.Generator().manual_seed(runtime.derived_seed() if seed is None else seed)
    run = _Run(gan, device, steps, "GAN", "step", progress, stay_on_device)
    device = run.device
    g = step_generator(g, device)
    data = data.to(device)  # on the device once
    opt_g = _fused(torch.optim.Adam, gan.generator.parameters(), lr=lr_g, betas=betas)
    opt_d = _fused(torch.optim.Adam, gan.discriminator.parameters(), lr=lr_d, betas=betas)
    hint = f"lower the learning rates (lr_g={lr_g:g}, lr_d={lr_d:g}) or use the gradient penalty"
    guard = _GuardedSteps(device, hint, max_abs=max_abs_loss)
    history, loss = GANHistory(), gan.loss_name

    def noise():
        return randn((batch_size, gan.generator.latent_dim), g, device)

    def record() -> None:
        values = guard.flush()  # d_steps discriminator losses, then the generator's
        for i in range(0, len(values), d_steps + 1):
            history.d_loss.append(values[i + d_steps - 1])
            history.g_loss.append(values[i + d_steps])

    gan.train()
    try:
        for step in range(steps):
            for _ in range(d_steps):
                idx = torch.randint(len(data), (batch_size,), generator=g, device=g.device)
                idx = idx.to(device)
                real = data[idx]
                with checks.trusted():  # the data were checked once, above
                    with torch.no_grad():  # no graph through the generator here
                        fake = gan.generator(noise())
                    loss_d = d_loss(gan.discriminator(real), gan.discriminator(fake), loss)
                    if gan.gp_weight > 0:
                        loss_d = loss_d + gan.gp_weight * gradient_penalty(
                            gan.discriminator, real, fake, g
                        )
                guard.check(loss_d, f"at step {step} (discriminator)", [opt_d])
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
            # The generator's step differentiates through the discriminator but not
            # for its weights: their gradients would be discarded.
            with checks.trusted(), _frozen(gan.discriminator):
                loss_g = g_loss(gan.discriminator(gan.generator(noise())), loss)
                guard.check(loss_g, f"at step {step} (generator)", [opt_g])
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
            opt_g.step()
            run.update()
            last = step == steps - 1
            if (step + 1) % callback_every == 0 or last:
                record()
                if callback is not None:
                    with eval_mode(gan):
                        callback(step + 1, gan)
    finally:
        history.seconds = run.close(gan)
    gan.eval()
    return history
