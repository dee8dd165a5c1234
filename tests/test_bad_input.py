"""The mistakes a student makes, table by table: every public callable refuses bad
input with the library's own error, which names the argument (and, where there is
one, the fix). No call returns NaN, inf or a silently wrong answer.

Each row: (callable that makes the bad call, the argument its message must name,
an optional extra pattern). The exception must be a ``ValueError`` (an
``InputTypeError`` for a wrong type is also a ``TypeError``) raised by selfsup, not
by torch, NumPy or scikit-learn.
"""

from __future__ import annotations

import math
import traceback

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from selfsup import _checks as checks
from selfsup import configs, data, divergences, metrics, pareto, plotting, train
from selfsup.book import markdown_table
from selfsup.features import DigitClassifier, DigitFeatures, FeatureModule
from selfsup.models import autoencoder as ae
from selfsup.models import autoregressive as ar
from selfsup.models import baselines as bl
from selfsup.models import contrastive as cl
from selfsup.models import flows as fl
from selfsup.models import gan as gn
from selfsup.models import hvae as hv
from selfsup.models import vae as va
from selfsup.models import vqvae as vq

NAN = float("nan")
INF = float("inf")
QUICK = data.ImageData(
    torch.randint(17, (64, 8, 8)), torch.arange(64) % 10, torch.randint(17, (32, 8, 8)),
    torch.arange(32) % 10, (8, 8), 17, "digits", "random 8x8 stand-ins",
)  # fmt: skip


def _levels(n=4):
    return torch.randint(17, (n, 8, 8), generator=torch.Generator().manual_seed(0))


def _vae(**kw):
    return va.VAE((8, 8), 4, levels=17, hidden=(16,), **kw)


def _flow(levels=None, shape=(2,)):
    return fl.realnvp(shape, layers=2, hidden=(8,), levels=levels)


def _gan(image=False):
    shape = (8, 8) if image else (2,)
    return gn.GAN(gn.Generator(2, shape, (8,), image=image), gn.Discriminator(shape, (8,)))


def _fitted(model):
    return model.fit(_levels(40).float())


def _made():
    return ar.MADE((3, 4), 5, hidden=(16,))


def _simclr():
    return cl.SimCLR(cl.ConvEncoder(8, 4), projection_dim=4)


def _pca():
    return ae.pca(torch.randn(10, 4), 2)


def _class_conditional():
    return bl.ClassConditional(lambda x: bl.Memorizer().fit(x)).fit(
        _levels(20), torch.arange(20) % 2
    )


class Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(3))

    def loss(self, batch):
        return ((batch @ self.w - 1) ** 2).mean()


