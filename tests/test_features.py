"""selfsup.features: the stand-in classifier trains, caches and serves torchmetrics."""

from __future__ import annotations

import pytest
import torch

from selfsup import data, features


def test_classifier_is_accurate_cached_and_reloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFSUP_DATA", str(tmp_path))
    monkeypatch.setattr(features, "_LOADED", {})
    model, accuracy = features.load_classifier(epochs=15)
    assert accuracy > 0.95
    assert list(tmp_path.glob("classifier-digits-*.pt"))
    monkeypatch.setattr(features, "_LOADED", {})
    reloaded, again = features.load_classifier(epochs=15)
    assert again == accuracy
    x, _ = data.digits("test")
    assert torch.allclose(model.probs(x[:20] / 16), reloaded.probs(x[:20] / 16))
    feats = features.FeatureModule(model)(x[:5] / 16)
    assert feats.shape == (5, 128) and features.FeatureModule(model, "logits").num_features == 10


def test_bad_input():
    with pytest.raises(ValueError, match="dataset must be"):
        features.load_classifier("cifar")
    with pytest.raises(ValueError, match="images"):
        features.DigitClassifier().features(torch.zeros(4))


def test_digit_features_are_rescaled_to_unit_rms(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFSUP_DATA", str(tmp_path))
    model, _ = features.load_classifier(epochs=2)
    x, _ = data.digits("train")
    space = features.DigitFeatures(model, x)
    f = space(x)
    assert f.shape == (len(x), 128) and float(f.pow(2).mean().sqrt()) == pytest.approx(
        1.0, rel=1e-4
    )
    assert torch.allclose(space.probs(x[:5]), model.probs(x[:5].float() / 16))


def test_digit_features_know_the_grey_scale_of_their_classifier(tmp_path, monkeypatch):
    """The features divide by the largest grey level of the classifier's own data (16 on
    the digits), saved with it; a bare classifier has no scale, and an explicit vmax is
    needed."""
    import selfsup

    monkeypatch.setenv("SELFSUP_DATA", str(tmp_path))
    model, _ = features.load_classifier(epochs=1)
    assert model.vmax == data.DIGITS_LEVELS - 1
    x, _ = data.digits("test")
    assert features.DigitFeatures(model, x).vmax == 16
    selfsup.save(model, tmp_path / "classifier.pt")
    assert selfsup.load(tmp_path / "classifier.pt").vmax == 16
    with pytest.raises(ValueError, match="pass vmax=levels - 1"):
        features.DigitFeatures(features.DigitClassifier(), x)
    assert features.DigitFeatures(features.DigitClassifier(), x, vmax=255).vmax == 255
