"""The main model of each image chapter, sized by the profile.

A chapter builds its main model here, ``model = configs.vae(images)``, so that one
definition serves the quick profile (8x8 digits on a laptop CPU), the full profile
(28x28 MNIST on a GPU) and the unit tests, which build every full-profile
configuration on random 28x28 tensors on the CPU (``tests/test_configs.py``).

Each function takes the :class:`selfsup.data.ImageData` of the profile (its
``shape`` and ``levels``) and returns an untrained model; ``profile`` overrides
:func:`selfsup.runtime.profile`. The full profile's smoke check
(``SELFSUP_SMOKE=1``) builds the quick sizes for its 28x28 images. The training
lengths stay in the chapters, with ``runtime.budget``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from torch import nn

from selfsup import _checks as checks
from selfsup import runtime
from selfsup.data import ImageData


def _pick(profile: str | None, quick, full):
    chosen = runtime.profile() if profile is None else profile
    if chosen not in ("quick", "full"):
        raise ValueError(f"profile must be 'quick' or 'full', got {profile!r}")
    if profile is None and runtime.smoke():
        return quick
    return quick if chosen == "quick" else full


def _takes_data(build):
    """Check the first argument: an :class:`ImageData` (what ``data.images()`` returns)."""

    @functools.wraps(build)
    def wrapper(data, *args, **kwargs):
        if not (hasattr(data, "shape") and hasattr(data, "levels") and hasattr(data, "x_train")):
            raise checks.InputTypeError(
                f"data must be the ImageData of the profile (data.images()), got "
                f"{checks.describe(data)}"
            )
        return build(data, *args, **kwargs)

    return wrapper


@_takes_data
def autoencoder(data: ImageData, latent_dim: int, profile: str | None = None) -> nn.Module:
    """The deep autoencoder of the autoencoders chapter."""
    from selfsup.models.autoencoder import Autoencoder

    hidden = _pick(profile, (256, 128), (1024, 512))
    return Autoencoder(data.shape, latent_dim, hidden=hidden, levels=data.levels)


@_takes_data
def vae(data: ImageData, latent_dim: int | None = None, profile: str | None = None) -> nn.Module:
    """A VAE with a categorical decoder (for binarized MNIST: a Bernoulli one)."""
    from selfsup.models.vae import VAE

    latent = _pick(profile, 16, 32) if latent_dim is None else latent_dim
    hidden = _pick(profile, (256,), (1024, 512))
    return VAE(data.shape, latent, likelihood="categorical", levels=data.levels, hidden=hidden)


@_takes_data
def hvae(data: ImageData, free_bits: float = 0.0, profile: str | None = None) -> nn.Module:
    """The two-level hierarchical VAE of the VQ-VAE chapter."""
    from selfsup.models.hvae import HierarchicalVAE

    latent, top = _pick(profile, (8, 4), (32, 16))
    hidden, top_hidden = _pick(profile, ((256,), (128,)), ((1024, 512), (256,)))
    return HierarchicalVAE(
        data.shape, latent, top, levels=data.levels, hidden=hidden, top_hidden=top_hidden,
        free_bits=free_bits,
    )  # fmt: skip


@_takes_data
def vqvae(
    data: ImageData, num_codes: int | None = None, profile: str | None = None, **quantizer
) -> nn.Module:
    """A VQ-VAE; the full profile downsamples 28x28 to a 7x7 grid of codes.

    ``num_codes`` overrides the profile's codebook size (64 quick, 512 full).
    """
    from selfsup.models.vqvae import VQVAE

    codes, width, down = _pick(profile, (64, 64, 1), (512, 128, 2))
    codes = codes if num_codes is None else num_codes
    return VQVAE(
        data.shape, num_codes=codes, code_dim=16, levels=data.levels, width=width,
        downsample=down, **quantizer,
    )  # fmt: skip


@_takes_data
def made(
    data: ImageData, orderings: int = 1, dropout: float = 0.0, profile: str | None = None
) -> nn.Module:
    """MADE (full profile: two hidden layers, as in Germain et al. on binarized MNIST)."""
    from selfsup.models.autoregressive import MADE

    hidden = _pick(profile, (512,), (2000, 2000))
    return MADE(data.shape, data.levels, hidden=hidden, orderings=orderings, dropout=dropout)


@_takes_data
def pixelcnn(data: ImageData, profile: str | None = None) -> nn.Module:
    """PixelCNN with masked convolutions."""
    from selfsup.models.autoregressive import PixelCNN

    channels, layers = _pick(profile, (64, 5), (128, 12))
    return PixelCNN(data.shape, data.levels, channels=channels, layers=layers)


@_takes_data
def pixel_transformer(data: ImageData, profile: str | None = None) -> nn.Module:
    """The small Image GPT: a causal transformer over the raster order."""
    from selfsup.models.autoregressive import PixelTransformer

    dim, heads, layers = _pick(profile, (48, 4, 2), (128, 8, 6))
    return PixelTransformer(data.shape, data.levels, dim=dim, heads=heads, layers=layers,
                            dropout=0.1)  # fmt: skip


@_takes_data
def flow(data: ImageData, profile: str | None = None) -> nn.Module:
    """RealNVP on dequantized pixels (checkerboard couplings)."""
    from selfsup.models.flows import realnvp

    layers, hidden = _pick(profile, (6, (256, 256)), (12, (1024, 1024)))
    return realnvp(data.shape, layers=layers, hidden=hidden, mask="checkerboard",
                   levels=data.levels)  # fmt: skip


@_takes_data
def gan(data: ImageData, loss: str = "wasserstein", gp_weight: float = 10.0,
        profile: str | None = None) -> nn.Module:  # fmt: skip
    """A GAN of the data set's images; the discriminator sees them in [0, 1] (full profile:
    wider MLPs, 64 latent dimensions)."""
    from selfsup.models.gan import GAN, Discriminator, Generator

    latent, g_hidden, d_hidden = _pick(
        profile, (16, (256, 256), (256, 128)), (64, (512, 1024), (1024, 512))
    )
    return GAN(
        Generator(latent, data.shape, g_hidden, image=True),
        Discriminator(data.shape, d_hidden),
        loss=loss,
        gp_weight=gp_weight,
        levels=data.levels,
    )


@_takes_data
def simclr(
    data: ImageData,
    temperature: float = 0.5,
    profile: str | None = None,
    augment: nn.Module | None = None,
) -> nn.Module:
    """SimCLR with the small convolutional encoder; ``augment`` makes the two views
    (default: ``Augment()``, small rotations, shifts, noise and cut-out)."""
    from selfsup.models.contrastive import ConvEncoder, SimCLR

    out_dim, width = _pick(profile, (128, 32), (256, 64))
    return SimCLR(
        ConvEncoder(out_dim, width), projection_dim=64, temperature=temperature, augment=augment,
        levels=data.levels,
    )  # fmt: skip


ALL: dict[str, Callable[..., nn.Module]] = {
    "autoencoder": lambda data, profile=None: autoencoder(data, 16, profile=profile),
    "vae": vae,
    "hvae": hvae,
    "vqvae": vqvae,
    "made": made,
    "pixelcnn": pixelcnn,
    "pixel_transformer": pixel_transformer,
    "flow": flow,
    "gan": gan,
    "simclr": simclr,
}
"""Every configuration, by name, for tests that build them all."""