# (id, bad call, the argument its message names, optional further pattern)
CASES = [
    # ------------------------------------------------------------------ train
    ("fit/epochs=0", lambda: train.fit(Linear(), torch.zeros(8, 3), epochs=0), "epochs", None),
    ("fit/epochs=2.5", lambda: train.fit(Linear(), torch.zeros(8, 3), epochs=2.5), "epochs", None),
    ("fit/epochs='3'", lambda: train.fit(Linear(), torch.zeros(8, 3), epochs="3"), "epochs", None),
    ("fit/batch_size=0", lambda: train.fit(Linear(), torch.zeros(8, 3), epochs=1, batch_size=0),
     "batch_size", None),
    ("fit/lr=-1", lambda: train.fit(Linear(), torch.zeros(8, 3), epochs=1, lr=-1), "lr", None),
    ("fit/lr=nan", lambda: train.fit(Linear(), torch.zeros(8, 3), epochs=1, lr=NAN), "lr", None),
    ("fit/weight_decay<0", lambda: train.fit(Linear(), torch.zeros(8, 3), epochs=1,
                                              weight_decay=-0.1), "weight_decay", None),
    ("fit/NaN data", lambda: train.fit(Linear(), torch.full((8, 3), NAN), epochs=1), "train",
     "NaN"),
    ("fit/empty", lambda: train.fit(Linear(), torch.zeros(0, 3), epochs=1), "train", "empty"),
    ("fit/string data", lambda: train.fit(Linear(), "data", epochs=1), "train", None),
    ("fit/device=cuda without CUDA",
     lambda: train.fit(Linear(), torch.zeros(8, 3), epochs=1, device="cuda"), "device", "cpu"),
    ("fit/not a model", lambda: train.fit(object(), torch.zeros(8, 3), epochs=1), "model", None),
    ("fit/schedule", lambda: train.fit(Linear(), torch.zeros(8, 3), epochs=1, schedule="step"),
     "schedule", None),
    ("fit/contrastive, one example", lambda: train.fit(_simclr(), torch.rand(1, 8, 8), epochs=1),
     "train", "at least 2"),
    # ------------------------------------------------------------------ flows
    ("realnvp/layers=-1", lambda: fl.realnvp((2,), layers=-1), "layers", None),
    ("realnvp/hidden=(0,)", lambda: fl.realnvp((2,), hidden=(0,)), "hidden", None),
    ("realnvp/shape=2", lambda: fl.realnvp(2), "shape", "\\(2,\\)"),
    ("realnvp/mask", lambda: fl.realnvp((2,), mask="stripes"), "mask", None),
    ("realnvp/levels=1", lambda: fl.realnvp((2,), levels=1), "levels", None),
    ("Flow.log_prob/NaN", lambda: _flow().log_prob(torch.tensor([[NAN, 0.0]])), "x", "NaN"),
    ("Flow.log_prob/wrong shape", lambda: _flow().log_prob(torch.zeros(3, 5)), "x", None),
    ("Flow.log_prob/levels out of range",
     lambda: _flow(17, (8, 8)).log_prob(torch.full((2, 8, 8), 20)), "x", "0..16"),
    ("Flow.log_prob/dequantized out of range",
     lambda: _flow(17, (8, 8)).log_prob(torch.rand(2, 8, 8) + 16.5), "x", "0..16"),
    ("Flow.loss/dequantized out of range",
     lambda: _flow(17, (8, 8)).loss(torch.rand(2, 8, 8) - 0.5), "batch", "\\[0, 17\\]"),
    ("Flow.loss/several channels", lambda: _flow(17, (8, 8)).loss(torch.zeros(2, 3, 8, 8).long()),
     "batch", "single-channel"),
    ("Flow.sample/n=-1", lambda: _flow().sample(-1), "n", None),
    ("Flow.sample/n=2.5", lambda: _flow().sample(2.5), "n", None),
    ("Flow.sample/seed as generator", lambda: _flow().sample(2, generator=0), "generator",
     "manual_seed"),
    ("Flow.decode/wrong z", lambda: _flow().decode(torch.zeros(2, 3)), "z", None),
    ("ActNorm/NaN", lambda: fl.ActNorm(2)(torch.tensor([[NAN, 1.0], [0.0, 1.0]])), "x", "NaN"),
    ("AffineCoupling/inf", lambda: fl.AffineCoupling(fl.coupling_mask("half", (2,)))(
        torch.tensor([[INF, 0.0]])), "x", "NaN or inf"),
    ("AffineCoupling/bad mask", lambda: fl.AffineCoupling(torch.tensor([0.5, 1.0])), "mask", None),
    ("LogitTransform/alpha", lambda: fl.LogitTransform(17, alpha=0.7), "alpha", None),
    ("LogitTransform/integers", lambda: fl.LogitTransform(17)(torch.tensor([[1, 2]])), "x",
     "dequantize"),
    ("Permute/order", lambda: fl.Permute(3, order="sorted"), "order", None),
    ("coupling_mask/shape", lambda: fl.coupling_mask("half", "8x8"), "shape", None),
    ("coupling_mask/one feature", lambda: fl.coupling_mask("half", (1,)), "shape",
     "at least 2"),
    ("coupling_mask/one pixel", lambda: fl.coupling_mask("checkerboard", (1, 1)), "shape",
     None),
    # ---------------------------------------------------------- autoencoders
    ("Autoencoder/latent_dim=0", lambda: ae.Autoencoder((8, 8), 0), "latent_dim", None),
    ("Autoencoder/hidden=(-1,)", lambda: ae.Autoencoder((8, 8), 2, hidden=(-1,)), "hidden",
     None),
    ("Autoencoder.encode/NaN", lambda: ae.Autoencoder((8, 8), 2).encode(torch.full((1, 8, 8), NAN)),
     "x", "NaN"),
    ("Autoencoder.decode/wrong latent", lambda: ae.Autoencoder((8, 8), 2).decode(torch.zeros(1, 3)),
     "z", None),
    ("Autoencoder.loss/empty", lambda: ae.Autoencoder((8, 8), 2).loss(torch.zeros(0, 8, 8)),
     "batch", "empty"),
    ("pca/constant data", lambda: ae.pca(torch.ones(5, 3), 1), "X", "zero variance"),
    ("pca/r too big", lambda: ae.pca(torch.randn(5, 3), 4), "r", None),
    ("pca/one example", lambda: ae.pca(torch.randn(1, 3), 1), "X", "2"),
    ("PCA.encode/features", lambda: _pca().encode(torch.zeros(2, 5)), "x", "features"),
    ("PCA.decode/wrong r", lambda: _pca().decode(torch.zeros(2, 3)), "z", None),
    ("mlp/one width", lambda: ae.mlp([4]), "sizes", None),
    # ------------------------------------------------------------------- VAEs
    ("VAE/beta=-1", lambda: _vae(beta=-1), "beta", None),
    ("VAE/latent_dim=0", lambda: va.VAE((8, 8), 0, levels=17), "latent_dim", None),
    ("VAE/levels missing", lambda: va.VAE((8, 8), 2), "levels", None),
    ("VAE/likelihood", lambda: va.VAE((8, 8), 2, likelihood="poisson"), "likelihood", None),
    ("VAE.loss/floats for categorical", lambda: _vae().loss(torch.rand(4, 8, 8)), "batch",
     "integers"),
    ("VAE.loss/unit floats", lambda: _vae().loss(_levels().float() / 16), "batch",
     "multiply by levels - 1 and round"),
    ("VAE.loss/levels too high", lambda: _vae().loss(_levels() + 17), "batch", "0..16"),
    ("VAE.loss/not binary", lambda: va.VAE((8, 8), 2, "bernoulli").loss(_levels().float()),
     "batch", "binar"),
    ("VAE.loss/several channels", lambda: _vae().loss(_levels()[:, None].expand(4, 3, 8, 8)),
     "batch", "single-channel"),
    ("VAE.loss/NaN", lambda: _vae().loss(torch.full((2, 8, 8), NAN)), "batch", "NaN"),
    ("VAE.decoder_log_prob/fractional", lambda: _vae().decoder_log_prob(
        torch.rand(2, 64) * 16, torch.zeros(2, 4)), "flat", "whole numbers"),
    ("VAE.decoder_log_prob/shape", lambda: _vae().decoder_log_prob(
        _levels(2), torch.zeros(2, 4)), "flat", None),
    ("VAE.decoder_log_prob/latent", lambda: _vae().decoder_log_prob(
        _levels(2).reshape(2, 64), torch.zeros(2, 3)), "z", "latent_dim"),
    ("VAE.log_prob/seed as generator", lambda: _vae().log_prob(_levels(), generator=3),
     "generator", "manual_seed"),
    ("VAE.decode/NaN z", lambda: _vae().decode(torch.full((2, 4), NAN)), "z", "NaN"),
    ("VAE.decode/wrong latent", lambda: _vae().decode(torch.zeros(2, 5)), "z", "latent_dim"),
    ("VAE.iwae_bound/k=0", lambda: _vae().iwae_bound(_levels(), k=0), "k", None),
    ("VAE.sample/n=-2", lambda: _vae().sample(-2), "n", None),
    ("VAE.complete/mask shape", lambda: _vae().complete(_levels(), torch.ones(4, dtype=bool)),
     "known_mask", None),
    ("kl_to_standard_normal/NaN", lambda: va.kl_to_standard_normal(torch.tensor([[NAN]]),
                                                                   torch.zeros(1, 1)), "mu", "NaN"),
    ("kl_to_standard_normal/shapes", lambda: va.kl_to_standard_normal(torch.zeros(2, 3),
                                                                      torch.zeros(2, 2)), "logvar",
     None),
    ("LinearGaussianVAE/r>d", lambda: va.LinearGaussianVAE(2, 3), "r", None),
    ("HierarchicalVAE/free_bits<0", lambda: hv.HierarchicalVAE((8, 8), 4, 2, levels=17,
                                                               free_bits=-1), "free_bits", None),
    ("HierarchicalVAE/top_dim=0", lambda: hv.HierarchicalVAE((8, 8), 4, 0, levels=17), "top_dim",
     None),
    ("HierarchicalVAE.sample/z2", lambda: hv.HierarchicalVAE((8, 8), 4, 2, levels=17).sample(
        2, z2=torch.zeros(2, 3)), "z2", None),
    # ---------------------------------------------------------------- VQ-VAE
    ("VectorQuantizer/empty", lambda: vq.VectorQuantizer(4, 2)(torch.zeros(0, 2)), "z_e", "empty"),
    ("VectorQuantizer/NaN", lambda: vq.VectorQuantizer(4, 2)(torch.full((3, 2), NAN)), "z_e",
     "NaN"),
    ("VectorQuantizer.nearest/NaN", lambda: vq.VectorQuantizer(4, 2).nearest(
        torch.full((1, 2), NAN)), "flat", "NaN"),
    ("VectorQuantizer/decay", lambda: vq.VectorQuantizer(4, 2, decay=1.0), "decay", None),
    ("VectorQuantizer/beta<0", lambda: vq.VectorQuantizer(4, 2, beta=-1.0), "beta", None),
    ("VectorQuantizer.lookup/floats", lambda: vq.VectorQuantizer(4, 2).lookup(torch.zeros(2)),
     "indices", None),
    ("VectorQuantizer.lookup/range", lambda: vq.VectorQuantizer(4, 2).lookup(torch.tensor([4])),
     "indices", "0..3"),
    ("VQVAE/num_codes=0", lambda: configs.vqvae(QUICK, num_codes=0), "num_codes", None),
    ("VQVAE.loss/floats", lambda: configs.vqvae(QUICK).loss(torch.rand(2, 8, 8)), "x",
     "integers"),
    ("VQVAE.sample/n=-1", lambda: configs.vqvae(QUICK).sample(-1), "n", None),
    ("VQVAE.decode/code shape", lambda: configs.vqvae(QUICK).decode(torch.zeros(1, 3, 3).long()),
     "indices", None),
    # --------------------------------------------------------- autoregressive
    ("MADE/orderings=0", lambda: ar.MADE((3, 4), 5, orderings=0), "orderings", None),
    ("MADE/dropout=1.5", lambda: ar.MADE((3, 4), 5, dropout=1.5), "dropout", None),
    ("MADE.log_prob/floats", lambda: _made().log_prob(torch.rand(2, 3, 4)), "x", "integers"),
    ("MADE.sample/n=-1", lambda: _made().sample(-1), "n", None),
    ("MADE.sample/n=1.0", lambda: _made().sample(1.0), "n", "n=1"),
    ("MADE.complete/mask", lambda: _made().complete(torch.zeros(1, 3, 4).long(), torch.ones(3)),
     "known_mask", None),
    ("PixelCNN/kernel even", lambda: ar.PixelCNN((8, 8), 17, kernel=4), "kernel", None),
    ("PixelTransformer/heads", lambda: ar.PixelTransformer((8, 8), 17, dim=10, heads=4), "dim",
     None),
    ("configs.vae/latent_dim=0", lambda: configs.vae(QUICK, latent_dim=0), "latent_dim", None),
    ("configs/not ImageData", lambda: configs.made((8, 8)), "data", "images"),
    # ------------------------------------------------------------------- GANs
    ("GAN/gp_weight<0", lambda: gn.GAN(gn.Generator(2, (2,)), gn.Discriminator((2,)),
                                       gp_weight=-10), "gp_weight", None),
    ("GAN/loss", lambda: gn.GAN(gn.Generator(2, (2,)), gn.Discriminator((2,)), loss="hinge"),
     "loss", None),
    ("d_loss/NaN", lambda: gn.d_loss(torch.tensor([NAN, 1.0]), torch.zeros(2), "minimax"), "real",
     "NaN"),
    ("g_loss/NaN", lambda: gn.g_loss(torch.tensor([NAN]), "nonsaturating"), "fake", "NaN"),
    ("gradient_penalty/NaN", lambda: gn.gradient_penalty(gn.Discriminator((2,)),
                                                         torch.full((3, 2), NAN),
                                                         torch.zeros(3, 2)), "real", "NaN"),
    ("GAN.sample/n=-1", lambda: _gan().sample(-1), "n", None),
    ("train_gan/steps=0", lambda: gn.train_gan(_gan(), torch.randn(64, 2), steps=0), "steps",
     None),
    ("train_gan/lr_d", lambda: gn.train_gan(_gan(), torch.randn(64, 2), steps=1, lr_d=0), "lr_d",
     None),
    ("train_gan/unscaled images", lambda: gn.train_gan(_gan(True), _levels(64).float(), steps=1,
                                                       batch_size=8), "data", "\\[0, 1\\]"),
    ("train_gan/NaN data", lambda: gn.train_gan(_gan(), torch.full((64, 2), NAN), steps=1), "data",
     "NaN"),
    ("Generator/latent_dim=0", lambda: gn.Generator(0, (2,)), "latent_dim", None),
    # ------------------------------------------------------------ contrastive
    ("info_nce/one pair", lambda: cl.info_nce(torch.randn(1, 3), torch.randn(1, 3)), "pairs",
     None),
    ("info_nce/temperature=0", lambda: cl.info_nce(torch.randn(4, 3), torch.randn(4, 3), 0.0),
     "temperature", None),
    ("nt_xent/NaN", lambda: cl.nt_xent(torch.full((4, 3), NAN), torch.randn(4, 3)), "z1", "NaN"),
    ("clip_loss/logit_scale", lambda: cl.clip_loss(torch.randn(4, 3), torch.randn(4, 3), -1.0),
     "logit_scale", None),
    ("uniformity/t<0", lambda: cl.uniformity(torch.randn(4, 3), t=-2), "t", None),
    ("uniformity/NaN", lambda: cl.uniformity(torch.full((4, 3), NAN)), "z", "NaN"),
    ("uniformity/integers", lambda: cl.uniformity(torch.arange(6)[:, None]), "z", "float"),
    ("info_nce/integers", lambda: cl.info_nce(torch.arange(6)[:, None], torch.arange(6)[:, None]),
     "u", "labels"),
    ("nt_xent/integers", lambda: cl.nt_xent(torch.ones(4, 2).long(), torch.randn(4, 2)), "z1",
     "float"),
    ("clip_loss/integers", lambda: cl.clip_loss(torch.randn(4, 2), torch.ones(4, 2).long(), 1.0),
     "text_emb", "float"),
    ("alignment/integers", lambda: cl.alignment(torch.ones(4, 2).long(), torch.ones(4, 2).long()),
     "z1", "float"),
    ("alignment/alpha", lambda: cl.alignment(torch.randn(4, 3), torch.randn(4, 3), alpha=0),
     "alpha", None),
    ("Augment/cutout_p=2", lambda: cl.Augment(cutout_p=2), "cutout_p", None),
    ("Augment/unscaled pixels", lambda: cl.Augment()(_levels().float()), "x", "levels - 1"),
    ("Augment/integers", lambda: cl.Augment()(_levels()), "x", "divide"),
    ("Augment/NaN", lambda: cl.Augment()(torch.full((2, 8, 8), NAN)), "x", "NaN"),
    ("SimCLR.loss/unscaled", lambda: _simclr().loss(_levels().float()), "batch", "\\[0, 1\\]"),
    ("SimCLR.loss/unit floats for grey levels", lambda: configs.simclr(QUICK).loss(
        _levels().float() / 16), "batch", "multiply by levels - 1 and round"),
    ("SimCLR.loss/one image", lambda: configs.simclr(QUICK).loss(_levels(1)), "batch",
     "at least 2"),
    ("SimCLR.embed/NaN", lambda: _simclr().embed(torch.full((2, 8, 8), NAN)), "x", "NaN"),
    ("SimCLR/temperature", lambda: cl.SimCLR(cl.ConvEncoder(8, 4), temperature=-1),
     "temperature", None),
    ("linear_probe/no seeds", lambda: cl.linear_probe(torch.randn(20, 3), torch.arange(20) % 2,
                                                      torch.randn(4, 3), torch.arange(4) % 2, 2,
                                                      seeds=[]), "seeds", None),
    ("linear_probe/labels_per_class", lambda: cl.linear_probe(
        torch.randn(20, 3), torch.arange(20) % 2, torch.randn(4, 3), torch.arange(4) % 2, 0),
     "labels_per_class", None),
    ("linear_probe/NaN", lambda: cl.linear_probe(torch.full((20, 3), NAN), torch.arange(20) % 2,
                                                 torch.randn(4, 3), torch.arange(4) % 2, 2),
     "train_feats", "NaN"),
    # --------------------------------------------------------------- features
    ("DigitClassifier.logits/unscaled", lambda: DigitClassifier().logits(_levels().float()), "x",
     "\\[0, 1\\]"),
    ("DigitClassifier.logits/shape", lambda: DigitClassifier().logits(torch.rand(4)), "x", None),
    ("DigitClassifier.logits/fractional", lambda: DigitClassifier(levels=17).logits(
        _levels().float() / 16), "x", "whole|integer|grey"),
    ("DigitClassifier.logits/range", lambda: DigitClassifier(levels=17).logits(_levels() + 16),
     "x", None),
    ("DigitClassifier/levels", lambda: DigitClassifier(levels=1), "levels", None),
    ("FeatureModule/output", lambda: FeatureModule(DigitClassifier(), "probs"), "output", None),
    ("DigitFeatures/vmax", lambda: DigitFeatures(DigitClassifier(), torch.rand(4, 8, 8), vmax=0),
     "vmax", None),
    # -------------------------------------------------------------- baselines
    ("GaussianMixture/n_components=0", lambda: bl.GaussianMixture(0), "n_components", None),
    ("GaussianMixture/reg_covar=0", lambda: bl.GaussianMixture(1, reg_covar=0), "reg_covar", None),
    ("GaussianMixture.sample/unfitted", lambda: bl.GaussianMixture(1).sample(3), "not fitted",
     "fit"),
    ("Memorizer.sample/unfitted", lambda: bl.Memorizer().sample(3), "not fitted", "fit"),
    ("KernelDensity/bandwidth", lambda: bl.KernelDensity(-1.0), "bandwidth", None),
    ("UniformDensity/levels", lambda: bl.UniformDensity(1), "levels", None),
    ("Memorizer.log_prob/NaN", lambda: _fitted(bl.Memorizer()).log_prob(
        torch.full((1, 8, 8), NAN)), "x", "NaN"),
    ("Memorizer.log_prob/shape", lambda: _fitted(bl.Memorizer()).log_prob(torch.zeros(2, 3)),
     "x", "dimensions"),
    ("Memorizer.sample/n=-1", lambda: _fitted(bl.Memorizer()).sample(-1), "n", None),
    ("ClassConditional.sample/unfitted", lambda: bl.ClassConditional(bl.Memorizer).sample(3),
     "not fitted", "fit"),
    ("ClassConditional/make_model", lambda: bl.ClassConditional(3), "make_model", None),
    ("ClassConditional.sample/unknown label", lambda: _class_conditional().sample(
        2, labels=[0, 5]), "labels", "\\[0, 1\\]"),
    ("ClassConditional.sample/labels length", lambda: _class_conditional().sample(
        3, labels=[0, 1]), "labels", "n=3"),
    ("ClassConditional.fit/loaded", lambda: bl.ClassConditional().fit(_levels(20),
                                                                      torch.arange(20) % 2),
     "make_model", None),
    # ---------------------------------------------------------------- metrics
    ("bits_per_dim/empty", lambda: metrics.bits_per_dim([], 64), "nll_nats", "empty"),
    ("bits_per_dim/NaN", lambda: metrics.bits_per_dim([NAN], 64), "nll_nats", "NaN"),
    ("bits_per_dim/NaN among inf", lambda: metrics.bits_per_dim([INF, NAN], 64), "nll_nats",
     "NaN"),
    ("nats_to_bits/NaN", lambda: metrics.nats_to_bits(NAN), "nats", "NaN"),
    ("nats_to_bits/NaN array", lambda: metrics.nats_to_bits(np.array([1.0, NAN])), "nats",
     "NaN"),
    ("nats_to_bits/NaN tensor", lambda: metrics.nats_to_bits(torch.tensor([NAN])), "nats",
     "NaN"),
    ("nats_to_bits/string", lambda: metrics.nats_to_bits("3 nats"), "nats", None),
    ("bits_per_dim/dims=0", lambda: metrics.bits_per_dim([1.0], 0), "dims", None),
    ("bits_per_dim/dims float", lambda: metrics.bits_per_dim([1.0], 64.5), "dims", None),
    ("perplexity/empty", lambda: metrics.perplexity([]), "nll_nats_per_token", "empty"),
    ("perplexity/negative", lambda: metrics.perplexity([-1.0]), "nll_nats_per_token", ">= 0"),
    ("fid/NaN", lambda: metrics.fid(np.full((4, 2), NAN), np.zeros((4, 2))), "feats_a", "NaN"),
    ("fid/features", lambda: metrics.fid(np.zeros((4, 2)), np.zeros((4, 3))), "feats_a", None),
    ("inception_score/not probabilities", lambda: metrics.inception_score(np.ones((4, 3))),
     "probs_or_logits", "from_logits"),
    ("inception_score/splits", lambda: metrics.inception_score(np.full((4, 2), 0.5), splits=5),
     "splits", None),
    ("kid/subsets=0", lambda: metrics.kid(np.zeros((4, 2)), np.zeros((4, 2)), subsets=0),
     "subsets", None),
    ("precision_recall/k", lambda: metrics.precision_recall(np.zeros((4, 2)), np.zeros((4, 2)),
                                                            k=4), "k", None),
    ("memorisation/features", lambda: metrics.memorisation(np.zeros((4, 2)), np.zeros((4, 3)),
                                                           np.zeros((4, 2))), "features", None),
    ("memorisation/no samples", lambda: metrics.memorisation(
        np.zeros((0, 8, 8)), np.ones((4, 8, 8)), np.ones((4, 8, 8))), "samples", "at least 2"),
    ("classification_accuracy_score/no samples", lambda: metrics.classification_accuracy_score(
        np.zeros((0, 8, 8)), np.zeros(0), np.zeros((4, 8, 8)), np.arange(4) % 2), "samples",
     "at least 2"),
    ("classification_accuracy_score/no test", lambda: metrics.classification_accuracy_score(
        np.random.rand(4, 8, 8), np.arange(4) % 2, torch.zeros(0, 8, 8), np.zeros(0)), "test_x",
     "at least 2"),
    ("classification_accuracy_score/one class", lambda: metrics.classification_accuracy_score(
        np.zeros((4, 2)), np.zeros(4), np.zeros((2, 2)), np.zeros(2)), "labels", "two classes"),
    # ----------------------------------------------------------------- pareto
    ("pareto_front/NaN", lambda: pareto.pareto_front([[NAN, 1.0]]), "points", "NaN"),
    ("pareto_front/-inf", lambda: pareto.pareto_front([[-INF, 1.0]]), "points", "-inf"),
    ("pareto_front/shape", lambda: pareto.pareto_front([1.0, 2.0]), "points", "\\(n, 2\\)"),
    ("scalarize/negative lambda", lambda: pareto.scalarize([[1.0, 2.0]], [-1.0]), "lambdas", None),
    ("scalarize/inf lambda", lambda: pareto.scalarize([[1.0, 2.0]], [INF]), "lambdas", None),
    ("scalarization_sweep/solve", lambda: pareto.scalarization_sweep(3, [1.0]), "solve", None),
    # ---------------------------------------------------------- divergences
    ("kl_divergence/not normalised", lambda: divergences.kl_divergence([0.5, 0.6], [0.5, 0.5]),
     "p", "normalise"),
    ("kl_divergence/NaN", lambda: divergences.kl_divergence([NAN, 1.0], [0.5, 0.5]), "p", "NaN"),
    ("gaussian_kl/inf", lambda: divergences.gaussian_kl(INF, 1.0, 0.0, 1.0), "mu0", "inf"),
    ("gaussian_kl/variance", lambda: divergences.gaussian_kl(0.0, -1.0, 0.0, 1.0), "cov0", None),
    ("mmd/one sample", lambda: divergences.mmd([1.0], [1.0, 2.0]), "x", "2 samples"),
    ("wasserstein/p", lambda: divergences.wasserstein([1.0, 2.0], [1.0, 2.0], p=0.5), "p", None),
    ("kl_from_samples/shapes", lambda: divergences.kl_from_samples(np.zeros(4), np.zeros((4, 1))),
     "logq", "same shape"),
    ("kl_from_samples/lengths", lambda: divergences.kl_from_samples(np.zeros(4), np.zeros(3)),
     "logq", "same shape"),
    ("gaussian_tv/vector sigma", lambda: divergences.gaussian_tv(0.0, [1.0, -1.0], 0.0, 1.0),
     "sigma0", "positive"),
    ("gaussian_tv/shapes", lambda: divergences.gaussian_tv([0.0, 1.0], 1.0, [0.0, 1.0, 2.0], 1.0),
     "mu0", "broadcast"),
    # ------------------------------------------------------------------- data
    ("dequantize/floats", lambda: data.dequantize(torch.rand(3), 17), "x", "integer"),
    ("dequantize/levels", lambda: data.dequantize(_levels(), 10), "x", "levels"),
    ("toy_2d/n=0", lambda: data.toy_2d("moons", 0), "n", None),
    ("toy_2d/name", lambda: data.toy_2d("spirals", 10), "name", None),
    ("iterate_batches/batch_size", lambda: list(train.iterate_batches(torch.zeros(4, 2), 0, False)),
     "batch_size", None),
    # --------------------------------------------------------------- plotting
    ("image_grid/ncols=0", lambda: plotting.image_grid(torch.zeros(2, 8, 8), ncols=0), "ncols",
     None),
    ("image_grid/NaN", lambda: plotting.image_grid(torch.full((2, 8, 8), NAN)), "images", "NaN"),
    ("samples_2d/shape", lambda: plotting.samples_2d(torch.zeros(3, 3)), "x", None),
    ("markdown_table/one column as a string", lambda: markdown_table({"a": {"loss": 1.0}}, "loss"),
     "columns", "\\['loss'\\]"),
    ("markdown_table/rows", lambda: markdown_table([1.0, 2.0], ["loss"]), "rows", None),
]  # fmt: skip


