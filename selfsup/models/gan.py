"""Generative adversarial networks.

A GAN trains a generator ``G`` against a discriminator (critic) ``D``: the
discriminator approximates the best test that tells real from generated samples, an
integral probability metric ``max_{f in F} |E_p f - E_G f|``, and the generator moves
its samples to make that distance small. Losses take the discriminator's raw outputs
(logits for the minimax and non-saturating games, critic values for Wasserstein).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks as checks
from .. import tensors
from ..saving import Saveable
from ..train import GANHistory, train_gan  # trained beside fit; kept importable here
from .layers import mlp

__all__ = [
    "GAN",
    "Discriminator",
    "GANHistory",
    "Generator",
    "LOSSES",
    "d_loss",
    "g_loss",
    "gradient_penalty",
    "train_gan",
]

LOSSES = ("minimax", "nonsaturating", "wasserstein")


class Generator(Saveable, nn.Module):
    """``z ~ N(0, I)`` ``(B, latent_dim)`` to samples ``(B, *shape)``.

    An MLP; with ``image=True`` its output goes through a sigmoid, for images with
    values in ``[0, 1]``.
    """

    def __init__(
        self,
        latent_dim: int,
        shape: Sequence[int],
        hidden: Sequence[int] = (128, 128),
        image: bool = False,
    ):
        super().__init__()
        latent_dim = checks.integer(latent_dim, "latent_dim")
        self.latent_dim, self.shape = latent_dim, checks.sizes(shape, "shape", allow_empty=False)
        self.image = bool(image)
        self.hidden = checks.sizes(hidden, "hidden", example="(128, 128)")
        self.net = mlp([latent_dim, *self.hidden, math.prod(self.shape)])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = checks.tensor(z, "z", shape=(self.latent_dim,), min_len=0, dtype="float", like=self)
        out = self.net(z)
        out = torch.sigmoid(out) if self.image else out
        return out.reshape(len(z), *self.shape)


class Discriminator(Saveable, nn.Module):
    """Samples ``(B, *shape)`` to one real number each (a logit or a critic value).

    An MLP for vectors; with ``conv=True`` a small convolutional network for images
    ``(B, H, W)``. LeakyReLU activations, no normalisation (so that the gradient
    penalty of WGAN-GP is well defined per example).
    """

    def __init__(
        self, shape: Sequence[int], hidden: Sequence[int] = (128, 128), conv: bool = False
    ):
        super().__init__()
        self.shape, self.conv = checks.sizes(shape, "shape", allow_empty=False), bool(conv)
        hidden = checks.sizes(hidden, "hidden", example="(128, 128)")
        if conv and (len(self.shape) != 2 or any(s % 2 for s in self.shape)):
            raise ValueError(
                "a conv discriminator needs an image shape (H, W) with even sides, "
                f"got {self.shape}"
            )
        if conv:
            self.net = nn.Sequential(
                nn.Conv2d(1, 32, 3, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(32, 64, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
                nn.Flatten(), nn.Linear(64 * math.prod(s // 2 for s in self.shape), 1),
            )  # fmt: skip
        else:
            layers: list[nn.Module] = []
            sizes = [math.prod(self.shape), *hidden]
            for a, b in zip(sizes[:-1], sizes[1:], strict=True):
                layers += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
            self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = checks.images(x, "x", self.shape, "real", min_len=0, like=self)
        x = x[:, None] if self.conv else x.reshape(len(x), -1)
        return self.net(x).squeeze(-1)


def _check_loss(loss: str) -> None:
    checks.choice(loss, "loss", LOSSES)


def _outputs(t, name: str) -> torch.Tensor:
    """The discriminator's outputs ``(B,)`` (or ``(B, 1)``), finite, non-empty."""
    t = checks.tensor(t, name, ndim=(1, 2), dtype="float")
    if t.ndim == 2 and t.shape[1] != 1:
        raise ValueError(f"{name} must be the discriminator's outputs (B,), got {tuple(t.shape)}")
    return t


def d_loss(real: torch.Tensor, fake: torch.Tensor, loss: str) -> torch.Tensor:
    """The discriminator's loss from its outputs on real and generated samples.

    - minimax and non-saturating: ``-E log D(x) - E log(1 - D(G(z)))`` with
      ``D = sigmoid(output)`` (the same for both games);
    - wasserstein: ``E f(G(z)) - E f(x)`` (the critic maximises the difference).
    """
    _check_loss(loss)
    real, fake = _outputs(real, "real"), _outputs(fake, "fake")
    if loss == "wasserstein":
        return fake.mean() - real.mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def g_loss(fake: torch.Tensor, loss: str) -> torch.Tensor:
    """The generator's loss from the discriminator's outputs on generated samples.

    - minimax: ``E log(1 - D(G(z)))`` (saturates when ``D`` rejects the samples);
    - non-saturating: ``-E log D(G(z))``;
    - wasserstein: ``-E f(G(z))``.
    """
    _check_loss(loss)
    fake = _outputs(fake, "fake")
    if loss == "minimax":
        return -F.softplus(fake).mean()
    if loss == "nonsaturating":
        return F.softplus(-fake).mean()
    return -fake.mean()


