"""selfsup.models.vqvae and hvae: brute force, straight-through gradient, EMA, an oracle."""

from __future__ import annotations

import math

import pytest
import torch

from selfsup.models.hvae import HierarchicalVAE
from selfsup.models.vqvae import VQVAE, VectorQuantizer


def test_indices_match_brute_force_argmin():
    torch.manual_seed(0)
    vq = VectorQuantizer(10, 3)
    z = torch.randn(4, 5, 3)
    out = vq(z)
    brute = torch.tensor(
        [
            [
                min(range(10), key=lambda k: float(((v - vq.codebook[k].detach()) ** 2).sum()))
                for v in row
            ]
            for row in z
        ]
    )
    assert torch.equal(out.indices, brute)
    assert torch.allclose(out.quantized, vq.codebook[brute])


def test_straight_through_gradient_equals_upstream_gradient():
    torch.manual_seed(1)
    vq = VectorQuantizer(6, 4)
    z = torch.randn(7, 4, requires_grad=True)
    upstream = torch.randn(7, 4)
    (vq(z).quantized * upstream).sum().backward()
    assert torch.allclose(z.grad, upstream)


def test_losses_match_their_formulas():
    torch.manual_seed(2)
    vq = VectorQuantizer(5, 2, beta=0.25)
    z = torch.randn(9, 2)
    out = vq(z)
    e = vq.codebook[out.indices]
    assert torch.allclose(out.codebook_loss, ((e - z) ** 2).mean())
    assert torch.allclose(out.commitment_loss, ((z - e) ** 2).mean())
    assert torch.allclose(out.loss, out.codebook_loss + 0.25 * out.commitment_loss)
    # gradients: the codebook loss moves codes, the commitment loss moves the encoder output
    z.requires_grad_(True)
    out = vq(z)
    gz, gc = torch.autograd.grad(out.codebook_loss, [z, vq.codebook], allow_unused=True)
    assert gz is None and gc.abs().sum() > 0
    p = torch.bincount(out.indices, minlength=5).float() / 9
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    assert torch.allclose(out.perplexity, entropy.exp(), atol=1e-4)


def test_ema_update_against_a_hand_computation():
    vq = VectorQuantizer(2, 1, ema=True, decay=0.5, eps=0.0)
    vq.codebook.copy_(torch.tensor([[0.0], [10.0]]))
    vq.ema_sum.copy_(vq.codebook)
    vq.ema_count.fill_(1.0)
    vq(torch.tensor([[1.0], [2.0], [9.0]]))  # training mode: first two -> code 0, last -> code 1
    count = torch.tensor([0.5 * 1 + 0.5 * 2, 0.5 * 1 + 0.5 * 1])
    total = torch.tensor([0.5 * 0 + 0.5 * 3, 0.5 * 10 + 0.5 * 9])
    assert torch.allclose(vq.ema_count, count)
    assert torch.allclose(vq.codebook.squeeze(1), total / count)


def test_data_start_takes_codes_from_the_first_training_batch(tmp_path):
    from selfsup import saving

    def rows(t):
        return {tuple(r.tolist()) for r in t}

    torch.manual_seed(4)
    first = torch.randn(20, 3) * 0.01 + 5.0  # far from the random start, at a small scale
    vq = VectorQuantizer(6, 3, init="data")
    assert len(torch.unique(vq.nearest(first))) == 1  # the random start: one code for all
    vq(first)
    assert len(rows(vq.codebook)) == 6 and rows(vq.codebook) <= rows(first)  # distinct rows
    assert len(torch.unique(vq.nearest(first))) == 6  # every code now has a vector
    # With EMA updates the running sums start at the codes (one count each), so the first
    # update leaves every code at the mean of its vectors and the start's row.
    ema = VectorQuantizer(6, 3, init="data", ema=True, decay=0.5, eps=0.0)
    ema(first)
    assert len(torch.unique(ema.nearest(first))) == 6
    assert torch.allclose(ema.ema_count.sum(), torch.tensor(0.5 * 6 + 0.5 * 20))
    # Later batches, evaluation, a saved and reloaded copy: no second start.
    after = vq.codebook.clone()
    vq(torch.randn(20, 3) - 5.0)
    assert torch.equal(vq.codebook, after)
    saving.save(vq, tmp_path / "vq.pt")
    back = saving.load(tmp_path / "vq.pt")
    back.train()
    back(torch.randn(20, 3) - 5.0)
    assert bool(back.initialized) and torch.equal(back.codebook, after)
    # Fewer vectors than codes: drawn with replacement, every code still a batch row.
    small = VectorQuantizer(8, 2, init="data")
    few = torch.randn(3, 2)
    small(few)
    assert rows(small.codebook) <= rows(few)
    with pytest.raises(ValueError, match="init"):
        VectorQuantizer(8, 2, init="kmeans")