@pytest.mark.parametrize("call, argument, pattern", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_bad_input_is_refused_by_selfsup_naming_the_argument(call, argument, pattern):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert argument in message, f"the message does not name {argument!r}: {message}"
    if pattern is not None:
        import re

        assert re.search(pattern, message), f"{pattern!r} not in: {message}"
    # raised by selfsup's own check, not from deep inside torch, NumPy or sklearn
    origin = traceback.extract_tb(info.tb)[-1].filename
    assert "/selfsup/" in origin.replace("\\", "/"), f"raised in {origin}: {message}"


def test_every_public_module_has_rows():
    """The table covers every module of the public API."""
    covered = {c[0].split("/")[0] for c in CASES}
    for name in ("fit", "realnvp", "VAE", "VQVAE", "MADE", "GAN", "SimCLR", "GaussianMixture",
                 "bits_per_dim", "pareto_front", "kl_divergence", "dequantize", "image_grid",
                 "DigitClassifier.logits", "Autoencoder", "pca"):  # fmt: skip
        assert any(c == name or c.startswith(name) for c in covered), name


# ------------------------------------------------------------------- acceptance


def test_numpy_scalars_and_arrays_are_accepted():
    nll = np.full(5, 64.0)
    assert metrics.bits_per_dim(nll, np.prod((8, 8))) == pytest.approx(1 / math.log(2))
    assert metrics.bits_per_dim(torch.full((5,), 64.0), np.int64(64)) == pytest.approx(
        1 / math.log(2)
    )
    p = ae.pca(np.random.default_rng(0).normal(size=(10, 4)), np.int32(2))
    assert p.encode(np.zeros(4)[None]).shape == (1, 2)  # a single example
    assert va.VAE((8, 8), np.int64(4), levels=np.int64(17)).latent_dim == 4
    assert fl.realnvp(np.array([2]), layers=np.int64(1)).d == 2
    assert bl.KernelDensity(np.float32(0.5)).bandwidth == 0.5
    model = bl.GaussianMixture(np.int64(2), seed=0).fit(
        np.random.default_rng(0).normal(size=(20, 2))
    )
    assert model.sample(np.int64(3)).shape == (3, 2)
    # NumPy scalars as hyperparameters, of any width
    assert checks.integer(np.int64(2), "k") == 2 and checks.integer(np.uint8(3), "k") == 3
    assert checks.number(np.float32(1.0), "lr") == 1.0
    assert checks.probability(np.float16(0.5), "p") == 0.5
    assert checks.sizes(np.array([8, 8]), "shape") == (8, 8)
    assert _vae(beta=np.float32(0.5)).beta == 0.5
    assert cl.SimCLR(cl.ConvEncoder(np.int32(8), np.int64(4)), temperature=np.float64(0.2)
                     ).temperature == pytest.approx(0.2)  # fmt: skip
    assert ar.MADE((3, 4), np.int16(5), hidden=(np.int64(16),)).levels == 5
    with pytest.raises(TypeError, match="k=2"):
        checks.integer(np.float32(2.0), "k")


@pytest.mark.parametrize("name", sorted(configs.ALL))
def test_an_empty_batch_to_loss_is_refused_by_every_configuration(name):
    """The mean loss of no examples is NaN (it was, for the VAEs, PixelCNN and the pixel
    transformer; MADE failed in a reshape): each loss refuses an empty batch by name."""
    model = configs.ALL[name](QUICK, profile="quick")
    with pytest.raises(ValueError, match="batch") as info:
        model.loss(QUICK.x_train[:0])
    assert "empty" in str(info.value) or "at least" in str(info.value)
    assert "/selfsup/" in traceback.extract_tb(info.tb)[-1].filename.replace("\\", "/")


def test_an_empty_batch_gives_an_empty_log_prob():
    """log_prob of no examples is no values (not an error, not NaN)."""
    x = QUICK.x_test[:0]
    for name in ("made", "pixelcnn", "pixel_transformer", "flow", "vae"):
        model = configs.ALL[name](QUICK, profile="quick").eval()
        with torch.no_grad():
            assert model.log_prob(x).shape == (0,), name
    with pytest.raises(ValueError, match="batch"):
        va.LinearGaussianVAE(4, 2).loss(torch.zeros(0, 4))
    with pytest.raises(ValueError, match="batch"):
        cl.TwoTower(torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)).loss(
            (torch.zeros(0, 3), torch.zeros(0, 3))
        )


