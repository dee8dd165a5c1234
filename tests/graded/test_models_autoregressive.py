"""Graded: selfsup.models.autoregressive.made_masks (chapter: autoregressive)."""

import pytest
import torch

from selfsup.models.autoregressive import MADE, made_masks


def _connectivity(masks):
    """(d*levels out, d*levels in): > 0 iff some path of unmasked weights links them."""
    path = masks[0]
    for m in masks[1:]:
        path = m @ path
    return path > 0


@pytest.mark.parametrize("hidden", [(), (40,), (40, 30)])
def test_masks_give_exactly_the_autoregressive_connectivity(hidden):
    torch.manual_seed(0)
    d, levels = 5, 3
    rank = torch.randperm(d)
    # Hidden degrees covering 0..d-2 so that every allowed path exists.
    degrees = [torch.arange(h) % (d - 1) for h in hidden]
    masks = made_masks(rank, degrees, levels)
    sizes = [d * levels, *hidden, d * levels]
    assert [tuple(m.shape) for m in masks] == list(zip(sizes[1:], sizes[:-1], strict=True))
    assert all(((m == 0) | (m == 1)).all() for m in masks)
    unit_rank = rank.repeat_interleave(levels)
    allowed = unit_rank[:, None] > unit_rank[None, :]  # output of step k sees steps < k
    assert torch.equal(_connectivity(masks), allowed)


def test_made_logits_depend_only_on_earlier_positions():
    """Autograd: the Jacobian of position p's logits w.r.t. the one-hot input of q is
    zero unless q is generated before p (several orderings)."""
    d, levels = 6, 4
    made = MADE((d,), levels, hidden=(64, 64), orderings=3, seed=1)
    for k in range(3):
        made._use(k)
        rank = torch.empty(d, dtype=torch.long)
        rank[made.order] = torch.arange(d)
        x = torch.randint(0, levels, (1, d))
        onehot = torch.nn.functional.one_hot(x, levels).float().requires_grad_(True)

        def logits(h, layers=made.layers):
            h = h.reshape(1, -1)
            for i, layer in enumerate(layers):
                h = layer(h)
                if i < len(layers) - 1:
                    h = torch.relu(h)
            return h.reshape(d, levels)

        jac = torch.autograd.functional.jacobian(logits, onehot)  # (d, L, 1, d, L)
        depends = jac.abs().sum(dim=(1, 2, 4)) > 0  # (p, q)
        later_or_self = rank[None, :] >= rank[:, None]
        assert not depends[later_or_self].any()
        assert depends[rank[:, None] == rank[None, :] + 1].all()  # the step just before
