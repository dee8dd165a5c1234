"""selfsup.models.autoencoder and selfsup.models.vae against independent oracles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA as SkPCA

from selfsup import divergences as D
from selfsup.models.autoencoder import Autoencoder, pca
from selfsup.models.vae import VAE, LinearGaussianVAE, kl_to_standard_normal


def test_pca_matches_scikit_learn():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 10)) @ rng.normal(size=(10, 10))
    ours, theirs = pca(x, 4), SkPCA(4).fit(x)
    angles = subspace_angles(ours.components.T.numpy(), theirs.components_.T)
    assert np.degrees(angles).max() < 1e-6
    assert np.allclose(ours.explained_variance.numpy(), theirs.explained_variance_)
    assert np.allclose(ours.explained_variance_ratio.numpy(), theirs.explained_variance_ratio_)
    # Reconstruction = projection onto the subspace; error = sum of the dropped variances.
    recon = ours.decode(ours.encode(x)).numpy()
    full = pca(x, 10).explained_variance.numpy()
    assert np.sum((x - recon) ** 2) / (len(x) - 1) == pytest.approx(full[4:].sum())


def test_kl_to_standard_normal_matches_gaussian_kl():
    mu = torch.tensor([[0.3, -1.2, 0.0], [2.0, 0.1, -0.5]], dtype=torch.float64)
    logvar = torch.tensor([[0.1, -2.0, 1.0], [0.0, 0.5, -0.3]], dtype=torch.float64)
    ours = kl_to_standard_normal(mu, logvar)
    for i in range(2):
        expected = D.gaussian_kl(mu[i].numpy(), logvar[i].exp().numpy(), np.zeros(3), np.ones(3))
        assert float(ours[i]) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("likelihood", ["categorical", "bernoulli", "gaussian"])
def test_iwae_at_k1_is_the_elbo_estimate_and_grows_with_k(likelihood):
    torch.manual_seed(0)
    levels = 5 if likelihood == "categorical" else None
    vae = VAE((3, 4), 2, likelihood=likelihood, levels=levels, hidden=(16,))
    if likelihood == "categorical":
        x = torch.randint(0, 5, (6, 3, 4))
    elif likelihood == "bernoulli":
        x = torch.randint(0, 2, (6, 3, 4))
    else:
        x = torch.randn(6, 3, 4)
    # k = 1 is the one-sample estimate log p(x|z) + log p(z) - log q(z|x), z ~ q:
    # recompute it independently with torch.distributions for the same z.
    iwae1 = vae.iwae_bound(x, k=1, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        mu, logvar = vae.posterior(x)
        z = vae.reparameterize(mu, logvar, torch.Generator().manual_seed(7))
        normal = torch.distributions.Normal
        log_q = normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(-1)
        log_prior = normal(0.0, 1.0).log_prob(z).sum(-1)
        expected = vae.decoder_log_prob(x.reshape(6, -1), z) + log_prior - log_q
    assert torch.allclose(iwae1, expected, atol=1e-4)
    # Its expectation is the ELBO (whose KL term is exact).
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        elbos = torch.stack([vae.elbo(x, generator=g).elbo for _ in range(3000)])
    iwaes = torch.stack([vae.iwae_bound(x, k=1, generator=g) for _ in range(3000)])
    se = (elbos.std(0) ** 2 / 3000 + iwaes.std(0) ** 2 / 3000).sqrt()
    assert ((elbos.mean(0) - iwaes.mean(0)).abs() < 5 * se + 1e-3).all()
    # In expectation the bound is nondecreasing in k: average over many repeats.
    g = torch.Generator().manual_seed(1)
    means = [
        torch.stack([vae.iwae_bound(x, k=k, generator=g) for _ in range(200)]).mean()
        for k in (1, 4, 32)
    ]
    assert means[0] < means[1] < means[2]


def test_gradient_reaches_encoder_through_reparameterization():
    torch.manual_seed(0)
    vae = VAE((2, 2), 3, likelihood="gaussian", hidden=(8,))
    x = torch.randn(5, 2, 2)
    mu, logvar = vae.posterior(x)
    z = vae.reparameterize(mu, logvar)
    recon = vae.decoder_log_prob(x.reshape(5, -1), z).sum()
    grad = torch.autograd.grad(recon, vae.encoder[0].weight)[0]
    assert grad.abs().sum() > 0
    # ... and the loss trains: one step lowers it on a fixed batch in expectation.
    vae.loss(x).backward()
    assert vae.encoder[0].weight.grad.abs().sum() > 0


def test_linear_gaussian_vae_identity():
    torch.manual_seed(3)
    model = LinearGaussianVAE(5, 2)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * torch.randn_like(p))
    x = torch.randn(8, 5, dtype=torch.float64)
    with torch.no_grad():
        elbo, logp = model.elbo(x), model.log_prob(x)
        qm, qv = model.encoder(x)
        pm, pc = model.true_posterior(x)
    for i in range(8):
        kl = D.gaussian_kl(qm[i].numpy(), qv.numpy(), pm[i].numpy(), pc.numpy())
        assert float(elbo[i]) + kl == pytest.approx(float(logp[i]), abs=1e-8)


def test_sampling_and_decoding_shapes():
    vae = VAE((8, 8), 4, likelihood="categorical", levels=17, hidden=(32,))
    samples = vae.sample(5)
    assert samples.shape == (5, 8, 8) and samples.dtype == torch.int64
    assert int(samples.min()) >= 0 and int(samples.max()) <= 16
    means = vae.sample(5, mean=True)
    assert means.shape == (5, 8, 8) and float(means.max()) <= 16
    ae = Autoencoder((8, 8), 3)
    assert ae(torch.rand(4, 8, 8)).shape == (4, 8, 8) and ae.encode(torch.rand(4, 8, 8)).shape == (
        4,
        3,
    )


def test_bad_input():
    with pytest.raises(ValueError, match="r must be an int"):
        pca(np.zeros((5, 3)), 4)
    with pytest.raises(ValueError, match="NaN or inf"):
        pca(np.full((5, 3), np.nan), 1)
    with pytest.raises(ValueError, match="needs levels="):
        VAE((8, 8), 4, likelihood="categorical")
    with pytest.raises(ValueError, match="likelihood must be one of"):
        VAE((8, 8), 4, likelihood="poisson")
    vae = VAE((8, 8), 4, likelihood="categorical", levels=17)
    with pytest.raises(ValueError, match="integers in 0..16"):
        vae.loss(torch.full((2, 8, 8), 17))
    with pytest.raises(ValueError, match=r"shape \(B, 8, 8\)"):
        vae.loss(torch.zeros(2, 64, dtype=torch.long))
    with pytest.raises(ValueError, match="binary"):
        VAE((2,), 1, likelihood="bernoulli").loss(torch.tensor([[0, 2]]))
    with pytest.raises(ValueError, match="k must be a positive int"):
        vae.iwae_bound(torch.zeros(2, 8, 8, dtype=torch.long), k=0)
    with pytest.raises(ValueError, match="same shape"):
        kl_to_standard_normal(torch.zeros(2, 3), torch.zeros(2, 4))


def test_vae_completion_keeps_the_known_half_and_beats_the_prior_mean():
    from selfsup import data
    from selfsup.models.vae import VAE
    from selfsup.train import fit

    torch.manual_seed(0)
    x, _ = data.digits("train")
    vae = VAE((8, 8), 8, levels=data.DIGITS_LEVELS, hidden=(128,))
    fit(vae, x[:-200], epochs=15, lr=3e-3, batch_size=64)
    known = torch.zeros(8, 8, dtype=torch.bool)
    known[:4] = True
    test = x[-200:]
    done = vae.complete(test, known)
    assert done.dtype.is_floating_point and done.shape == test.shape
    torch.testing.assert_close(done[:, :4], test[:, :4].float())
    few = vae.complete(test, known, samples=4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        prior = vae.decode(torch.zeros(1, 8))[0, 4:]
    err = lambda guess: float(((guess - test[:, 4:].float()) ** 2).mean())  # noqa: E731
    assert err(done[:, 4:]) < 0.8 * err(prior.expand_as(done[:, 4:]))
    assert err(done[:, 4:]) < err(few[:, 4:])  # more importance samples, a better mean
    with pytest.raises(ValueError, match="known_mask must have shape"):
        vae.complete(test, torch.ones(4, dtype=torch.bool))


def test_vae_completion_matches_quadrature_over_a_one_dimensional_latent():
    """E[x_u | x_k] = int p(z) p(x_k|z) E[x_u|z] dz / int p(z) p(x_k|z) dz on a grid."""
    torch.manual_seed(3)
    vae = VAE((3,), 1, likelihood="categorical", levels=4, hidden=(8,))
    for p in vae.parameters():
        torch.nn.init.normal_(p, std=1.0)
    x = torch.tensor([[0, 3, 0], [2, 1, 0], [3, 3, 0]])
    known = torch.tensor([True, True, False])
    got = vae.complete(x, known, samples=200_000, generator=torch.Generator().manual_seed(0))
    z = torch.linspace(-9, 9, 8001)[:, None]
    with torch.no_grad():
        log_w = (
            -0.5 * z[:, 0] ** 2
            + torch.stack(
                [
                    vae._position_log_probs(row[None], vae._decoder_params(z))[:, :2].sum(-1)
                    for row in x
                ],
                1,
            ).T
        )
        mean_u = vae.decode(z)[:, 2]
    want = torch.softmax(log_w, dim=1) @ mean_u
    torch.testing.assert_close(got[:, 2], want, atol=0.02, rtol=0)
    torch.testing.assert_close(got[:, :2], x[:, :2].float())


def test_iwae_bound_in_row_pieces_is_the_per_row_bound(monkeypatch):
    """A batch too large for one piece is split into rows: the result is what each row
    alone gives with the same stream of noise (exactly), and the pieces are small."""
    from selfsup.models import vae as vae_module

    torch.manual_seed(0)
    model = VAE((4, 4), 2, likelihood="categorical", levels=5, hidden=(16,)).eval()
    x = torch.randint(0, 5, (7, 4, 4))
    # rows = 2**10 // (8 samples * 16 pixels * 5 levels) = 1: one row per piece
    monkeypatch.setattr(vae_module, "_IWAE_ELEMENTS", 2**10)
    with torch.no_grad():
        pieces = model.iwae_bound(x, k=8, chunk=8, generator=torch.Generator().manual_seed(3))
        g = torch.Generator().manual_seed(3)
        rows = torch.cat(
            [model.iwae_bound(x[i : i + 1], k=8, chunk=8, generator=g) for i in range(7)]
        )
    assert pieces.shape == (7,) and torch.equal(pieces, rows)
    assert model.iwae_bound(x[:0], k=8).shape == (0,)


def _grey_digits(n: int = 200, levels: int = 17) -> torch.Tensor:
    """Integer images ``(n, 8, 8)`` on ``0..levels-1`` with structure to learn."""
    g = torch.Generator().manual_seed(0)
    strokes = torch.rand(n, 2, generator=g)
    rows = torch.linspace(0, 1, 8)
    image = strokes[:, :1, None] * rows[None, :, None] + strokes[:, 1:, None] * rows[None, None, :]
    return (image / 2 * (levels - 1)).round().long().clamp(0, levels - 1)


def test_autoencoder_decodes_on_the_data_scale():
    """With ``levels``, decode and forward give grey levels, as every model's decode does;
    the loss stays the mean squared error on the network's [0, 1] scale, and the
    reconstruction error is that error in squared grey levels."""
    from selfsup.train import fit

    levels = 17
    x = _grey_digits(levels=levels)
    torch.manual_seed(0)
    ae = Autoencoder((8, 8), 2, hidden=(32,), levels=levels)
    fit(ae, x, epochs=60, lr=1e-2, batch_size=50, progress=False)
    with torch.no_grad():
        recon, codes = ae(x), ae.encode(x)
        unit = ae.decoder(codes).reshape(x.shape)  # the network's own output, on [0, 1]
        assert torch.allclose(ae.decode(codes), unit * (levels - 1))
        assert torch.equal(recon, ae.decode(codes))
        # On the data's scale: within a grey level or so of the integer images (a [0, 1]
        # output would be off by about the images' mean grey level, several levels).
        rmse = float((recon - x).pow(2).mean().sqrt())
        assert rmse < 1.5 < float(x.float().pow(2).mean().sqrt())
        error = ae.reconstruction_error(x)
        assert torch.allclose(error, (recon - x).pow(2).reshape(len(x), -1).sum(1), rtol=1e-4)
        assert float(ae.loss(x)) == pytest.approx(float(error.mean()) / 64 / (levels - 1) ** 2,
                                                  rel=1e-4)  # fmt: skip
        # Whole-number floats and a channel axis are the same images.
        assert torch.equal(ae(x.float()[:, None]), recon)


def test_pca_of_integer_images_answers_in_grey_levels():
    x = _grey_digits()
    full = pca(x, 64)
    assert full.decode(full.encode(x)).shape == x.shape
    assert torch.allclose(full.decode(full.encode(x)), x.double(), atol=1e-9)
    # The same PCA as of the floats: scale-free components, data-scale reconstructions.
    floats = pca(x.double() / 16, 4)
    assert torch.allclose(pca(x, 4).explained_variance, floats.explained_variance * 256)


def test_linear_gaussian_vae_with_levels_models_the_unit_scale():
    """``levels`` scales integer images inside: the same numbers as floats divided by
    ``levels - 1`` given to a model without it."""
    x = _grey_digits(20)
    torch.manual_seed(0)
    scaled = LinearGaussianVAE(64, 3, levels=17)
    plain = LinearGaussianVAE(64, 3)
    plain.load_state_dict(scaled.state_dict())
    unit = x.double() / 16
    with torch.no_grad():
        assert torch.equal(scaled.elbo(x), plain.elbo(unit))
        assert torch.equal(scaled.log_prob(x.float()), plain.log_prob(unit))
        assert torch.equal(scaled.encoder(x)[0], plain.encoder(unit)[0])
        assert torch.equal(scaled.true_posterior(x)[0], plain.true_posterior(unit)[0])
    with pytest.raises(ValueError, match="x"):
        scaled.elbo(x + 0.5)  # fractional grey levels are refused, with the argument named
