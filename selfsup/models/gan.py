"""Generative adversarial networks.

A GAN trains a generator ``G`` against a discriminator (critic) ``D``: the
discriminator approximates the best test that tells real from generated samples, an
integral probability metric ``max_{f in F} |E_p f - E_G f|``, and the generator moves
its samples to make that distance small. Losses take the discriminator's raw outputs
(logits for the minimax and non-saturating games, critic values for Wasserstein).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks as checks
from .. import runtime
from ..saving import Saveable
from ..train import _fused, _GuardedSteps, _Run
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
    eps = runtime.rand((len(real),) + (1,) * (real.ndim - 1), generator, real.device,
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
        z = runtime.randn((n, self.generator.latent_dim), generator, device)
        with runtime.eval_mode(self):
            out = self.generator(z)
        return out if self.levels is None else checks.to_levels(out, self.levels)

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        """The discriminator's loss on ``batch`` (real data) against as many fresh
        samples: the quantity the discriminator minimises, the generator maximises
        (a variational estimate of the game's divergence, up to sign and constants)."""
        real = self._data(batch, "batch")
        z = runtime.randn((len(real), self.generator.latent_dim), None, real.device)
        return d_loss(self.discriminator(real), self.discriminator(self.generator(z)),
                      self.loss_name)  # fmt: skip

    def _data(self, x, name: str, device=None) -> torch.Tensor:
        """The data as the discriminator sees them (floats), on ``device`` (default: the
        model's)."""
        like, shape = self.generator, self.generator.shape
        if self.generator.image:
            return checks.unit_images(x, name, shape, self.levels, like=like, device=device)
        return checks.images(x, name, shape, "real", like=like, device=device)


@dataclass
class GANHistory:
    d_loss: list[float] = field(default_factory=list)
    g_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0


def train_gan(
    gan: GAN,
    data: torch.Tensor,
    steps: int,
    d_steps: int = 1,
    batch_size: int = 128,
    lr_g: float = 2e-4,
    lr_d: float = 2e-4,
    betas=(0.5, 0.9),
    seed: int | None = None,
    progress: bool | None = None,
    callback: Callable[[int, GAN], None] | None = None,
    callback_every: int = 100,
    max_abs_loss: float = 1e6,
    device: torch.device | str | None = None,
    stay_on_device: bool = True,
) -> GANHistory:
    """Alternating gradient training: ``d_steps`` Adam steps of the discriminator
    (towards, not to, its best response to the current generator), then one Adam step
    of the generator against that discriminator, ``steps`` times.

    The same machinery as :func:`selfsup.train.fit`: training runs on ``device``
    (default :func:`selfsup.runtime.device`), and the GAN stays there unless
    ``stay_on_device=False`` (then it goes back to its first device, as in ``fit``); a progress bar
    when someone is watching; no step is taken with a loss that is NaN, infinite or
    larger than ``max_abs_loss`` in magnitude, and :class:`~selfsup.train.TrainingDiverged`
    names the step (on a GPU, losses are read back every ``callback_every`` steps, not at
    every step). ``callback(step, gan)`` runs every ``callback_every`` generator steps
    (and at the end), with the GAN in eval mode. ``data`` is as :meth:`GAN.loss` takes it
    (integer images with ``levels``). In the full profile's smoke check, ``steps`` is
    cut to :data:`selfsup.runtime.SMOKE_STEPS`.
    """
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
    # from a generator seeded by this one (runtime.step_generator).
    g = torch.Generator().manual_seed(runtime.derived_seed() if seed is None else seed)
    run = _Run(gan, device, steps, "GAN", "step", progress, stay_on_device)
    device = run.device
    g = runtime.step_generator(g, device)
    data = data.to(device)  # on the device once
    opt_g = _fused(torch.optim.Adam, gan.generator.parameters(), lr=lr_g, betas=betas)
    opt_d = _fused(torch.optim.Adam, gan.discriminator.parameters(), lr=lr_d, betas=betas)
    hint = f"lower the learning rates (lr_g={lr_g:g}, lr_d={lr_d:g}) or use the gradient penalty"
    guard = _GuardedSteps(device, hint, max_abs=max_abs_loss)
    history, loss = GANHistory(), gan.loss_name

    def noise():
        return runtime.randn((batch_size, gan.generator.latent_dim), g, device)

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
                    fake = gan.generator(noise()).detach()
                    loss_d = d_loss(gan.discriminator(real), gan.discriminator(fake), loss)
                    if gan.gp_weight > 0:
                        loss_d = loss_d + gan.gp_weight * gradient_penalty(
                            gan.discriminator, real, fake, g
                        )
                guard.check(loss_d, f"at step {step} (discriminator)", [opt_d])
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
            with checks.trusted():
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
                    with runtime.eval_mode(gan):
                        callback(step + 1, gan)
    finally:
        history.seconds = run.close(gan)
    gan.eval()
    return history