def test_data_start_of_a_vqvae_uses_every_code_at_the_first_step():
    torch.manual_seed(5)
    x = torch.randint(0, 17, (64, 8, 8))
    counts = {}
    for init in ("random", "data"):
        torch.manual_seed(5)
        model = VQVAE((8, 8), num_codes=32, code_dim=4, width=8, init=init)
        model.train()
        model.loss(x)  # the first training step starts the codebook
        counts[init] = len(torch.unique(model.encode(x)))
    # 32 distinct encoder outputs of random images, each its own code; the random start
    # leaves most codes far from every output
    assert counts["data"] == 32 and counts["random"] < 8


def test_dead_codes_are_restarted():
    torch.manual_seed(3)
    vq = VectorQuantizer(8, 2, restart_dead=True, decay=0.5)
    vq.codebook.data[1:] += 100.0  # all but code 0 are far from the data
    for _ in range(20):
        vq(torch.randn(64, 2))
    assert vq.dead_codes() == 0 and (vq.codebook.abs() < 10).all()


def test_matches_vector_quantize_pytorch():
    vqp = pytest.importorskip("vector_quantize_pytorch")
    torch.manual_seed(4)
    ours = VectorQuantizer(16, 8, beta=0.25, ema=True, decay=0.99)
    theirs = vqp.VectorQuantize(
        dim=8,
        codebook_size=16,
        decay=0.99,
        commitment_weight=0.25,
        rotation_trick=False,
        kmeans_init=False,
    )
    theirs._codebook.embed.data.copy_(ours.codebook[None])
    theirs._codebook.initted.data.fill_(True)
    z = torch.randn(3, 10, 8)
    q_theirs, idx_theirs, loss_theirs = theirs(z)
    out = ours(z)
    assert torch.equal(out.indices, idx_theirs)
    assert torch.allclose(out.quantized, q_theirs, atol=1e-6)
    assert torch.allclose(out.loss, loss_theirs, atol=1e-6)


def test_vqvae_and_hvae_protocols():
    torch.manual_seed(5)
    x = torch.randint(0, 17, (4, 8, 8))
    vq = VQVAE((8, 8), num_codes=8, code_dim=4, width=8)
    assert vq.encode(x).shape == (4, 4, 4) and vq.decode(vq.encode(x)).shape == (4, 8, 8)
    loss = vq.loss(x)
    loss.backward()
    assert torch.isfinite(loss) and vq.encoder[0].weight.grad.abs().sum() > 0
    h = HierarchicalVAE((8, 8), 4, 2, levels=17, hidden=(16,), top_hidden=(8,))
    terms = h.elbo(x)
    assert torch.allclose(terms.elbo, terms.reconstruction - terms.kl1 - terms.kl2)
    assert (terms.kl2 >= 0).all()
    assert h.sample(3).shape == (3, 8, 8) and h.iwae_bound(x, k=4).shape == (4,)
    # free bits: a collapsed top layer is still charged free_bits nats
    h.free_bits = 3.0
    terms = h.elbo(x)
    expected = (
        -terms.reconstruction.mean() + terms.kl1.mean() + torch.clamp(terms.kl2.mean(), min=3.0)
    )
    torch.manual_seed(9)
    a = h.loss(x)
    torch.manual_seed(9)
    b = h.elbo(x)
    assert torch.allclose(
        a, -b.reconstruction.mean() + b.kl1.mean() + torch.clamp(b.kl2.mean(), min=3.0)
    )
    assert expected.ndim == 0


