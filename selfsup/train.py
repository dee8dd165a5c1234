"""One training loop for every model in the book.

``fit`` trains anything with a ``loss(batch) -> scalar tensor`` method: density
models, autoencoders, contrastive models. It records per-epoch train and
validation losses, can stop early and restore the best weights, shows a progress
bar only when someone is watching, and refuses to go on after a NaN or inf loss.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from . import _checks as checks
from . import runtime
from .runtime import progress_enabled

__all__ = ["History", "TrainingDiverged", "fit", "iterate_batches"]


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


def _as_tensors(data: Data, name: str) -> tuple[torch.Tensor, ...]:
    """``data`` (a tensor, an array, or a tuple of them) as a tuple of checked tensors:
    non-empty, of equal lengths, without NaN or inf (checked once, here)."""
    if isinstance(data, torch.utils.data.TensorDataset):
        data = data.tensors
    if isinstance(data, (torch.Tensor, np.ndarray)):
        parts = (data,)
    elif (
        isinstance(data, (tuple, list))
        and data
        and all(isinstance(t, (torch.Tensor, np.ndarray)) for t in data)
    ):
        parts = tuple(data)
    else:
        raise checks.InputTypeError(
            f"{name} must be a tensor or a tuple of tensors, got {checks.describe(data)}; "
            "for a Dataset or DataLoader, pass its tensors, e.g. dataset.tensors"
        )
    tensors = tuple(
        checks.tensor(t, name if len(parts) == 1 else f"{name}[{i}]") for i, t in enumerate(parts)
    )
    n = len(tensors[0])
    if any(len(t) != n for t in tensors):
        raise ValueError(
            f"the tensors of {name} have different lengths {[len(t) for t in tensors]}; "
            "pair each example with its own label or view"
        )
    return tensors


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
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        if len(idx) < min_size:
            break
        batch = tuple(t[idx].to(device) if device is not None else t[idx] for t in tensors)
        yield batch[0] if len(batch) == 1 else batch


def _adamw(params: list, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW, fused where this torch and device have the fused kernel (about 15% faster
    training for the book's small models on a CPU), the plain loop elsewhere."""
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def _check_finite(loss: torch.Tensor, where: str, lr: float) -> float:
    if loss.ndim != 0:
        raise ValueError(f"model.loss(batch) must return a scalar, got shape {tuple(loss.shape)}")
    value = float(loss.detach())
    if not math.isfinite(value):
        raise TrainingDiverged(
            f"loss became {value} {where}; lower the learning rate (lr={lr:g}), "
            "or check the data for NaN/inf"
        )
    return value


@torch.no_grad()
def _evaluate(
    model: nn.Module, tensors, batch_size: int, device, lr: float, epoch: int, min_size: int = 1
) -> float:
    model.eval()
    total, count = 0.0, 0
    for batch in iterate_batches(tensors, batch_size, False, None, device, min_size):
        size = len(batch if isinstance(batch, torch.Tensor) else batch[0])
        total += _check_finite(model.loss(batch), f"on validation data in epoch {epoch}", lr) * size
        count += size
    return total / count


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
) -> History:
    """Train ``model`` by minimising ``model.loss(batch)`` with Adam(W).

    Args:
        model: an ``nn.Module`` with ``loss(batch) -> scalar tensor``.
        train: a tensor ``(N, ...)`` (or a NumPy array), a tuple of tensors of length
            ``N``, or a ``TensorDataset``; each batch is a slice of it (a tuple of
            slices for a tuple). It is checked once for NaN and inf.
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
            when present). The model moves there for training and back to where its
            parameters were afterwards, so a chapter's CPU tensors keep working.
        progress: show a tqdm bar; default: only when interactive
            (:func:`selfsup.runtime.progress_enabled`).
        schedule: ``"cosine"`` anneals the learning rate to zero over all steps;
            ``None`` keeps it constant.
    Returns:
        the :class:`History` of mean losses per epoch.
    Raises:
        TrainingDiverged: on a NaN or inf loss, naming the epoch and step.
    """
    if not callable(getattr(model, "loss", None)) or not isinstance(model, nn.Module):
        raise checks.InputTypeError(
            f"model must be an nn.Module with a loss(batch) method, got {checks.describe(model)}"
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
    train_t = _as_tensors(train, "train")
    val_t = _as_tensors(val, "val") if val is not None else None
    # A model whose loss needs several examples per batch (a contrastive loss needs
    # negatives) declares min_batch_size; a shorter last batch is left out.
    min_size = checks.integer(getattr(model, "min_batch_size", 1), "model.min_batch_size")
    for name, tensors in (("train", train_t), ("val", val_t)):
        if tensors is not None and len(tensors[0]) < min_size:
            raise ValueError(
                f"{name} has {len(tensors[0])} examples, but {type(model).__name__} needs "
                f"batches of at least {min_size}; pass more data"
            )
    if batch_size < min_size:
        raise ValueError(
            f"batch_size must be >= {min_size} for {type(model).__name__}, got {batch_size}"
        )
    params = list(model.parameters())
    home = params[0].device if params else torch.device("cpu")
    device = runtime.device() if device is None else checks.device(device)
    if optimizer is None:
        if not params:
            raise ValueError("model has no parameters to train")
        optimizer = _adamw(params, lr, weight_decay)
    scheduler = None
    if schedule == "cosine":
        full, rest = divmod(len(train_t[0]), batch_size)
        steps = epochs * (full + (rest >= min_size and rest > 0))
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    generator = torch.Generator().manual_seed(runtime.derived_seed() if seed is None else seed)
    history = History()
    best_state, best_val, waited = None, math.inf, 0
    show = progress_enabled() if progress is None else progress
    bar = None
    if show:
        from tqdm import tqdm

        bar = tqdm(total=epochs, desc=type(model).__name__, unit="epoch")
    start = time.perf_counter()
    model.to(device)
    try:
        for epoch in range(epochs):
            model.train()
            total, count = 0.0, 0
            batches = iterate_batches(train_t, batch_size, True, generator, device, min_size)
            for step, batch in enumerate(batches):
                # The first step checks the batch's values in the model's own checks;
                # after that only the free checks run (no GPU synchronisation).
                with contextlib.nullcontext() if epoch == step == 0 else checks.trusted():
                    loss = model.loss(batch)
                value = _check_finite(loss, f"in epoch {epoch}, step {step}", lr)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                size = len(batch if isinstance(batch, torch.Tensor) else batch[0])
                total, count = total + value * size, count + size
            history.train_loss.append(total / count)
            if val_t is not None:
                history.val_loss.append(
                    _evaluate(model, val_t, batch_size, device, lr, epoch, min_size)
                )
                if history.val_loss[-1] < best_val:
                    best_val, waited, history.best_epoch = history.val_loss[-1], 0, epoch
                    if patience is not None:
                        best_state = copy.deepcopy(model.state_dict())
                else:
                    waited += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(
                    train=f"{history.train_loss[-1]:.4g}",
                    **({"val": f"{history.val_loss[-1]:.4g}"} if val_t is not None else {}),
                )
            if patience is not None and waited >= patience:
                history.stopped_early = True
                break
    finally:
        model.to(home)
        if bar is not None:
            bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    else:  # the model holds the last epoch's weights (see History.best_val_epoch)
        history.best_epoch = history.epochs - 1
    model.eval()
    history.seconds = time.perf_counter() - start
    return history