def test_float64_arrays_are_converted_to_a_float32_model_dtype():
    """A float64 NumPy array (or tensor) for a float32 model is converted, not passed on to
    fail in a matrix product ("mat1 and mat2 must have the same dtype")."""
    rng = np.random.default_rng(0)
    points = rng.normal(size=(6, 2))  # float64
    flow = _flow().eval()
    assert flow.log_prob(points).dtype == torch.float32
    assert torch.allclose(flow.log_prob(points), flow.log_prob(torch.tensor(points).float()))
    assert flow.decode(rng.normal(size=(3, 2))).dtype == torch.float32
    assert flow.loss(points).dtype == torch.float32
    gaussian = va.VAE((8, 8), 2, likelihood="gaussian", hidden=(8,))
    assert torch.isfinite(gaussian.loss(rng.normal(size=(4, 8, 8)))).all()
    assert gaussian.decode(rng.normal(size=(3, 2))).dtype == torch.float32
    assert _vae().decode(np.zeros((2, 4))).shape == (2, 8, 8)
    quantizer = vq.VectorQuantizer(4, 2)
    out = quantizer(rng.normal(size=(5, 2)))
    assert out.quantized.dtype == torch.float32 and out.indices.shape == (5,)
    assert quantizer.nearest(rng.normal(size=(5, 2))).shape == (5,)
    critic = gn.Discriminator((2,), (8,))
    penalty = gn.gradient_penalty(critic, points[:3], rng.normal(size=(3, 2)))
    assert penalty.dtype == torch.float32 and torch.isfinite(penalty)
    assert critic(points).dtype == torch.float32
    assert gn.Generator(2, (2,), (8,))(rng.normal(size=(3, 2))).shape == (3, 2)
    assert torch.isfinite(_gan().loss(points))
    real = ae.Autoencoder((8, 8), 2, hidden=(8,))
    assert real.loss(rng.normal(size=(4, 8, 8))).dtype == torch.float32
    assert real.decode(np.zeros((1, 2))).dtype == torch.float32
    towers = cl.TwoTower(torch.nn.Linear(3, 2), torch.nn.Linear(3, 2))
    assert torch.isfinite(towers.loss((rng.normal(size=(4, 3)), rng.normal(size=(4, 3)))))
    assert towers.embed(rng.normal(size=(4, 3))).dtype == torch.float32
    # a float64 model keeps float64: inputs take the model's dtype, whichever it is
    double = _flow().double().eval()
    assert double.log_prob(points.astype(np.float32)).dtype == torch.float64


