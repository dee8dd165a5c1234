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
    assert torch.equal(model.probs(x[:20]), reloaded.probs(x[:20]))
    feats = features.FeatureModule(model)(x[:5])
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
    assert torch.equal(space.probs(x[:5]), model.probs(x[:5]))


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


def test_the_classifier_takes_the_grey_levels_and_scales_them_itself(tmp_path, monkeypatch):
    """Built with levels, the classifier takes integer images (any dtype that holds them,
    a channel axis too) and answers exactly what the same network answers to the images
    divided by levels - 1; fractional grey levels are refused, naming x; without levels
    it still takes floats in [0, 1]. Saving keeps the levels."""
    import selfsup

    monkeypatch.setenv("SELFSUP_DATA", str(tmp_path))
    model, _ = features.load_classifier(epochs=1)
    assert model.levels == data.DIGITS_LEVELS and model.vmax == data.DIGITS_LEVELS - 1
    x, _ = data.digits("test")
    x = x[:16]
    unit = features.DigitClassifier()
    unit.load_state_dict(model.state_dict())
    expected = unit.probs(x.float() / 16)
    assert torch.equal(model.probs(x), expected)
    assert torch.equal(model.probs(x.float()[:, None]), expected)
    assert torch.equal(model.probs(x.numpy()), expected)
    with pytest.raises(ValueError, match=r"x must be .*whole numbers.*DigitFeatures"):
        model.probs(x.float() / 16)  # fractional: not grey levels
    with pytest.raises(ValueError, match=r"got values in 17\.\..*DigitFeatures"):
        model.probs(x + 17)  # beyond the largest grey level
    double = features.DigitClassifier(levels=17).double()
    assert double.probs(x).dtype == torch.float64  # floats take the model's dtype
    selfsup.save(model, tmp_path / "clf.pt")
    again = selfsup.load(tmp_path / "clf.pt")
    assert again.levels == model.levels and torch.equal(again.probs(x), expected)


def test_a_classifier_saved_before_it_knew_its_levels_still_loads(tmp_path):
    """Files written when the classifier took [0, 1] floats and stored its grey scale
    as vmax: it loads with no levels, keeps its vmax, and DigitFeatures reads it."""
    import selfsup

    old = features.DigitClassifier()
    old.vmax = 16.0
    selfsup.save(old, tmp_path / "old.pt")
    loaded = selfsup.load(tmp_path / "old.pt")
    assert loaded.levels is None and loaded.vmax == 16.0
    x, _ = data.digits("test")
    assert torch.equal(features.DigitFeatures(loaded, x[:8]).probs(x[:8]), old.probs(x[:8] / 16))
