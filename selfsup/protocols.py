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
- **Randomness in.** Every random method takes ``generator: torch.Generator | None``
  as a keyword. ``None`` draws from torch's global generator. A generator on the CPU
  works with a model on a GPU: draws are made on the generator's device and moved
  (:func:`selfsup.runtime.randn`), so CPU runs are reproducible bit for bit.
- **Device.** A model stays on the device it was trained on. Every tensor a method
  makes takes its device from the model's parameters or from its input. Inputs on
  the CPU are accepted and moved. Outputs are on the model's device.
- **Mode.** No method leaves the model in a train/eval mode other than the one it
  found (:func:`selfsup.runtime.eval_mode`).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

__all__ = [
    "Conditional",
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
    (integer images for image models). A model whose loss needs several examples per
    batch (a contrastive loss needs negatives) sets ``min_batch_size``. A model whose
    training is a game rather than a minimisation (the GAN) sets ``adversarial = True``:
    ``fit`` refuses it, and :func:`selfsup.models.gan.train_gan` trains it.
    """

    def loss(self, batch: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Sampler(Protocol):
    """A generative model.

    ``sample(n, *, generator=None)`` returns ``n`` examples ``(n, *shape)`` on the
    data's scale: integer images (``torch.long``, ``0..levels-1``) for an image model,
    floats for a model of continuous data (which says so in its docstring).
    ``n = 0`` gives an empty batch of that shape. The same generator state gives the
    same samples.
    """

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor: ...


@runtime_checkable
class DensityModel(Sampler, Protocol):
    """A model that evaluates (a bound on) the probability of data.

    ``log_prob(x)`` returns ``(B,)`` **nats** per example, summed over dimensions,
    finite on the data set's values. A model that computes a bound (a VAE's
    importance-weighted bound, a continuous density of dequantized pixels, which is a
    lower bound on the discrete log-likelihood) says so in its docstring; a stochastic
    estimate takes ``generator=``.
    """

    def log_prob(self, x: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class LatentModel(Protocol):
    """A model with a code for each example.

    ``encode(x)`` returns one tensor ``(B, ...)`` (a VAE's posterior mean, a flow's
    ``z``, a VQ-VAE's code indices); ``decode(z)`` maps codes back to ``(B, *shape)``.
    """

    def encode(self, x: torch.Tensor) -> torch.Tensor: ...

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

    ``complete(x, known_mask, ...)`` returns ``x`` ``(B, *shape)`` with the positions
    where ``known_mask`` (boolean, one example's shape) is ``False`` filled in; the
    known positions never change.
    """

    def complete(self, x: torch.Tensor, known_mask: torch.Tensor) -> torch.Tensor: ...