def gradient_penalty(
    critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator | None = None,
    one_sided: bool = False,
) -> torch.Tensor:
    """WGAN-GP's ``E (||grad_x f(x_hat)||_2 - 1)^2`` at random interpolates
    ``x_hat = eps x + (1 - eps) G(z)``, ``eps ~ U[0, 1]`` per example.

    With ``one_sided``, only slopes above 1 are penalised, ``E max(0, ||grad|| - 1)^2``
    (Petzka et al., 2018): the constraint ``||f||_Lip <= 1`` of the Kantorovich-Rubinstein
    dual itself. The two-sided penalty also pushes small slopes *up*, which can trap a
    critic that starts with the wrong sign behind a barrier at slope 0.
    """
    # the critic's dtype and device (a float64 array for a float32 critic is converted)
    like = next(critic.parameters(), None) if isinstance(critic, nn.Module) else None
    real = checks.tensor(real, "real", dtype="float", like=like)
    fake = checks.tensor(fake, "fake", dtype="float", like=like)
    checks.generator(generator)
    if real.shape != fake.shape:
        raise ValueError(
            "real and fake must have the same shape, "
            f"got {tuple(real.shape)} and {tuple(fake.shape)}"
        )
    # BEGIN SOLUTION
    eps = tensors.rand((len(real),) + (1,) * (real.ndim - 1), generator, real.device,
                       dtype=real.dtype)  # fmt: skip
    x_hat = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    excess = grad.reshape(len(real), -1).norm(dim=1) - 1
    return ((excess.clamp(min=0) if one_sided else excess) ** 2).mean()
    # END SOLUTION


class GAN(Saveable, nn.Module):
    """A generator, a discriminator and the game they play.

    Args:
        loss: ``"minimax"``, ``"nonsaturating"`` or ``"wasserstein"``.
        gp_weight: the gradient penalty's weight (WGAN-GP uses 10 with ``"wasserstein"``).
        levels: for an image generator (``image=True``), the data set's number of grey
            levels: the GAN then takes its integer images (``0..levels-1``), scales them to
            ``[0, 1]`` for the discriminator, and :meth:`sample` returns integer images.
            ``None``: data and samples are floats (in ``[0, 1]`` for images).

    Its training is a game, not a minimisation: :meth:`loss` is the discriminator's
    loss, which the generator *maximises*. So it declares ``adversarial = True`` and
    :func:`selfsup.train.fit` refuses it; :func:`train_gan` plays the game.
    """

    #: Training is a game: :func:`selfsup.train.fit` refuses the model (use train_gan).
    adversarial = True
    batch_parts = 1  # loss takes the real images alone

    def __init__(
        self,
        generator: Generator,
        discriminator: Discriminator,
        loss: str = "nonsaturating",
        gp_weight: float = 0.0,
        levels: int | None = None,
    ):
        super().__init__()
        _check_loss(loss)
        if not isinstance(generator, Generator) or not isinstance(discriminator, nn.Module):
            raise checks.InputTypeError(
                "generator must be a Generator and discriminator an nn.Module, got "
                f"{checks.describe(generator)} and {checks.describe(discriminator)}"
            )
        gp_weight = checks.number(gp_weight, "gp_weight", low=0, fix="WGAN-GP uses 10")
        if levels is not None:
            levels = checks.integer(levels, "levels", low=2)
            if not generator.image:
                raise ValueError(
                    "levels needs an image generator (Generator(..., image=True)); "
                    "leave levels=None for continuous data"
                )
        self.levels = levels
        self.generator, self.discriminator, self.loss_name, self.gp_weight = (
            generator,
            discriminator,
            loss,
            gp_weight,
        )

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples ``G(z)``, ``z ~ N(0, I)``: integer images ``0..levels-1`` (rounded)
        with ``levels``; else floats (in ``[0, 1]`` for an image generator)."""
        n = checks.sample_count(n)
        checks.generator(generator)
        device = next(self.generator.parameters()).device
        z = tensors.randn((n, self.generator.latent_dim), generator, device)
        with tensors.eval_mode(self):
            out = self.generator(z)
        return out if self.levels is None else checks.to_levels(out, self.levels)

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        """The discriminator's loss on ``batch`` (real data) against as many fresh
        samples: the quantity the discriminator minimises, the generator maximises
        (a variational estimate of the game's divergence, up to sign and constants)."""
        real = self._data(batch, "batch")
        z = tensors.randn((len(real), self.generator.latent_dim), None, real.device)
        return d_loss(self.discriminator(real), self.discriminator(self.generator(z)),
                      self.loss_name)  # fmt: skip

    def _data(self, x, name: str, device=None) -> torch.Tensor:
        """The data as the discriminator sees them (floats), on ``device`` (default: the
        model's)."""
        like, shape = self.generator, self.generator.shape
        if self.generator.image:
            return checks.unit_images(x, name, shape, self.levels, like=like, device=device)
        return checks.images(x, name, shape, "real", like=like, device=device)
