"""selfsup.models.autoregressive: the autoregressive property, normalisation, completion."""

from __future__ import annotations

import itertools

import pytest
import torch

from selfsup.models.autoregressive import MADE, PixelCNN, PixelTransformer


def _models(shape=(3, 4), levels=5):
    torch.manual_seed(0)
    return {
        "made": MADE(shape, levels, hidden=(32, 32)),
        "made-orderings": MADE(shape, levels, hidden=(32,), orderings=3, seed=1),
        "pixelcnn": PixelCNN(shape, levels, channels=8, layers=3),
        "transformer": PixelTransformer(shape, levels, dim=16, heads=2, layers=2),
    }


@pytest.mark.parametrize("name", list(_models()))
def test_autoregressive_property(name):
    model = _models()[name].eval()
    orderings = range(model.orderings) if isinstance(model, MADE) else [None]
    g = torch.Generator().manual_seed(2)
    for k in orderings:
        if k is not None:
            model._use(k)
        order = model.order.tolist()
        x = torch.randint(0, 5, (4, 12), generator=g)
        base = model.logits(x)
        for j in range(12):
            y = x.clone()
            y[:, j] = (y[:, j] + 1 + torch.randint(0, 4, (4,), generator=g)) % 5
            changed = (model.logits(y) - base).abs().amax(dim=(0, 2)) > 1e-6
            rank_j = order.index(j)
            for pos in order[: rank_j + 1]:  # positions at or before j in the ordering
                assert not changed[pos], (name, k, j, pos)


@pytest.mark.parametrize("name", list(_models()))
def test_log_prob_sums_to_one(name):
    model = _models(shape=(1, 3), levels=3)[name].eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    xs = torch.tensor(list(itertools.product(range(3), repeat=3))).reshape(27, 1, 3)
    with torch.no_grad():
        total = model.log_prob(xs).double().exp().sum()
    assert float(total) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("name", list(_models()))
def test_complete_keeps_known_positions_and_samples_valid_values(name):
    model = _models()[name]
    x = torch.randint(0, 5, (6, 3, 4))
    known = torch.zeros(3, 4, dtype=torch.bool)
    known[0] = True
    known[2, 1] = True
    out = model.inpaint(x, known, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[:, known], x[:, known])
    assert out.shape == x.shape and int(out.min()) >= 0 and int(out.max()) <= 4
    samples = model.sample(3, generator=torch.Generator().manual_seed(1))
    assert samples.shape == (3, 3, 4)


def test_conditional_log_prob_is_the_chain_rule_suffix():
    model = _models()["pixelcnn"].eval()
    x = torch.randint(0, 5, (5, 3, 4))
    known = torch.zeros(3, 4, dtype=torch.bool)
    assert torch.allclose(model.conditional_log_prob(x, known), model.log_prob(x))
    known[:] = True
    assert torch.allclose(model.conditional_log_prob(x, known), torch.zeros(5))


def test_bad_input():
    model = _models()["transformer"]
    with pytest.raises(ValueError, match="integers"):
        model.log_prob(torch.rand(2, 3, 4))
    with pytest.raises(ValueError, match="integers in 0..4"):
        model.log_prob(torch.full((2, 3, 4), 5))
    with pytest.raises(ValueError, match=r"shape \(B, 3, 4\)"):
        model.log_prob(torch.zeros(2, 12, dtype=torch.long))
    with pytest.raises(ValueError, match="known_mask must have shape"):
        model.complete(torch.zeros(2, 3, 4, dtype=torch.long), torch.zeros(4, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="PixelCNN needs an image shape"):
        PixelCNN((5,), 3)
    with pytest.raises(ValueError, match="levels must be an int >= 2"):
        MADE((4,), 1)
