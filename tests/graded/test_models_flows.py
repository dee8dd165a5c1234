"""Graded: selfsup.models.flows.AffineCoupling.forward / inverse (chapter: flows)."""

import torch

from selfsup.models.flows import AffineCoupling


def _coupling(d=4, seed=0):
    torch.manual_seed(seed)
    layer = AffineCoupling(torch.arange(d) % 2, hidden=(16,)).double()
    for p in layer.parameters():  # leave the identity initialisation
        torch.nn.init.normal_(p, std=0.5)
    return layer


def test_log_det_matches_the_autograd_jacobian():
    layer = _coupling()
    x = torch.randn(5, 4, dtype=torch.float64)
    y, logdet = layer(x)
    for i in range(5):
        jac = torch.autograd.functional.jacobian(lambda v: layer(v[None])[0][0], x[i])
        assert torch.allclose(logdet[i], torch.linalg.slogdet(jac).logabsdet, atol=1e-10)
    assert torch.equal(y[:, 1::2], x[:, 1::2]), "the masked half (mask = 1) passes through"


def test_inverse_undoes_forward_and_negates_the_log_det():
    layer = _coupling(d=6, seed=1)
    x = torch.randn(64, 6, dtype=torch.float64)
    y, logdet = layer(x)
    x_back, logdet_inv = layer.inverse(y)
    torch.testing.assert_close(x_back, x, atol=1e-12, rtol=0)
    torch.testing.assert_close(logdet_inv, -logdet)
    assert not torch.allclose(y, x), "a coupling with random weights moves the points"
