"""The model protocol: what every model in the book promises, written once.

These :class:`typing.Protocol` classes are the specification that
``tests/test_protocol.py`` checks for every configuration in
:data:`selfsup.configs.ALL` and every baseline. A new model passes that test or does
not ship. A model may belong to several families (a VAE is a density model, a latent
model and trainable).

Rules shared by every family:

- **Data in.** An image model takes the data set's integer images
  (:attr:`selfsup.data.ImageData.x_train`, values ``0..levels-1``) in ``loss``,
  ``log_prob``, ``encode`` and ``embed``, and does its own scaling (to ``[0, 1]``) or
  dequantization inside. A chapter never rescales pixels for a model.
- **Inputs as users hold them** (scikit-learn's rule: convert where nothing is lost,
  refuse with a ``ValueError`` that names the argument and the fix otherwise). The
  same images in any of these forms give the same results: integer tensors of any
  integer dtype, whole-number floats (``x.float()``), NumPy arrays of any int or float
  dtype, and a singleton channel axis ``(B, 1, H, W)`` for a model of ``(H, W)``
  images. Refused: fractional floats where grey levels are meant (multiply floats in
  ``[0, 1]`` by ``levels - 1`` and round), values outside ``0..levels-1``, several
  channels, an empty batch to ``loss`` (whose mean would be NaN). Floats are converted
  to the model's dtype and device (a float64 array for a float32 model is float32; no
  float64 reaches a device without it, Apple's MPS). Hyperparameters may be NumPy
  scalars. The conversion is done once, in :func:`selfsup._checks.images`.
- **Randomness in.** Every random method takes ``generator: torch.Generator | None``
  as a keyword. ``None`` draws from torch's global generator. A generator on the CPU
  works with a model on a GPU: draws are made on the generator's device and moved
  (:func:`selfsup.tensors.randn`), so CPU runs are reproducible bit for bit.
- **Device.** A model stays on the device it was trained on. Every tensor a method
  makes takes its device from the model's parameters or from its input. Inputs on
  the CPU are accepted and moved. Outputs are on the model's device.
- **Mode.** No method leaves the model in a train/eval mode other than the one it
  found (:func:`selfsup.tensors.eval_mode`).
- **One meaning per verb.** ``log_prob(x, *, generator=None, **estimator)`` on every
  density model (an exact model accepts and ignores ``generator``); ``sample(n, *,
  generator=None)`` returns one tensor on every sampler (labels, where a model has
  them, come from another method: ``ClassConditional.sample_with_labels``); ``elbo(x,
  *, generator=None)`` returns the same :class:`~selfsup.models.vae.ELBO` for the VAE
  and the hierarchical VAE.
- **Save and load.** ``selfsup.save(model, path)`` stores the class, the constructor's
  arguments, the weights and the fitted state; ``selfsup.load(path)`` rebuilds the
  model, with the same state and the same outputs (:mod:`selfsup.saving`). Every model
  inherits :class:`selfsup.saving.Saveable` to record its constructor's arguments.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

__all__ = [
    "Conditional",
    "ConditionalDensity",
    "DensityModel",
    "LatentModel",
    "RepresentationModel",
    "Sampler",
    "Trainable",
]


@runtime_checkable
class Trainable(Protocol):
    """Anything :func:`selfsup.train.fit` trains.

    ``loss(batch)`` returns a scalar tensor with gradients: what training minimises
    (for density models, the mean negative log-likelihood or its bound, in nats per
    example). ``batch`` is a slice of the training data as the data set holds it
    (integer images for image models), with at least one example. A model whose loss
    needs several examples per batch (a contrastive loss needs negatives) sets
    ``min_batch_size``. A model whose training is a game rather than a minimisation
    (the GAN) sets ``adversarial = True``: ``fit`` refuses it, and
    :func:`selfsup.train.train_gan` trains it.

    **How many parts a batch has.** A model declares ``batch_parts = k``, the number of
    parts its loss takes: ``fit`` passes the first ``k`` parts of data made of several
    (a tuple of tensors, a ``TensorDataset``, a ``Dataset`` or ``DataLoader`` of tuples)
    and drops the rest, such as labels; ``k = 1`` gives a tensor, ``k > 1`` a tuple.
    Every model of the library declares it (``1``; ``TwoTower`` takes pairs, ``2``), so
    a labelled ``DataLoader(TensorDataset(x, y))`` trains an unsupervised model on
    ``x``. A model that does not declare it (one defined in a notebook) gets a tuple of
    tensors whole, as ``fit`` always gave it (a critic whose loss takes ``(real,
    fake)``), and the first part ``x`` of each ``(x, y, ...)`` item of a ``Dataset`` or
    ``DataLoader`` (:mod:`selfsup.train`).
    """

    def loss(self, batch: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Sampler(Protocol):
    """A generative model.

    ``sample(n, *, generator=None)`` returns one tensor, ``n`` examples ``(n, *shape)``
    on the data's scale: integer images (``torch.long``, ``0..levels-1``) for an image
    model, floats for a model of continuous data (which says so in its docstring).
    ``n = 0`` gives an empty batch of that shape. The same generator state gives the
    same samples. Never a tuple: a model with labels returns them from another method
    (``sample_with_labels``).
    """

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor: ...


@runtime_checkable
class DensityModel(Sampler, Protocol):
    """A model that evaluates (a bound on) the probability of data.

    ``log_prob(x, *, generator=None, **estimator)`` returns ``(B,)`` **nats** per
    example, summed over dimensions, finite on the data set's values. A model that
    computes a bound (a VAE's importance-weighted bound, a continuous density of
    dequantized pixels, which is a lower bound on the discrete log-likelihood) says so
    in its docstring. Every model takes ``generator`` as a keyword: a stochastic
    estimate draws with it, so the same generator state gives the same values, and
    an exact model accepts and ignores it. Further keywords set the estimator (a VAE's
    ``k`` importance samples); their defaults keep a bound a bound.
    """

    def log_prob(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None, **estimator
    ) -> torch.Tensor: ...


@runtime_checkable
class LatentModel(Protocol):
    """A model with a code for each example.

    ``encode(x)`` returns one tensor ``(B, ...)`` (a VAE's posterior mean, a flow's
    ``z``, a VQ-VAE's code indices); ``decode(z)`` maps codes back to ``(B, *shape)``
    on the data's scale: for a model of images with ``levels`` grey levels, values on
    the grey-level scale ``0..levels-1`` (floats: a mean, or a network's output,
    unrounded; a flow's dequantized values in ``[0, levels)``), never a scale of the
    model's own, so ``decode(encode(x))`` is comparable with ``x`` for every model.
    ``encode`` takes ``generator`` as a keyword, as ``log_prob`` does: a stochastic code
    (a flow dequantizing integer images) draws with it, and a deterministic encoder
    accepts and ignores it.
    """

    def encode(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor: ...

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class RepresentationModel(Protocol):
    """A model whose features feed a downstream task (a linear probe).

    ``embed(x)`` returns ``(B, r)`` float features without gradients.
    """

    def embed(self, x: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Conditional(Protocol):
    """A model that predicts one part of ``x`` from another.

    ``complete(x, known_mask, *, generator=None, ...)`` returns ``x`` ``(B, *shape)``
    with the positions where ``known_mask`` (boolean, one example's shape) is ``False``
    filled in; the known positions never change. A completion that draws (samples,
    dequantization noise) draws with ``generator``; a deterministic one ignores it.
    """

    def complete(
        self, x: torch.Tensor, known_mask: torch.Tensor, *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor: ...  # fmt: skip


@runtime_checkable
class ConditionalDensity(Conditional, Protocol):
    """A conditional model that also scores a completion.

    ``conditional_log_prob(x, known_mask, *, generator=None)`` returns a conditional
    log-likelihood of the unknown positions given the known ones, per example ``(B,)``
    in nats (a one-draw estimate draws its noise with ``generator``; a deterministic
    one ignores it):

    - a continuous Gaussian mixture: ``log p(x_unknown | x_known)`` exactly; wrapped in
      :class:`~selfsup.models.baselines.Dequantized`, the same at one draw of the
      dequantization noise (neither exact nor a bound on the discrete conditional);
    - an autoregressive model: the sum of the unknown positions' factors
      ``p(x_i | x_<i)`` in its (current) ordering, which is ``log p(x_unknown |
      x_known)`` exactly when the known positions come first; otherwise the unknown
      factors ignore known positions later in the ordering and the sum is not that
      conditional.
    """

    def conditional_log_prob(
        self, x: torch.Tensor, known_mask: torch.Tensor, *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor: ...  # fmt: skip
