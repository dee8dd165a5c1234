"""Run-time set-up shared by every chapter: device, seeds, profile and budget.

A chapter's second cell is ::

    from selfsup import runtime
    rt = runtime.setup(seed=0)
    EPOCHS = runtime.budget(quick=30, full=300)

The *profile* decides how much compute a chapter spends:

- ``"quick"``: the default on every device. Every chapter runs in about a minute on
  a 2-core CPU (small data, small models, short training).
- ``"full"``: ``SELFSUP_PROFILE=full``, for a reader with a GPU. Bigger data (MNIST
  where a chapter uses images), bigger models, better numbers. It is opt-in until a
  whole run of the book on a GPU has verified its claims and timed it.

``SELFSUP_SMOKE=1`` with the full profile is a check of the full profile's *code
paths* on a CPU: the full profile's data (MNIST, 28x28, cut to
:data:`SMOKE_TRAIN` and :data:`SMOKE_TEST` images) with the quick profile's model
sizes, and training cut to :data:`SMOKE_EPOCHS` epochs (:func:`selfsup.train.fit`) or
:data:`SMOKE_STEPS` steps (:func:`selfsup.train.train_gan`): see
:func:`smoke_cap`. Its numbers mean nothing; ``tests/test_full_profile.py`` runs every
chapter this way, and :func:`selfsup.book.claim` records the chapters' claims as
unverified, since they hold only for trained models. Training runs on :func:`device`:
:func:`selfsup.train.fit` moves the model there, and it stays there for sampling and
evaluation.
"""

from __future__ import annotations

import os
import random
import sys
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

# The tensor helpers live in selfsup.tensors; a script may still call runtime.randn etc.
# (to replace one in a test, patch selfsup.tensors or the module that imported it).
from .tensors import draw_device, eval_mode, rand, randn, step_generator  # noqa: F401

PROFILES = ("quick", "full")
PROFILE_ENV = "SELFSUP_PROFILE"
SEED_ENV = "SELFSUP_SEED"
# Seeds of the independent streams of one run: stream k of run seed s is s * STREAMS + k,
# so seed 0 keeps stream k at k and two runs' streams never overlap (k < STREAMS).
STREAMS = 1000
SMOKE_ENV = "SELFSUP_SMOKE"
SMOKE_TRAIN, SMOKE_TEST = 256, 128
# The smoke check trains for at most this many epochs (fit) or steps (train_gan).
SMOKE_EPOCHS, SMOKE_STEPS = 2, 25
# Environment variables through which a user chooses the number of CPU threads.
THREAD_ENVS = ("SELFSUP_THREADS", "OMP_NUM_THREADS")

T = TypeVar("T")

# The seed of the last setup() in this process: the base of derived_seed().
_run_seed = 0


DEVICE_ENV = "SELFSUP_DEVICE"


def device() -> torch.device:
    """The best available device: CUDA, then Apple's MPS, then the CPU.

    ``SELFSUP_DEVICE`` chooses instead: ``cpu``, ``cuda``, ``mps``, ``emulated``, a
    stand-in accelerator on the CPU that raises where a GPU would, or ``emulated-mps``,
    which also refuses float64 as Apple's GPUs do (:mod:`selfsup.devicecheck`;
    ``make test-full-smoke`` runs the chapters on it).
    """
    raw = os.environ.get(DEVICE_ENV, "").strip().lower()
    if raw in ("emulated", "emulated-mps"):
        from selfsup import devicecheck

        return devicecheck.enable("mps" if raw == "emulated-mps" else "cuda")
    if raw:
        from selfsup import _checks

        return _checks.device(raw, DEVICE_ENV)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def has_float64(device: torch.device | str) -> bool:
    """Whether ``device`` computes in float64: not Apple's MPS, nor the stand-in playing
    it (``SELFSUP_DEVICE=emulated-mps``). Where it does not, float64 work (an exact
    density, a metric) belongs on the CPU."""
    device = torch.device(device)
    if device.type == "mps":
        return False
    from selfsup import devicecheck

    return not devicecheck.refuses_float64(device)


def seed_everything(seed: int = 0) -> int:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA).

    Returns the seed, so that it can be logged. ``seed`` must be an integer in
    ``[0, 2**32)``.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}; pass e.g. seed=0")
    seed = int(seed)
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}; pass a non-negative int")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return seed