def test_bad_input():
    vq = VectorQuantizer(4, 3)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 3\)"):
        vq(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="NaN"):
        vq(torch.full((2, 3), float("nan")))
    with pytest.raises(ValueError, match="indices must be integers"):
        vq.lookup(torch.tensor([5]))
    with pytest.raises(ValueError, match="integers in 0..16"):
        VQVAE((8, 8)).loss(torch.rand(2, 8, 8))
    with pytest.raises(ValueError, match="divisible"):
        VQVAE((6, 6), downsample=2)
    with pytest.raises(ValueError, match="num_codes must be an int >= 2"):
        VectorQuantizer(1, 3)


def _linear_gaussian_hvae():
    """q(z1|x) = N(0, 1), q(z2|z1) = N(z1, 0.25), p(z1|z2) = N(0.8 z2, 0.5) per dimension:
    the coupled example on which the analytic KL(q(z1|x) || p(z1|z2)) at a sampled z2 is
    off by 1.6 nats per dimension."""
    h = HierarchicalVAE((8, 8), 2, 2, levels=17, hidden=(16,), top_hidden=())
    with torch.no_grad():
        last = h.encoder[-1]
        last.weight.zero_()
        last.bias.zero_()  # mu1 = 0, logvar1 = 0
        h.encoder2[0].weight.copy_(torch.cat([torch.eye(2), torch.zeros(2, 2)]))
        h.encoder2[0].bias.copy_(torch.tensor([0.0, 0.0, math.log(0.25), math.log(0.25)]))
        h.prior1[0].weight.copy_(torch.cat([0.8 * torch.eye(2), torch.zeros(2, 2)]))
        h.prior1[0].bias.copy_(torch.tensor([0.0, 0.0, math.log(0.5), math.log(0.5)]))
    return h


def test_hierarchical_elbo_is_the_k1_iwae_bound_in_expectation():
    """Both are unbiased estimates of the same ELBO: the joint log-ratio
    log p(x, z1, z2) - log q(z1, z2 | x) at one sample (IWAE, k = 1) and elbo(). The
    exact z1 term here: E[log q(z1|x) - log p(z1|z2)] = -H(N(0,1)) + 0.5 log(2 pi 0.5)
    + E[(z1 - 0.8 z2)^2] / (2 * 0.5), with z1 - 0.8 z2 = 0.2 z1 - 0.8 * 0.5 eps."""
    h = _linear_gaussian_hvae()
    x = torch.randint(0, 17, (4, 8, 8), generator=torch.Generator().manual_seed(0))
    n = 20_000
    with torch.no_grad():
        g = torch.Generator().manual_seed(1)
        xs = x.repeat(n // len(x), 1, 1)
        terms = h.elbo(xs, generator=g)
        iwae = h.iwae_bound(xs, k=1, generator=g)
    se = ((terms.elbo.var() + iwae.var()) / len(xs)).sqrt()
    assert abs(terms.elbo.mean() - iwae.mean()) < 4 * se
    second_moment = 0.2**2 * 1 + 0.4**2 * 1  # E (z1 - 0.8 z2)^2
    exact_kl1 = 2 * (-0.5 * (1 + math.log(2 * math.pi)) + 0.5 * math.log(math.pi) + second_moment)
    assert abs(terms.kl1.mean() - exact_kl1) < 4 * terms.kl1.std() / len(xs) ** 0.5
