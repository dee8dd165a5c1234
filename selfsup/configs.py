"""The main model of each image chapter, sized by the profile.

A chapter builds its main model here, ``model = configs.vae(images)``, so that one
definition serves the quick profile (8x8 digits on a laptop CPU), the full profile
(28x28 MNIST on a GPU) and the unit tests, which build every full-profile
configuration on random 28x28 tensors on the CPU (``tests/test_configs.py``).

Each function takes the :class:`selfsup.data.ImageData` of the profile (its
``shape`` and ``levels``) and returns an untrained model; ``profile`` overrides
:func:`selfsup.runtime.profile`. The sizes are named presets, one frozen dataclass
per model in :data:`PRESETS` (``configs.preset("vae")`` is the one in use, and
``configs.PRESETS["vae"]["full"]`` prints as ``VAESize(latent=32, hidden=(1024, 512))``).
Which profile's sizes apply is decided in one place, :func:`selfsup.runtime.sizes`: the
full profile's smoke check (``SELFSUP_SMOKE=1``) builds the quick sizes for its 28x28
images. The training lengths stay in the chapters, with ``runtime.budget``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from selfsup import _checks as checks
from selfsup import runtime
from selfsup.data import ImageData

Widths = tuple[int, ...]


@dataclass(frozen=True)
class AutoencoderSize:
    hidden: Widths


@dataclass(frozen=True)
class VAESize:
    latent: int
    hidden: Widths


@dataclass(frozen=True)
class HVAESize:
    latent: int
    top: int
    hidden: Widths
    top_hidden: Widths


@dataclass(frozen=True)
class VQVAESize:
    codes: int
    width: int
    downsample: int
    init: str = "random"  # the codebook's start (see VectorQuantizer)


@dataclass(frozen=True)
class MADESize:
    hidden: Widths


@dataclass(frozen=True)
class PixelCNNSize:
    channels: int
    layers: int


@dataclass(frozen=True)
class PixelTransformerSize:
    dim: int
    heads: int
    layers: int


@dataclass(frozen=True)
class DiffusionSize:
    hidden: Widths


@dataclass(frozen=True)
class FlowSize:
    layers: int
    hidden: Widths


@dataclass(frozen=True)
class GANSize:
    latent: int
    generator_hidden: Widths
    discriminator_hidden: Widths


@dataclass(frozen=True)
class SimCLRSize:
    out_dim: int
    width: int


PRESETS: dict[str, dict[str, object]] = {
    "autoencoder": {"quick": AutoencoderSize((256, 128)), "full": AutoencoderSize((1024, 512))},
    "vae": {"quick": VAESize(16, (256,)), "full": VAESize(32, (1024, 512))},
    "hvae": {
        "quick": HVAESize(8, 4, (256,), (128,)),
        "full": HVAESize(32, 16, (1024, 512), (256,)),
    },
    "vqvae": {"quick": VQVAESize(64, 32, 1), "full": VQVAESize(512, 128, 2, init="data")},
    # Full MADE: two hidden layers of 2000, as in Germain et al. on binarized MNIST.
    "made": {"quick": MADESize((512,)), "full": MADESize((2000, 2000))},
    "pixelcnn": {"quick": PixelCNNSize(64, 5), "full": PixelCNNSize(128, 12)},
    "pixel_transformer": {
        "quick": PixelTransformerSize(48, 4, 2),
        "full": PixelTransformerSize(128, 8, 6),
    },
    "flow": {"quick": FlowSize(6, (256, 256)), "full": FlowSize(12, (1024, 1024))},
    "diffusion": {"quick": DiffusionSize((512, 512)), "full": DiffusionSize((2048, 2048))},
    "gan": {
        "quick": GANSize(16, (256, 256), (256, 128)),
        "full": GANSize(64, (512, 1024), (1024, 512)),
    },
    "simclr": {"quick": SimCLRSize(128, 32), "full": SimCLRSize(256, 64)},
}
"""The model sizes of each configuration, by name and profile (frozen dataclasses)."""


def preset(name: str, profile: str | None = None):
    """The sizes of configuration ``name`` for ``profile`` (default: the sizes in use,
    :func:`selfsup.runtime.sizes`, which are the quick ones in the smoke check)."""
    if name not in PRESETS:
        raise ValueError(f"no preset named {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name][runtime.sizes(profile)]


def presets_table() -> list[dict[str, object]]:
    """Every preset as a row (name, profile, then its fields), for a table in the book."""
    return [
        {"model": name, "profile": profile, **dataclasses.asdict(size)}
        for name, by_profile in PRESETS.items()
        for profile, size in by_profile.items()
    ]


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

    size = preset("autoencoder", profile)
    return Autoencoder(data.shape, latent_dim, hidden=size.hidden, levels=data.levels)


@_takes_data
def vae(data: ImageData, latent_dim: int | None = None, profile: str | None = None) -> nn.Module:
    """A VAE with a categorical decoder (for binarized MNIST: a Bernoulli one)."""
    from selfsup.models.vae import VAE

    size = preset("vae", profile)
    latent = size.latent if latent_dim is None else latent_dim
    return VAE(data.shape, latent, likelihood="categorical", levels=data.levels,
               hidden=size.hidden)  # fmt: skip


@_takes_data
def hvae(data: ImageData, free_bits: float = 0.0, profile: str | None = None) -> nn.Module:
    """The two-level hierarchical VAE of the VQ-VAE chapter."""
    from selfsup.models.hvae import HierarchicalVAE

    size = preset("hvae", profile)
    return HierarchicalVAE(
        data.shape, size.latent, size.top, levels=data.levels, hidden=size.hidden,
        top_hidden=size.top_hidden, free_bits=free_bits,
    )  # fmt: skip


@_takes_data
def vqvae(
    data: ImageData, num_codes: int | None = None, profile: str | None = None, **quantizer
) -> nn.Module:
    """A VQ-VAE; the full profile downsamples 28x28 to a 7x7 grid of codes.

    ``num_codes`` overrides the profile's codebook size (64 quick, 512 full). The full
    profile's codebook starts at encoder outputs of the first batch (``init="data"``):
    started at random, its 512 codes collapsed to one on MNIST, with and without
    restarts. ``quantizer`` options (``init`` among them) override the profile's.
    """
    from selfsup.models.vqvae import VQVAE

    size = preset("vqvae", profile)
    codes = size.codes if num_codes is None else num_codes
    quantizer.setdefault("init", size.init)
    return VQVAE(
        data.shape, num_codes=codes, code_dim=16, levels=data.levels, width=size.width,
        downsample=size.downsample, **quantizer,
    )  # fmt: skip


@_takes_data
def made(
    data: ImageData, orderings: int = 1, dropout: float = 0.0, profile: str | None = None
) -> nn.Module:
    """MADE (full profile: two hidden layers of 2000, as in Germain et al.)."""
    from selfsup.models.autoregressive import MADE

    hidden = preset("made", profile).hidden
    return MADE(data.shape, data.levels, hidden=hidden, orderings=orderings, dropout=dropout)


@_takes_data
def pixelcnn(data: ImageData, profile: str | None = None) -> nn.Module:
    """PixelCNN with masked convolutions."""
    from selfsup.models.autoregressive import PixelCNN

    size = preset("pixelcnn", profile)
    return PixelCNN(data.shape, data.levels, channels=size.channels, layers=size.layers)


@_takes_data
def pixel_transformer(data: ImageData, profile: str | None = None) -> nn.Module:
    """The small Image GPT: a causal transformer over the raster order."""
    from selfsup.models.autoregressive import PixelTransformer

    size = preset("pixel_transformer", profile)
    return PixelTransformer(data.shape, data.levels, dim=size.dim, heads=size.heads,
                            layers=size.layers, dropout=0.1)  # fmt: skip


@_takes_data
def flow(data: ImageData, profile: str | None = None) -> nn.Module:
    """RealNVP on dequantized pixels (checkerboard couplings)."""
    from selfsup.models.flows import realnvp

    size = preset("flow", profile)
    return realnvp(data.shape, layers=size.layers, hidden=size.hidden, mask="checkerboard",
                   levels=data.levels)  # fmt: skip


@_takes_data
def diffusion(data: ImageData, weighting: str = "elbo", profile: str | None = None) -> nn.Module:
    """The diffusion model of the diffusion chapter: continuous time, cosine schedule, an
    MLP denoiser that predicts each pixel's grey level as a distribution (full profile:
    wider)."""
    from selfsup.models.diffusion import Diffusion

    size = preset("diffusion", profile)
    return Diffusion(data.shape, data.levels, hidden=size.hidden, weighting=weighting)


@_takes_data
def gan(data: ImageData, loss: str = "wasserstein", gp_weight: float = 10.0,
        profile: str | None = None) -> nn.Module:  # fmt: skip
    """A GAN of the data set's images; the discriminator sees them in [0, 1] (full profile:
    wider MLPs, 64 latent dimensions)."""
    from selfsup.models.gan import GAN, Discriminator, Generator

    size = preset("gan", profile)
    return GAN(
        Generator(size.latent, data.shape, size.generator_hidden, image=True),
        Discriminator(data.shape, size.discriminator_hidden),
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

    size = preset("simclr", profile)
    return SimCLR(
        ConvEncoder(size.out_dim, size.width), projection_dim=64, temperature=temperature,
        augment=augment, levels=data.levels,
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
    "diffusion": diffusion,
    "flow_matching": lambda data, profile=None: flow_matching(data, profile=profile),
    "gan": gan,
    "simclr": simclr,
}
"""Every configuration, by name, for tests that build them all."""


@dataclass(frozen=True)
class FlowMatchingSize:
    hidden: Widths


PRESETS["flow_matching"] = {
    "quick": FlowMatchingSize((256, 256)),
    "full": FlowMatchingSize((2048, 2048)),
}


@_takes_data
def flow_matching(data: ImageData, profile: str | None = None) -> nn.Module:
    """The flow matching model of the flow matching chapter: the linear path, a
    time-conditioned MLP velocity on the flattened, dequantized image."""
    from selfsup.models.flow_matching import FlowMatching

    size = preset("flow_matching", profile)
    return FlowMatching(data.shape, data.levels, hidden=size.hidden)
