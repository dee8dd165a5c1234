"""Graded: selfsup.models.autoencoder.pca (chapter: autoencoders)."""

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA as SkPCA

from selfsup.models.autoencoder import pca


@pytest.mark.parametrize("r", [1, 3, 7])
def test_pca_matches_scikit_learn(r):
    rng = np.random.default_rng(r)
    x = rng.normal(size=(200, 10)) @ rng.normal(size=(10, 10)) + rng.normal(size=10)
    ours = pca(torch.tensor(x), r)
    ref = SkPCA(r).fit(x)
    np.testing.assert_allclose(ours.mean.numpy(), ref.mean_, atol=1e-8)
    np.testing.assert_allclose(ours.explained_variance.numpy(), ref.explained_variance_, rtol=1e-6)
    np.testing.assert_allclose(
        ours.explained_variance_ratio.numpy(), ref.explained_variance_ratio_, rtol=1e-6
    )
    # Components are defined up to sign: compare the projectors.
    c = ours.components.numpy()
    np.testing.assert_allclose(c.T @ c, ref.components_.T @ ref.components_, atol=1e-6)
    recon = ours.decode(ours.encode(torch.tensor(x))).numpy()
    np.testing.assert_allclose(recon, ref.inverse_transform(ref.transform(x)), atol=1e-6)


def test_pca_accepts_images_and_is_orthonormal():
    x = torch.rand(50, 4, 4, dtype=torch.float64)
    p = pca(x, 5)
    assert p.components.shape == (5, 16)
    torch.testing.assert_close(p.components @ p.components.T, torch.eye(5, dtype=torch.float64))