def test_grey_levels_are_accepted_in_every_lossless_form():
    """Integer tensors, whole-number floats, NumPy arrays of any int or float dtype,
    booleans and a singleton channel axis all give the integer images themselves."""
    x = _levels()
    forms = {
        "long": x, "int32": x.int(), "uint8": x.to(torch.uint8), "float": x.float(),
        "double": x.double(), "half": x.half(), "channel": x[:, None],
        "numpy int64": x.numpy(), "numpy uint16": x.numpy().astype(np.uint16),
        "numpy float64": x.numpy().astype(np.float64), "numpy channel": x.numpy()[:, None],
        "list": x.tolist(),
    }  # fmt: skip
    for name, form in forms.items():
        got = checks.images(form, "x", (8, 8), "levels", 17)
        assert got.dtype == torch.long and torch.equal(got, x), name
    assert torch.equal(checks.images(x > 8, "x", (8, 8), "levels", 17), (x > 8).long())
    unit = checks.unit_images(x.numpy().astype(np.float64), "x", (8, 8), 17)
    assert unit.dtype == torch.float32 and torch.equal(unit, x.float() / 16)
    # SimCLR's images of any size take the channel axis too
    assert checks.images(x[:, None], "x", None, "levels", 17, ndim=3).shape == (4, 8, 8)
    # inside a training step (no value checks) whole floats still become the levels
    with checks.trusted():
        assert torch.equal(checks.images(x.float(), "x", (8, 8), "levels", 17), x)


