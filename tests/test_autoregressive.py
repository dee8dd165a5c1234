"""selfsup.models.autoregressive: the autoregressive property, normalisation, completion."""

from __future__ import annotations

import itertools
from unittest import mock

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


def _assert_draws_like_the_generic_sampler(model, known) -> torch.Tensor:
    """``model``'s own sampler and the generic one (the whole network over all positions,
    for each position) draw the same values from the same random numbers, with and
    without known positions; the model's mode is restored. Returns the inputs used."""
    from selfsup.models.autoregressive import AutoregressiveModel

    x = torch.randint(0, 5, (64, *known.shape))
    for mask in (known, torch.zeros_like(known)):
        for seed in (1, 2, 3):  # a model with several orderings draws one per call
            own = model.inpaint(x, mask, generator=torch.Generator().manual_seed(seed))
            with mock.patch.object(type(model), "_fill", AutoregressiveModel._fill):
                generic = model.inpaint(x, mask, generator=torch.Generator().manual_seed(seed))
            assert torch.equal(own, generic)
            assert torch.equal(own[:, mask], x[:, mask])
    assert model.training  # restored after sampling
    return x


def test_the_transformers_cached_sampler_draws_what_the_full_passes_draw():
    """The key/value cache changes how the logits are computed, not the draws: against
    the generic sampler (the whole network over all positions, for each position) on
    the same random numbers, in float64 so that no near-tie can flip a draw."""
    torch.manual_seed(0)
    model = PixelTransformer((3, 4), 5, dim=16, heads=2, layers=2, dropout=0.1).double()
    known = torch.zeros(3, 4, dtype=torch.bool)
    known[0] = True
    known[1, 2] = True  # a known position after unknown ones: the same (ignored) rule
    x = _assert_draws_like_the_generic_sampler(model, known)
    # The cached step's logits are the full pass's.
    model.eval()
    with torch.no_grad():
        flat = x.reshape(64, -1)
        logits = model.logits(flat)
        b = 64
        caches = [tuple(torch.empty(b, 2, 12, 8, dtype=torch.float64) for _ in range(2))
                  for _ in model.blocks]  # fmt: skip
        token = torch.full((b,), 5)
        for pos in range(12):
            h = (model.token(token) + model.position[pos])[:, None]
            for block, cache in zip(model.blocks, caches, strict=True):
                h = block.step(h, cache, pos)
            torch.testing.assert_close(model.head(model.norm(h[:, 0])), logits[:, pos])
            token = flat[:, pos]


@pytest.mark.parametrize("orderings, hidden", [(1, (32, 32)), (3, (32, 32)), (3, (16,)), (2, ())])
def test_mades_sampler_draws_what_the_full_passes_draw(orderings, hidden):
    """MADE's sampler computes only the drawn position's logits and updates the first
    layer's sum one column per draw; on the same random numbers it draws what the
    generic sampler (the whole network, every position's logits, for each position)
    draws, in float64 so that no near-tie can flip a draw. With no hidden layer the
    updated sum is the logits themselves."""
    torch.manual_seed(0)
    model = MADE((3, 4), 5, hidden=hidden, orderings=orderings, dropout=0.1, seed=1).double()
    known = torch.zeros(3, 4, dtype=torch.bool)
    known[0] = True
    known[1, 2] = True  # a known position after unknown ones in raster order
    _assert_draws_like_the_generic_sampler(model, known)


def test_a_transformer_saved_with_its_old_mask_buffer_loads():
    model = PixelTransformer((2, 2), 3, dim=8, heads=2, layers=1)
    state = model.state_dict()
    state["causal"] = torch.triu(torch.ones(4, 4, dtype=torch.bool), diagonal=1)
    PixelTransformer((2, 2), 3, dim=8, heads=2, layers=1).load_state_dict(state)
