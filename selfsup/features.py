"""The small classifier that stands in for Inception v3.

Sample metrics (IS, FID, KID, precision/recall) need a feature extractor trained on
labelled images. Inception v3 weights cannot be downloaded here, and they were
trained on ImageNet photographs anyway, so selfsup trains its own small
convolutional classifier on the 8x8 digits (or on MNIST in the full profile).

**Scores computed with it are not comparable with Inception-based scores in
papers.** They compare models with each other, on these data, with this network.

The classifier is trained once per process and cached on disk (in
:func:`selfsup.data.cache_dir`), so chapters that use it share one copy.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch
from torch import nn

from . import _checks as checks
from . import data, runtime
from .saving import Saveable
from .train import fit

__all__ = ["DigitClassifier", "DigitFeatures", "FeatureModule", "load_classifier"]

LABEL = "features of selfsup's digit classifier (not comparable with Inception scores)"
VERSION = 2


class DigitClassifier(Saveable, nn.Module):
    """Two conv layers, pooling to 4x4, a 128-unit feature layer and 10 logits.

    Inputs: images ``(B, H, W)`` or ``(B, 1, H, W)`` with values in ``[0, 1]``; any
    size from 8x8 up (adaptive pooling), so the same network serves digits and MNIST.
    """

    num_features = 128
    batch_parts = 2  # loss takes (images, labels)

    def __init__(self, num_classes: int = 10):
        super().__init__()
        num_classes = checks.integer(num_classes, "num_classes", low=2)
        #: The largest grey level of the data set it was trained on (its inputs are the
        #: images divided by it); set by :func:`load_classifier`, None when unknown.
        self.vmax: float | None = None
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),
            nn.Linear(64 * 16, self.num_features), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(self.num_features, num_classes)

    def _images(self, x: torch.Tensor) -> torch.Tensor:
        device = self.head.weight.device
        x = checks.images(x, "x", None, "unit", ndim=(3, 4), min_len=0, device=device)
        if x.ndim == 4 and x.shape[1] != 1:
            raise ValueError(f"x must be images (B, H, W) or (B, 1, H, W), got {tuple(x.shape)}")
        return x.unsqueeze(1) if x.ndim == 3 else x

    def _saved_extra(self) -> dict:
        return {"vmax": self.vmax}

    def _load_extra(self, extra: dict) -> None:
        self.vmax = extra.get("vmax")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features ``(B, 128)``."""
        return self.body(self._images(x))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @torch.no_grad()
    def probs(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(B, 10)``."""
        with runtime.eval_mode(self):
            return torch.softmax(self.logits(x), -1)

    def loss(self, batch) -> torch.Tensor:
        """Cross-entropy of a batch ``(images in [0, 1], integer labels)``."""
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
            raise checks.InputTypeError(
                f"batch must be a pair (images, labels), got {checks.describe(batch)}"
            )
        x, y = batch
        logits = self.logits(x)
        y = checks.tensor(y, "labels", ndim=1, dtype="int", device=logits.device)
        return nn.functional.cross_entropy(logits, y)


class FeatureModule(nn.Module):
    """``forward`` = features or logits, with ``num_features``: what torchmetrics'
    ``feature=`` argument expects from a custom extractor."""

    def __init__(self, classifier: DigitClassifier, output: str = "features"):
        super().__init__()
        checks.choice(output, "output", ("features", "logits"))
        self.classifier, self.output = classifier, output
        self.num_features = classifier.num_features if output == "features" else 10

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fn = self.classifier.features if self.output == "features" else self.classifier.logits
        with runtime.eval_mode(self.classifier):
            return fn(x)


_LOADED: dict[str, tuple[DigitClassifier, float]] = {}
# Each data set's largest grey level: the classifier sees its images divided by it.
_SCALE = {"digits": float(data.DIGITS_LEVELS - 1), "mnist": float(data.MNIST_LEVELS - 1)}


def _dataset(name: str, split: str):
    x, y = data.digits(split) if name == "digits" else data.mnist(split)
    return x.float() / _SCALE[name], y


def load_classifier(
    dataset: str = "digits", epochs: int = 30, seed: int = 0, cache: bool = True
) -> tuple[DigitClassifier, float]:
    """The trained stand-in classifier and its test accuracy.

    Trained once per process; with ``cache`` the weights are also stored under
    :func:`selfsup.data.cache_dir` and reused by later processes. It is returned on
    :func:`selfsup.runtime.device`, trained or loaded, and takes images on any device.

    Args:
        dataset: ``"digits"`` (8x8, inputs are pixels / 16) or ``"mnist"`` (pixels / 255).
    """
    checks.choice(dataset, "dataset", tuple(_SCALE))
    epochs = checks.integer(epochs, "epochs")
    seed = checks.integer(seed, "seed", low=0)
    # The smoke check trains it briefly (selfsup.runtime.smoke_cap): never reuse that one.
    smoke = runtime.smoke_cap(epochs, runtime.SMOKE_EPOCHS) < epochs
    x, y = _dataset(dataset, "train")
    # The key names the data it was trained on: the data set, and how many examples (the
    # 10,000 offline MNIST digits and the 60,000 canonical ones give different classifiers).
    key = f"{dataset}-n{len(x)}-e{epochs}-s{seed}-v{VERSION}{'-smoke' if smoke else ''}"
    if key in _LOADED:
        return _LOADED[key]
    path = Path(data.cache_dir()) / f"classifier-{key}.pt"
    # Its own random stream: building and training it (or finding it cached) leaves the
    # caller's generators where they were, so a chapter's draws do not depend on it.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DigitClassifier()
        if cache and path.exists():
            state = torch.load(path, weights_only=True, map_location="cpu")
            model.load_state_dict(state["weights"])
            accuracy = float(state["accuracy"])
        else:
            fit(model, (x, y), epochs=epochs, lr=2e-3, batch_size=64, seed=seed)
            xt, yt = _dataset(dataset, "test")
            accuracy = float((model.probs(xt).argmax(1).cpu() == yt).float().mean())
            if cache:
                path.parent.mkdir(parents=True, exist_ok=True)
                buffer = io.BytesIO()
                torch.save({"weights": model.state_dict(), "accuracy": accuracy}, buffer)
                data.write_atomic(path, buffer.getvalue())
    model.vmax = _SCALE[dataset]
    model.to(runtime.device()).eval()  # where the chapter's models are, cached or not
    _LOADED[key] = (model, accuracy)
    return model, accuracy


class DigitFeatures:
    """The stand-in features of images on a ``0..vmax`` grey scale, rescaled so that
    their root-mean-square is 1 on ``reference`` images. ``vmax`` defaults to the
    largest grey level of the data the classifier was trained on (16 for the 8x8
    digits, 255 for MNIST).

    The rescaling keeps KID's polynomial kernel ``(x.y / f + 1)^3`` on numbers of order
    one; FID scales by a constant factor, so rankings do not change. One object per
    chapter gives every score the same features.
    """

    def __init__(
        self, classifier: DigitClassifier, reference: torch.Tensor, vmax: float | None = None
    ):
        self.classifier = classifier
        if vmax is None:
            vmax = getattr(classifier, "vmax", None)
            if vmax is None:
                raise ValueError(
                    "vmax=None: the grey scale of the images is known only for a classifier "
                    "from features.load_classifier; pass vmax=levels - 1 (16 for the 8x8 "
                    "digits, 255 for MNIST)"
                )
        self.vmax = checks.number(vmax, "vmax", low=0, low_open=True)
        with torch.no_grad():
            self.scale = float(self._raw(reference).pow(2).mean().sqrt())

    def _unit(self, images) -> torch.Tensor:
        """Images on the ``0..vmax`` scale to ``[0, 1]``; samples of continuous models
        that stray outside the scale are clipped to it."""
        x = checks.tensor(images, "images", ndim=(3, 4), dtype="float")
        return x.clamp(0, self.vmax) / self.vmax

    def _raw(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(self._unit(images))

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Rescaled features ``(B, 128)``."""
        return self._raw(images) / self.scale

    def probs(self, images: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(B, 10)``."""
        return self.classifier.probs(self._unit(images))
