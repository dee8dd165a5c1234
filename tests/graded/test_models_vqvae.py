"""Graded: selfsup.models.vqvae.VectorQuantizer.nearest (chapter: vqvae)."""

import torch

from selfsup.models.vqvae import VectorQuantizer


def test_nearest_matches_cdist_argmin():
    torch.manual_seed(0)
    vq = VectorQuantizer(37, 6)
    x = torch.randn(500, 6) * 2
    want = torch.cdist(x.double(), vq.codebook.detach().double()).argmin(1)
    assert torch.equal(vq.nearest(x), want)


def test_codes_map_to_themselves_and_forward_uses_nearest():
    torch.manual_seed(1)
    vq = VectorQuantizer(16, 3, ema=True).eval()
    codes = vq.codebook.clone()
    assert torch.equal(vq.nearest(codes + 1e-4), torch.arange(16))
    z = torch.randn(2, 5, 3)
    out = vq(z)
    assert torch.equal(out.indices, vq.nearest(z.reshape(-1, 3)).reshape(2, 5))
    torch.testing.assert_close(out.quantized, codes[out.indices])