def test_flow_loss_and_log_prob_take_the_same_inputs():
    """Flow.loss took only integer images while log_prob took dequantized floats too;
    both now take integer images (any lossless form) and dequantized values, alike
    whether or not the values are checked (a training step)."""
    torch.manual_seed(0)
    flow = configs.flow(QUICK).eval()
    x = QUICK.x_test[:4]
    u = x + torch.rand(x.shape)  # dequantized
    with torch.no_grad():
        for batch in (x, x.float(), x.numpy(), x[:, None]):
            torch.manual_seed(1)
            a = flow.loss(batch)
            torch.manual_seed(1)
            b = -flow.log_prob(batch).mean()
            assert torch.equal(a, b)
        assert torch.equal(flow.loss(u), -flow.log_prob(u).mean())
        for batch in (x, x.float(), u):
            checked = flow.log_prob(batch, generator=torch.Generator().manual_seed(2))
            with checks.trusted():
                fast = flow.log_prob(batch, generator=torch.Generator().manual_seed(2))
            assert torch.equal(checked, fast)
        whole = flow.log_prob(x.float(), generator=torch.Generator().manual_seed(3))
        levels = flow.log_prob(x, generator=torch.Generator().manual_seed(3))
        assert torch.equal(whole, levels)
        assert torch.equal(flow.log_prob(u), flow.log_prob(u.numpy()))


