"""Graded: selfsup.models.baselines.Memorizer (chapter: likelihood)."""

import math
from collections import Counter

import numpy as np
import pytest
import torch

from selfsup.models.baselines import Memorizer


def test_memorizer_log_prob_is_the_empirical_frequency():
    rng = np.random.default_rng(0)
    train = torch.as_tensor(rng.integers(0, 3, size=(200, 2, 2)))
    counts = Counter(tuple(row) for row in train.reshape(200, -1).tolist())
    model = Memorizer().fit(train)
    test = torch.as_tensor(rng.integers(0, 4, size=(100, 2, 2)))
    got = model.log_prob(test)
    assert got.shape == (100,)
    for row, lp in zip(test.reshape(100, -1).tolist(), got.tolist(), strict=True):
        c = counts.get(tuple(row), 0)
        assert lp == (pytest.approx(math.log(c / 200)) if c else -math.inf)


def test_memorizer_train_likelihood_and_samples():
    """On n distinct examples the train NLL is log n; samples are training examples."""
    train = torch.arange(64).reshape(16, 4)
    model = Memorizer().fit(train)
    assert model.log_prob(train).tolist() == pytest.approx([-math.log(16)] * 16)
    samples = model.sample(50, generator=torch.Generator().manual_seed(3))
    assert samples.shape == (50, 4)
    assert (model.log_prob(samples) > -math.inf).all()