def seed_from_env(default: int) -> int:
    """The run's seed: ``SELFSUP_SEED`` when set (the seed sweep, CI), else ``default``."""
    raw = os.environ.get(SEED_ENV, "").strip()
    if not raw:
        return default
    try:
        seed = int(raw)
    except ValueError:
        raise ValueError(f"{SEED_ENV}={raw!r} must be a non-negative integer, e.g. 1") from None
    if not 0 <= seed < 2**32 // STREAMS:
        raise ValueError(f"{SEED_ENV}={raw!r} must be in [0, {2**32 // STREAMS})")
    return seed


def derived_seed(stream: int = 0) -> int:
    """The seed of draw number ``stream`` of this run (data, initialisation, sampling).

    It is ``seed * STREAMS + stream`` for the seed of the last :func:`setup`: with seed 0
    it is ``stream`` itself, and another seed moves every stream at once, so a chapter
    that takes all its seeds from here follows ``SELFSUP_SEED`` everywhere.
    """
    if isinstance(stream, bool) or not isinstance(stream, (int, np.integer)):
        raise ValueError(f"stream must be an integer, got {stream!r}")
    if not 0 <= stream < STREAMS:
        raise ValueError(f"stream must be in [0, {STREAMS}), got {stream}")
    return _run_seed * STREAMS + int(stream)