def test_gaussian_tv_is_elementwise_for_arrays():
    mus = np.array([0.0, 0.5, 2.0])
    sigmas = np.array([[1.0], [2.0]])
    tv = divergences.gaussian_tv(0.0, 1.0, mus, sigmas)
    assert tv.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            assert tv[i, j] == divergences.gaussian_tv(0.0, 1.0, mus[j], sigmas[i, 0])
    assert isinstance(divergences.gaussian_tv(0, 1, 1, 1), float)
    assert divergences.gaussian_tv(np.float32(0), 1, torch.tensor(1.0), 1) == pytest.approx(
        divergences.gaussian_tv(0, 1, 1, 1)
    )


def test_infinite_nll_gives_infinite_bits_per_dim():
    """A model that gives an example probability 0 (the memorizer on new data) has NLL
    +inf: bits/dim is then +inf, a legitimate answer (documented), while NaN is refused."""
    assert metrics.bits_per_dim([INF, 1.0], 64) == INF
    assert metrics.nats_to_bits(-INF) == -INF
    assert metrics.nats_to_bits(np.float32(math.log(2))) == pytest.approx(1.0)
    assert isinstance(metrics.nats_to_bits(np.float64(1.0)), float)
    assert torch.equal(metrics.nats_to_bits(torch.tensor([0.0])), torch.tensor([0.0]))


def test_kl_from_samples_refuses_what_used_to_broadcast_to_zero():
    logp = np.random.default_rng(0).normal(size=5)
    assert divergences.kl_from_samples(logp, logp).value == 0.0
    assert divergences.kl_from_samples(logp[:, None], logp[:, None]).value == 0.0
    with pytest.raises(ValueError, match="same shape"):
        divergences.kl_from_samples(logp, logp[:, None])


