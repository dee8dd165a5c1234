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
from . import data, runtime, tensors
from .saving import Saveable
from .train import fit

__all__ = ["DigitClassifier", "DigitFeatures", "FeatureModule", "load_classifier"]

LABEL = "features of selfsup's digit classifier (not comparable with Inception scores)"
VERSION = 2


class DigitClassifier(Saveable, nn.Module):
    """Two conv layers, pooling to 4x4, a 128-unit feature layer and 10 logits.

    Inputs: images ``(B, H, W)`` or ``(B, 1, H, W)`` of any size from 8x8 up (adaptive
    pooling), so the same network serves digits and MNIST. Built with ``levels`` (as
    :func:`load_classifier` builds it) it takes the data set's integer grey levels
    ``0..levels-1``, like every model of the library, and scales them to ``[0, 1]``
    itself; built without, it takes floats in ``[0, 1]``. Samples of continuous models
    (fractional grey levels, a little outside the range) are scored through
    :class:`DigitFeatures`, which clips them to the grey scale.
    """

    num_features = 128
    batch_parts = 2  # loss takes (images, labels)

    def __init__(self, num_classes: int = 10, levels: int | None = None):
        super().__init__()
        num_classes = checks.integer(num_classes, "num_classes", low=2)
        self.levels = None if levels is None else checks.integer(levels, "levels", low=2)
        #: The largest grey level of the data set it was trained on (the network sees the
        #: images divided by it): ``levels - 1``, None when unknown.
        self.vmax: float | None = None if self.levels is None else float(self.levels - 1)
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),
            nn.Linear(64 * 16, self.num_features), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(self.num_features, num_classes)

    def _images(self, x, levels: int | None) -> torch.Tensor:
        """``(B, 1, H, W)`` floats in ``[0, 1]``, in the model's dtype and on its device:
        grey levels with ``levels``, else floats in ``[0, 1]``."""
        try:
            x = checks.unit_images(x, "x", None, levels, ndim=(3, 4), min_len=0, like=self)
        except ValueError as error:
            if levels is None:
                raise
            raise type(error)(
                f"{error}. This classifier takes the integer images of its data set "
                f"(0..{levels - 1}); score samples of a continuous model, or images on "
                "another scale, with features.DigitFeatures(classifier, reference, vmax=...), "
                "which clips them to the grey scale"
            ) from None
        if x.ndim == 4 and x.shape[1] != 1:
            raise ValueError(f"x must be images (B, H, W) or (B, 1, H, W), got {tuple(x.shape)}")
        return x.unsqueeze(1) if x.ndim == 3 else x

    def _saved_extra(self) -> dict:
        return {"vmax": self.vmax}

    def _load_extra(self, extra: dict) -> None:
        if self.levels is None:  # files written before the classifier knew its levels
            self.vmax = extra.get("vmax")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features ``(B, 128)`` of images (grey levels with ``levels``,
        else floats in ``[0, 1]``)."""
        return self.body(self._images(x, self.levels))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @torch.no_grad()
    def probs(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(B, 10)``."""
        with tensors.eval_mode(self):
            return torch.softmax(self.logits(x), -1)

    def _unit_features(self, u: torch.Tensor) -> torch.Tensor:
        """Features of images already scaled to ``[0, 1]`` (what :class:`DigitFeatures`
        passes, having clipped samples to the grey scale), whatever ``levels`` is."""
        return self.body(self._images(u, None))

    @torch.no_grad()
    def _unit_probs(self, u: torch.Tensor) -> torch.Tensor:
        with tensors.eval_mode(self):
            return torch.softmax(self.head(self._unit_features(u)), -1)

    def loss(self, batch) -> torch.Tensor:
        """Cross-entropy of a batch ``(images, integer labels)``, the images as
        :meth:`features` takes them."""
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
    ``feature=`` argument expects from a custom extractor. It takes images as the
    classifier does: the data set's integer grey levels for one from
    :func:`load_classifier`. Samples of continuous models (fractional grey levels) are
    scored with :class:`DigitFeatures` and :mod:`selfsup.metrics`, which clip them."""

    def __init__(self, classifier: DigitClassifier, output: str = "features"):
        super().__init__()
        checks.choice(output, "output", ("features", "logits"))
        self.classifier, self.output = classifier, output
        self.num_features = classifier.num_features if output == "features" else 10

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fn = self.classifier.features if self.output == "features" else self.classifier.logits
        with tensors.eval_mode(self.classifier):
            return fn(x)


_LOADED: dict[str, tuple[DigitClassifier, float]] = {}


def _dataset(name: str, split: str):
    """The data set's integer images and labels."""
    return data.digits(split) if name == "digits" else data.mnist(split)


def load_classifier(
    dataset: str = "digits", epochs: int = 30, seed: int = 0, cache: bool = True
) -> tuple[DigitClassifier, float]:
    """The trained stand-in classifier and its test accuracy.

    Trained once per process; with ``cache`` the weights are also stored under
    :func:`selfsup.data.cache_dir` and reused by later processes. It is returned on
    :func:`selfsup.runtime.device`, trained or loaded, and takes images on any device.

    Args:
        dataset: ``"digits"`` (8x8, grey levels 0..16) or ``"mnist"`` (0..255); the
            classifier takes that data set's integer images and scales them itself.
    """
    checks.choice(dataset, "dataset", tuple(data.LEVELS))
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
        model = DigitClassifier(levels=data.LEVELS[dataset])  # takes the grey levels
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
                    "built with levels (as features.load_classifier builds it); pass "
                    "vmax=levels - 1 (16 for the 8x8 digits, 255 for MNIST)"
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
        return self.classifier._unit_features(self._unit(images))

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Rescaled features ``(B, 128)``."""
        return self._raw(images) / self.scale

    def probs(self, images: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(B, 10)``."""
        return self.classifier._unit_probs(self._unit(images))