def generator(stream: int = 0) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`derived_seed` of ``stream``."""
    return torch.Generator().manual_seed(derived_seed(stream))


def manual_seed(stream: int = 0) -> int:
    """Seed torch's global generator with :func:`derived_seed` of ``stream`` (model
    initialisation, dropout); returns the seed used."""
    seed = derived_seed(stream)
    torch.manual_seed(seed)
    return seed


def profile() -> str:
    """The compute profile: ``"quick"`` or ``"full"``.

    ``SELFSUP_PROFILE`` decides when it is set; otherwise ``"quick"`` on every device,
    since the full profile does not yet hold every claim on a GPU (``SELFSUP_PROFILE=full``
    opts in). Any other value of the variable is an error.
    """
    value = os.environ.get(PROFILE_ENV, "").strip().lower()
    if not value:
        return "quick"
    if value not in PROFILES:
        raise ValueError(
            f"{PROFILE_ENV}={os.environ[PROFILE_ENV]!r} is not a profile; "
            f"set it to one of {PROFILES} or unset it"
        )
    return value


def smoke() -> bool:
    """Whether ``SELFSUP_SMOKE`` is set (module doc); :func:`smoke_check` says whether
    it applies."""
    raw = os.environ.get(SMOKE_ENV, "").strip().lower()
    if raw not in ("", "0", "1", "true", "false"):
        raise ValueError(f"{SMOKE_ENV}={raw!r} must be 0 or 1")
    return raw in ("1", "true")


def resolve_profile(name: str | None) -> str:
    """``name``, checked, or the profile of this run when it is None."""
    chosen = profile() if name is None else name
    if chosen not in PROFILES:
        raise ValueError(f"profile must be 'quick' or 'full', got {name!r}")
    return chosen


def smoke_check(profile: str | None = None) -> bool:
    """Whether this is the full profile's smoke check: the one rule that every part of
    the library follows (module doc).

    True when ``SELFSUP_SMOKE`` is set, the profile is ``"full"``, and the caller did
    not name a ``profile`` (a caller that asks for a profile by name gets it whole, as
    the unit tests of the full-size models do). Then :func:`sizes` is ``"quick"``,
    :func:`selfsup.data.images` cuts the data, :func:`budget` and :func:`smoke_cap` cut
    the training.
    """
    return profile is None and resolve_profile(None) == "full" and smoke()


def sizes(profile: str | None = None) -> str:
    """The profile whose model sizes and training lengths apply: ``profile`` (default
    :func:`profile`), except in the smoke check (:func:`smoke_check`), which takes the
    quick ones (:func:`selfsup.configs.preset`)."""
    return "quick" if smoke_check(profile) else resolve_profile(profile)


def smoke_cap(length: int, cap: int) -> int:
    """``min(length, cap)`` in the full profile's smoke check, ``length`` otherwise.

    The smoke check exercises code paths, not training: :func:`selfsup.train.fit` and
    :func:`selfsup.train.train_gan` cut their epochs and steps through this.
    """
    return min(length, cap) if smoke_check() else length


_UNSET = object()


def budget(*, quick: T, full: T, smoke: T = _UNSET) -> T:
    """Pick a setting by profile: ``EPOCHS = budget(quick=30, full=300)``.

    The smoke check of the full profile (``SELFSUP_SMOKE=1``) takes ``smoke`` when
    given (for a loop the chapter runs itself, e.g. ``smoke=2`` epochs), else the quick
    value.
    """
    if smoke_check():
        return quick if smoke is _UNSET else smoke
    return quick if profile() == "quick" else full


def configure_threads() -> int:
    """Use one torch thread on the CPU unless the user chose a number.

    With two threads on a busy two-core machine torch can be 20 to 100 times
    slower than with one, and the small models of the quick profile gain nothing
    from more. A user who sets ``SELFSUP_THREADS`` (or ``OMP_NUM_THREADS``) keeps
    that number. Returns the number of threads in use.
    """
    for name in THREAD_ENVS:
        raw = os.environ.get(name, "").strip()
        if raw:
            try:
                n = int(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} must be a positive integer") from None
            if n < 1:
                raise ValueError(f"{name}={raw!r} must be a positive integer")
            torch.set_num_threads(n)
            return n
    if not torch.cuda.is_available():
        torch.set_num_threads(1)
    return torch.get_num_threads()


def progress_enabled() -> bool:
    """Whether long loops should show a progress bar.

    ``SELFSUP_PROGRESS=0`` or ``1`` decides when set (the Makefile sets 0, so book
    builds and tests stay quiet); otherwise bars show in a terminal or a Jupyter
    kernel, and never when ``CI`` is set.
    """
    flag = os.environ.get("SELFSUP_PROGRESS", "").strip().lower()
    if flag:
        if flag not in ("0", "1", "true", "false"):
            raise ValueError(f"SELFSUP_PROGRESS={flag!r} must be 0 or 1")
        return flag in ("1", "true")
    if os.environ.get("CI"):
        return False
    return sys.stderr.isatty() or "ipykernel" in sys.modules


@dataclass(frozen=True)
class Runtime:
    """What :func:`setup` chose, printed at the top of every chapter."""

    device: torch.device
    profile: str
    seed: int
    threads: int
    smoke: bool = False

    def derived_seed(self, stream: int = 0) -> int:
        """:func:`derived_seed` for this run."""
        return derived_seed(stream)

    def generator(self, stream: int = 0) -> torch.Generator:
        """:func:`generator` for this run."""
        return generator(stream)

    def manual_seed(self, stream: int = 0) -> int:
        """:func:`manual_seed` for this run."""
        return manual_seed(stream)

    def _device_name(self) -> str:
        from selfsup import devicecheck

        if devicecheck.enabled() and self.device == devicecheck.DEVICE:
            if devicecheck.kind() == "mps":
                return "emulated-mps (a CPU stand-in for Apple's GPU)"
            return "emulated (a CPU stand-in for an accelerator)"
        return self.device.type

    def __str__(self) -> str:
        line = (
            f"selfsup runtime: device={self._device_name()}, profile={self.profile}"
            f"{' (smoke check: quick models on a subset)' if self.smoke else ''}, "
            f"seed={self.seed}, torch threads={self.threads}"
        )
        if self.profile == "quick":
            line += (
                "\n(the quick profile: about a minute a chapter on a laptop CPU. "
                f"{PROFILE_ENV}=full before the import opts in to MNIST and bigger models, "
                "for a GPU: minutes a chapter there, and not every claim holds at that size "
                "yet: the book's claims appendix marks *fails* on its rows that failed on a GPU.)"
            )
        return line


def setup(seed: int = 0, *, quiet: bool = False) -> Runtime:
    """Seed everything, set the CPU threads, and report device, profile and seed.

    ``SELFSUP_SEED`` overrides ``seed`` (the seed sweep of the claims appendix runs
    every chapter under seeds 0-9 this way); the seed used is printed unless
    ``quiet``. Every later :func:`derived_seed`, :func:`generator` and
    :func:`manual_seed` derives from it, and so do the shuffling of
    :func:`selfsup.train.fit` and :func:`selfsup.train.train_gan` by default.
    """
    global _run_seed
    threads = configure_threads()
    seed = seed_everything(seed_from_env(seed))
    if seed >= 2**32 // STREAMS:
        raise ValueError(f"seed must be below {2**32 // STREAMS}, got {seed}")
    _run_seed = seed
    rt = Runtime(
        device=device(),
        profile=profile(),
        seed=seed,
        threads=threads,
        smoke=smoke_check(),
    )
    if not quiet:
        print(rt)
    return rt