def test_class_conditional_samples_are_one_tensor_and_labels_come_separately():
    cc = _class_conditional()
    x = cc.sample(6, generator=torch.Generator().manual_seed(0))
    xl, y = cc.sample_with_labels(6, generator=torch.Generator().manual_seed(0))
    assert isinstance(x, torch.Tensor) and torch.equal(x, xl) and y.shape == (6,)
    labels = torch.tensor([1, 0, 1, 1])
    asked, got = cc.sample_with_labels(4, labels=labels, generator=torch.Generator().manual_seed(1))
    assert torch.equal(got, labels)
    # each sample is a training example of its own class (the memorizer copies)
    train, classes = _levels(20), torch.arange(20) % 2
    for image, label in zip(asked, got, strict=True):
        same = (train == image).flatten(1).all(1)
        assert same.any() and (classes[same] == label).all()
    assert cc.sample(3, labels=np.array([0, 0, 1])).shape == (3, 8, 8)


def test_sample_zero_gives_an_empty_batch_for_every_sampler():
    g = torch.Generator().manual_seed(0)
    assert _vae().sample(0, generator=g).shape == (0, 8, 8)
    assert _flow().sample(0).shape == (0, 2)
    assert _made().sample(0).shape == (0, 3, 4)
    assert configs.vqvae(QUICK).sample(0).shape == (0, 8, 8)
    assert _gan().sample(0).shape == (0, 2)
    assert _fitted(bl.Memorizer()).sample(0).shape == (0, 8, 8)
    assert _fitted(bl.GaussianMixture(2, seed=0)).sample(0).shape == (0, 8, 8)
    cc = _class_conditional()
    assert cc.sample(0).shape == (0, 8, 8)
    x, y = cc.sample_with_labels(0)
    assert len(x) == 0 and len(y) == 0


def test_actnorm_from_one_example_or_a_constant_feature_stays_finite():
    flow = _flow()
    with pytest.warns(RuntimeWarning, match="one example"):
        lp = flow.log_prob(torch.zeros(1, 2))
    assert torch.isfinite(lp).all()
    assert torch.isfinite(flow.log_prob(torch.randn(5, 2))).all()
    flow = _flow()
    with pytest.warns(RuntimeWarning, match="constant"):
        flow.log_prob(torch.stack([torch.ones(8), torch.randn(8)], 1))
    # the constant feature keeps scale 1 instead of exp(13.8)
    assert flow.transforms[0].log_scale[0].item() == 0.0
    with pytest.warns(RuntimeWarning, match="one example"):
        history = train.fit(_flow(), torch.randn(32, 2), epochs=1, batch_size=1)
    assert math.isfinite(history.train_loss[-1])


def test_a_contrastive_fit_never_gets_a_batch_of_one():
    """N % batch_size == 1 used to crash after a whole epoch; the short batch is left out."""
    h = train.fit(_simclr(), torch.rand(9, 8, 8), epochs=1, batch_size=4)
    assert math.isfinite(h.train_loss[0])


def test_infinite_objectives_in_pareto_tools():
    assert list(pareto.pareto_front([[1, INF], [2, 0]])) == [0, 1]
    assert int(pareto.scalarize([[3, INF], [2, 0]], [0.0]).index[0]) == 1
    assert int(pareto.scalarize([[3, INF], [2, 0]], [1.0]).index[0]) == 1


def test_methods_leave_the_mode_as_they_found_it():
    model = _simclr().train()
    model.embed(torch.rand(2, 8, 8))
    assert model.training
    made = _made().train()
    made.sample(1)
    assert made.training
    clf = DigitClassifier().train()
    clf.probs(torch.rand(2, 8, 8))
    assert clf.training


def test_value_checks_are_skipped_only_inside_trusted():
    assert checks.values_checked()
    with checks.trusted():
        assert not checks.values_checked()
        checks.tensor(torch.tensor([NAN]), "x")  # no value check in a training step
    with pytest.raises(ValueError, match="NaN"):
        checks.tensor(torch.tensor([NAN]), "x")


def test_a_wrong_type_is_also_a_type_error():
    with pytest.raises(TypeError, match="epochs"):
        train.fit(Linear(), torch.zeros(8, 3), epochs="3")


# ------------------------------------------------------------- property tests

probabilities = st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=8).filter(
    lambda v: sum(v) > 1e-3
)


@settings(max_examples=60, deadline=None)
@given(probabilities, probabilities)
def test_divergences_of_valid_distributions_are_never_nan(p, q):
    k = min(len(p), len(q))
    p, q = np.array(p[:k]), np.array(q[:k])
    if p.sum() < 1e-3 or q.sum() < 1e-3:
        return
    p, q = p / p.sum(), q / q.sum()
    for value in (divergences.kl_divergence(p, q), divergences.js_divergence(p, q),
                  divergences.total_variation(p, q),
                  divergences.f_divergence(p, q, "hellinger")):  # fmt: skip
        assert not math.isnan(value) and value >= 0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=2, max_size=6), st.floats(-5, 5))
def test_kl_to_standard_normal_is_finite_and_nonnegative(mu, logvar):
    mu = torch.tensor([mu])
    kl = va.kl_to_standard_normal(mu, torch.full_like(mu, logvar))
    assert torch.isfinite(kl).all() and (kl >= -1e-6).all()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 1000)), min_size=1, max_size=20),
       st.lists(st.integers(1, 100), min_size=1, max_size=5))  # fmt: skip
def test_scalarize_never_picks_a_dominated_point(points, lambdas):
    """With lambda > 0 the minimiser of L1 + lambda L2 is on the Pareto front."""
    pts = np.array(points, dtype=float)
    result = pareto.scalarize(pts, np.array(lambdas, dtype=float))
    front = set(pareto.pareto_front(pts).tolist())
    for i in result.index:
        better_or_equal = (pts[:, 0] <= pts[i, 0]) & (pts[:, 1] <= pts[i, 1])
        strictly = (pts[:, 0] < pts[i, 0]) | (pts[:, 1] < pts[i, 1])
        assert not (better_or_equal & strictly).any()
        assert int(i) in front


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_flow_log_prob_is_finite_on_valid_data(n, seed):
    x = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))
    flow = _flow().eval()
    assert torch.isfinite(flow.log_prob(x)).all()
