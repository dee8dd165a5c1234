"""Benchmarks of selfsup against the libraries a reader would otherwise use.

    python benchmarks/run.py            # every comparison, then the whole book
    python benchmarks/run.py --smoke    # each comparison once on tiny inputs (make test)
    python benchmarks/run.py --no-book  # skip executing the chapters

Each comparison runs selfsup (A) and the peer (B) in this one process, interleaved
A, B, A, B, ... over several rounds, after one warm-up call each. It reports the
median time, the ratio A/B, the peak resident memory above the baseline during the
call, and a value check that both computed the same thing. Results go to
``benchmarks/results.json`` and ``benchmarks/results.md`` (and the book's
"Performance" page is built from them); ``--smoke`` writes nothing unless ``--out``.

Timings are measurements, not tests: nothing fails on a slow machine. A failed value
check is an error (exit status 1).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selfsup import divergences as D  # noqa: E402
from selfsup import metrics as M  # noqa: E402

import peers_diffusion  # noqa: E402 (beside this file)

# ---------------------------------------------------------------- measurement


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(fn: Callable[[], object]) -> tuple[float, int, object]:
    """(seconds, peak RSS above the start in bytes, result) of one call; the peak is
    sampled every millisecond by a thread."""
    base, peak, done = _rss(), [0], threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.001)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    done.set()
    thread.join()
    return seconds, max(peak[0], _rss()) - base, result


def compare(name, ours, peer, check, rounds, peer_name, note=""):
    """Interleave ``ours`` and ``peer`` over ``rounds``; ``check(a, b)`` returns
    (ok, description of the value check)."""
    a0, b0 = ours(), peer()  # warm-up (allocations, lazy imports)
    ok, detail = check(a0, b0)
    times = {"selfsup": [], peer_name: []}
    memory = {"selfsup": 0, peer_name: 0}
    for _ in range(rounds):
        for label, fn in (("selfsup", ours), (peer_name, peer)):
            seconds, mem, _ = measure(fn)
            times[label].append(seconds)
            memory[label] = max(memory[label], mem)
    med = {k: statistics.median(v) for k, v in times.items()}
    row = {
        "comparison": name,
        "peer": peer_name,
        "selfsup_s": med["selfsup"],
        "peer_s": med[peer_name],
        "ratio": med["selfsup"] / med[peer_name],
        "selfsup_peak_mb": memory["selfsup"] / 2**20,
        "peer_peak_mb": memory[peer_name] / 2**20,
        "rounds": rounds,
        "values_match": bool(ok),
        "check": detail,
        "note": note,
    }
    print(
        f"{name:<42} vs {peer_name:<26} {row['selfsup_s'] * 1e3:9.2f} ms "
        f"{row['peer_s'] * 1e3:9.2f} ms  ratio {row['ratio']:5.2f}  "
        f"{'ok' if ok else 'VALUE MISMATCH'}: {detail}",
        flush=True,
    )
    return row


def close(a, b, rtol, atol=0.0):
    a, b = float(a), float(b)
    return abs(a - b) <= atol + rtol * abs(b), f"{a:.6g} vs {b:.6g}"


# ---------------------------------------------------------------- comparisons


def bench_flows(smoke: bool, rounds: int):
    """RealNVP on 2-D moons: selfsup's Flow of 8 affine couplings against normflows'
    MaskedAffineFlow, with the same s and t networks (one trunk per coupling, shared
    weights), the same batches and the same Adam steps: one epoch each."""
    import normflows as nf
    from sklearn.datasets import make_moons

    from selfsup.models.flows import AffineCoupling, Flow

    n, batch, hidden = (512, 128, (16, 16)) if smoke else (8192, 256, (64, 64))
    x = torch.tensor(make_moons(n, noise=0.05, random_state=0)[0], dtype=torch.float32)
    masks = [torch.tensor([1.0, 0.0]) if i % 2 == 0 else torch.tensor([0.0, 1.0]) for i in range(8)]

    def ours_model():
        torch.manual_seed(0)
        layers = []
        for m in masks:
            layer = AffineCoupling(m, hidden, scale_bound=None)
            for p in layer.net.parameters():  # not the identity start: a real first epoch
                nn.init.normal_(p, std=0.1)
            layers.append(layer)
        return Flow(layers, (2,))

    class Head(nn.Module):
        """normflows calls s and t separately; each head runs the shared trunk.

        normflows' couplings map latent to data, ``x = b z + (1-b)(z e^s + t)``, and
        evaluate densities with the inverse; selfsup's map data to latent,
        ``z = b x + (1-b)(x e^s + t)``. The same function in normflows' form needs
        ``s' = -s`` and ``t' = -t e^{-s}``: these heads compute exactly that."""

        def __init__(self, coupling, which):
            super().__init__()
            self.coupling, self.which = coupling, which

        def forward(self, z):
            s, t = self.coupling._st(z)
            return -s if self.which == "s" else -t * torch.exp(-s)

    def peer_model():
        ours = ours_model()  # the same initial weights
        flows = []
        for layer in reversed(ours.transforms):  # normflows lists latent -> data
            flows.append(
                nf.flows.MaskedAffineFlow(layer.mask, t=Head(layer, "t"), s=Head(layer, "s"))
            )
        q0 = nf.distributions.DiagGaussian(2, trainable=False)
        return nf.NormalizingFlow(q0, flows)

    def epoch(model, loss_fn):
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for i in range(0, n, batch):
            loss = loss_fn(model, x[i : i + batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            return float(loss_fn(model, x))

    ours = lambda: epoch(ours_model(), lambda m, b: m.loss(b))  # noqa: E731
    peer = lambda: epoch(peer_model(), lambda m, b: m.forward_kld(b))  # noqa: E731
    return compare(
        "RealNVP, 8 couplings, one epoch on moons",
        ours,
        peer,
        lambda a, b: close(a, b, rtol=1e-4),
        rounds,
        "normflows MaskedAffineFlow",
        note=(
            "normflows takes s and t as two modules, so the shared trunk runs twice per "
            "coupling; selfsup computes both from one pass."
        ),
    )


def bench_vq(smoke: bool, rounds: int):
    """VQ with EMA codebook updates, 4096 vectors of 64 dims, 512 codes, forward and
    backward, in training mode, from the same codebook."""
    from pythae.models.vq_vae.vq_vae_config import VQVAEConfig
    from pythae.models.vq_vae.vq_vae_utils import QuantizerEMA
    from vector_quantize_pytorch import VectorQuantize

    from selfsup.models.vqvae import VectorQuantizer

    n, dim, k = (256, 8, 32) if smoke else (4096, 64, 512)
    g = torch.Generator().manual_seed(0)
    z = torch.randn(n, dim, generator=g)
    codebook = torch.randn(k, dim, generator=g)

    def ours():
        vq = VectorQuantizer(k, dim, beta=0.25, ema=True, decay=0.99).train()
        vq.codebook.copy_(codebook)
        vq.ema_sum.copy_(codebook)
        zz = z.clone().requires_grad_(True)
        out = vq(zz)
        (out.quantized.square().mean() + out.loss).backward()
        return out.indices, out.loss.item()

    def lucidrains():
        vq = VectorQuantize(
            dim=dim, codebook_size=k, decay=0.99, commitment_weight=0.25, kmeans_init=False,
            rotation_trick=False,
        ).train()  # fmt: skip
        vq._codebook.embed.data.copy_(codebook[None])
        vq._codebook.embed_avg.data.copy_(codebook[None])
        zz = z.clone()[None].requires_grad_(True)
        quantized, indices, loss = vq(zz)
        (quantized.square().mean() + loss.sum()).backward()
        return indices[0], loss.sum().item()

    def pythae():
        config = VQVAEConfig(
            input_dim=(1, 8, 8), latent_dim=dim, num_embeddings=k, commitment_loss_factor=0.25,
            decay=0.99, use_ema=True,
        )  # fmt: skip
        config.embedding_dim = dim  # pythae's VQVAE sets this before building its quantizer
        vq = QuantizerEMA(config).train()
        vq.embeddings.data.copy_(codebook)
        vq.ema_embed.data.copy_(codebook)
        zz = z.clone().reshape(n, 1, 1, dim).requires_grad_(True)
        out = vq(zz)
        (out.quantized_vector.square().mean() + out.loss).backward()
        return out.quantized_indices.reshape(-1), out.loss.item()

    def check(a, b):
        same = torch.equal(a[0].reshape(-1).long(), b[0].reshape(-1).long())
        ok, detail = close(a[1], b[1], rtol=1e-5)
        return same and ok, f"indices {'equal' if same else 'DIFFER'}, loss {detail}"

    name = f"VQ-EMA, {n}x{dim}, {k} codes, fwd+bwd"
    return [
        compare(name, ours, lucidrains, check, rounds, "vector-quantize-pytorch"),
        compare(name, ours, pythae, check, rounds, "pythae QuantizerEMA"),
    ]


SCIPY_FID_NOTE = (
    "at parity within run-to-run noise (0.96 to 1.05 between runs): both sides are dominated "
    "by the same two 10k x 64 covariance products; the 64 x 64 matrix square root is a small part."
)


def bench_fid(smoke: bool, rounds: int):
    """FID from features: selfsup.metrics.fid against torchmetrics (the identity as
    the custom feature module) and against the textbook formula with scipy's sqrtm."""
    from scipy import linalg
    from torchmetrics.image.fid import FrechetInceptionDistance

    rows = []
    for dim in [8] if smoke else [64, 2048]:
        reps = rounds if dim < 1000 else min(rounds, 3)  # scipy's sqrtm takes ~15 s at 2048
        n = 300 if smoke else 10_000
        rng = np.random.default_rng(dim)
        a = rng.normal(size=(n, dim))
        b = rng.normal(size=(n, dim)) @ (np.eye(dim) + 0.1 * rng.normal(size=(dim, dim))) + 0.1
        ta, tb = torch.tensor(a), torch.tensor(b)

        class Identity(nn.Module):
            num_features = dim

            def forward(self, x):
                return x

        def torchmetrics_fid(ta=ta, tb=tb, Identity=Identity):
            metric = FrechetInceptionDistance(feature=Identity(), normalize=True)
            metric.update(ta, real=True)
            metric.update(tb, real=False)
            return float(metric.compute())

        def scipy_fid(a=a, b=b):
            mu_a, mu_b = a.mean(0), b.mean(0)
            sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
            root = linalg.sqrtm(sa @ sb).real
            return float(((mu_a - mu_b) ** 2).sum() + np.trace(sa + sb - 2 * root))

        ours = lambda a=a, b=b: M.fid(a, b)  # noqa: E731
        name = f"FID, {n} x {dim} features"
        rows.append(
            compare(
                name,
                ours,
                torchmetrics_fid,
                lambda x, y: close(x, y, 1e-5, 1e-8),
                reps,
                "torchmetrics FID",
            )  # fmt: skip
        )
        rows.append(
            compare(
                name,
                ours,
                scipy_fid,
                lambda x, y: close(x, y, 1e-5, 1e-8),
                reps,
                "scipy.linalg.sqrtm",
                note=SCIPY_FID_NOTE if dim < 1000 else "",
            )  # fmt: skip
        )
    return rows


def bench_ot(smoke: bool, rounds: int):
    """MMD and Wasserstein at n = 2000 against POT."""
    import ot

    n = 200 if smoke else 2000
    rng = np.random.default_rng(0)
    x2, y2 = rng.normal(size=(n, 2)), rng.normal(size=(n, 2)) * 1.3 + 0.5
    x1, y1 = x2[:, 0], y2[:, 0]
    w = np.full(n, 1.0 / n)
    rows = []

    def pot_w1_exact():  # the LP solver on the |x - y| cost, 1-D samples
        return float(ot.emd2(w, w, ot.dist(x1[:, None], y1[:, None], metric="euclidean")))

    rows.append(
        compare(
            f"Wasserstein-1, 1-D, n = {n}",
            lambda: D.wasserstein(x1, y1, p=1),
            pot_w1_exact,
            lambda a, b: close(a, b, 1e-6),
            rounds,
            "POT ot.emd2",
            note="a sort against a general LP solver; ot.wasserstein_1d (next row) is the like-for-like peer",
        )  # fmt: skip
    )
    rows.append(
        compare(
            f"Wasserstein-1, 1-D, n = {n}",
            lambda: D.wasserstein(x1, y1, p=1),
            lambda: float(ot.wasserstein_1d(x1, y1, p=1)),
            lambda a, b: close(a, b, 1e-9),
            rounds,
            "POT ot.wasserstein_1d",
        )  # fmt: skip
    )
    proj = 50 if smoke else 500

    def pot_sliced():
        return float(ot.sliced_wasserstein_distance(x2, y2, n_projections=proj, p=2, seed=0))

    rows.append(
        compare(
            f"sliced W2, 2-D, n = {n}, {proj} directions",
            lambda: D.wasserstein(x2, y2, p=2, n_projections=proj),
            pot_sliced,
            lambda a, b: close(a, b, 0.05),
            rounds,
            "POT sliced_wasserstein_distance",
            note="random directions differ: the two Monte Carlo estimates agree to 5%",
        )  # fmt: skip
    )
    h = 1.0

    def pot_mmd():  # the unbiased estimator on POT's squared-distance matrices
        kxx = np.exp(-ot.dist(x2, x2) / (2 * h * h))
        kyy = np.exp(-ot.dist(y2, y2) / (2 * h * h))
        kxy = np.exp(-ot.dist(x2, y2) / (2 * h * h))
        return float(
            (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
            + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
            - 2 * kxy.mean()
        )

    rows.append(
        compare(
            f"MMD^2, Gaussian kernel, 2-D, n = {n}",
            lambda: D.mmd(x2, y2, bandwidth=h),
            pot_mmd,
            lambda a, b: close(a, b, 1e-9, 1e-12),
            rounds,
            "POT ot.dist + kernel sums",
        )  # fmt: skip
    )
    return rows


def bench_nt_xent(smoke: bool, rounds: int):
    """NT-Xent against pytorch-metric-learning's ``NTXentLoss`` (the two views of an
    example share a label), forward and backward."""
    from pytorch_metric_learning.losses import NTXentLoss

    from selfsup.models.contrastive import nt_xent

    rows = []
    peer_loss = NTXentLoss(temperature=0.5)
    # pytorch-metric-learning builds its pairs in memory cubic in N: at N = 1024 it asks
    # for 34 GB, so the comparison stops at N = 256.
    for n in [16] if smoke else [64, 256]:
        g = torch.Generator().manual_seed(n)
        z1, z2 = torch.randn(n, 128, generator=g), torch.randn(n, 128, generator=g)
        labels = torch.arange(n).repeat(2)

        def ours(z1=z1, z2=z2):
            a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
            loss = nt_xent(a, b, 0.5)
            loss.backward()
            return float(loss.detach())

        def peer(z1=z1, z2=z2, labels=labels):
            z = torch.cat([z1, z2]).requires_grad_()
            loss = peer_loss(z, labels)
            loss.backward()
            return float(loss.detach())

        rows.append(
            compare(f"NT-Xent, N = {n}, d = 128, forward + backward", ours, peer,
                    lambda a, b: close(a, b, 1e-5), rounds, "pytorch-metric-learning")  # fmt: skip
        )
    return rows


def bench_before_after(smoke: bool, rounds: int):
    """The library against its own earlier code paths, kept here as the reference: the
    flow's invertible linear layer (factors applied to x, against building the dense
    W = P L U at every pass), autoregressive sampling (noise drawn once a call, against
    torch.multinomial and a read of the device at every pixel; the pixel transformer's
    key/value cache, against all d tokens through the network for every position) and
    the memorisation
    check (distances in blocks of rows, against the full n x m matrix)."""
    import numpy as np

    from selfsup.models.autoregressive import PixelCNN
    from selfsup.models.flows import InvertibleLinear

    rows = []
    # The flow's linear layer, forward and backward, at the 8x8 digits and at MNIST's 28x28.
    for d, b in [(64, 16)] if smoke else [(64, 128), (784, 128)]:
        layer = InvertibleLinear(d, seed=1)
        x = torch.randn(b, d, generator=torch.Generator().manual_seed(d))

        def after(layer=layer, x=x):
            layer.zero_grad(set_to_none=True)
            y, _ = layer(x)
            y.square().sum().backward()
            return y.detach()

        def before(layer=layer, x=x):
            layer.zero_grad(set_to_none=True)
            y = x @ layer.weight().T
            y.square().sum().backward()
            return y.detach()

        rows.append(compare(
            f"flow's linear layer, d = {d}, B = {b}, step", after, before,
            lambda a, b: close((a - b).abs().max(), 0, 0, 1e-3 * float(b.abs().max())),
            rounds, "before: dense W each pass"))  # fmt: skip

    # Autoregressive sampling: the same samples, without a device read per pixel.
    for shape, levels, n in [((4, 4), 3, 4)] if smoke else [((8, 8), 17, 64), ((28, 28), 2, 16)]:
        torch.manual_seed(0)
        model = PixelCNN(shape, levels, channels=32, layers=3).eval()

        def after_sample(model=model, n=n):
            return model.sample(n, generator=torch.Generator().manual_seed(0))

        @torch.no_grad()
        def before_sample(model=model, n=n, shape=shape):
            g = torch.Generator().manual_seed(0)
            flat = torch.zeros(n, model.d, dtype=torch.long)
            mask = torch.zeros(model.d, dtype=torch.bool)
            for pos in model.order.tolist():
                if mask[pos]:
                    continue
                probs = torch.softmax(model.logits(flat)[:, pos], -1)
                flat[:, pos] = torch.multinomial(probs, 1, generator=g).squeeze(1)
            return flat.reshape(n, *shape)

        rows.append(compare(
            f"PixelCNN samples, {shape[0]}x{shape[1]}, {levels} levels, n = {n}",
            after_sample, before_sample,
            lambda a, b: (bool(torch.equal(a, b)), "identical samples" if torch.equal(a, b)
                          else "samples differ"),
            rounds, "before: multinomial per pixel"))  # fmt: skip

    # The pixel transformer: one token per pass against a key/value cache, against the
    # whole network over all d tokens for every position (the generic sampler).
    from unittest import mock

    from selfsup.models.autoregressive import AutoregressiveModel, PixelTransformer

    for shape, levels, n in [((4, 4), 3, 4)] if smoke else [((8, 8), 17, 64), ((28, 28), 2, 4)]:
        torch.manual_seed(0)
        model = PixelTransformer(shape, levels, dim=64, heads=4, layers=2).eval()
        empty = torch.zeros(n, *shape, dtype=torch.long)
        nothing = torch.zeros(shape, dtype=torch.bool)

        def cached(model=model, empty=empty, nothing=nothing):
            return model.inpaint(empty, nothing, generator=torch.Generator().manual_seed(0))

        def full(model=model, empty=empty, nothing=nothing):
            with mock.patch.object(PixelTransformer, "_fill", AutoregressiveModel._fill):
                return model.inpaint(empty, nothing, generator=torch.Generator().manual_seed(0))

        rows.append(compare(
            f"pixel transformer samples, {shape[0]}x{shape[1]}, {levels} levels, n = {n}",
            cached, full,
            lambda a, b: (bool((a == b).float().mean() > 0.99),
                          f"{float((a == b).float().mean()):.1%} of pixels identical "
                          "(float32 round-off can flip a near-tie, and the rest follows)"),
            max(1, rounds // 3), "before: all d tokens each position"))  # fmt: skip

    # MADE: the first layer's sum updated one column per draw, against the first layer
    # recomputed over all d positions for every draw (both compute only the drawn
    # position's logits).
    import torch.nn.functional as F

    from selfsup.models.autoregressive import MADE

    def first_layer_each_draw(self, flat, known, todo, noise):
        out, step = self.layers[-1], self.levels
        weight = out.weight * out.mask
        for i, pos in enumerate(todo):
            rows = slice(pos * step, (pos + 1) * step)
            logits = F.linear(self._hidden(flat), weight[rows], out.bias[rows])
            flat[:, pos] = (torch.softmax(logits, -1) / noise.next(i)).argmax(-1)

    for shape, levels, n in [((4, 4), 3, 4)] if smoke else [((8, 8), 17, 64), ((28, 28), 2, 16)]:
        torch.manual_seed(0)
        model = MADE(shape, levels, hidden=(512,)).eval()

        def incremental(model=model, n=n):
            return model.sample(n, generator=torch.Generator().manual_seed(0))

        def recomputed(model=model, n=n):
            with mock.patch.object(MADE, "_fill", first_layer_each_draw):
                return model.sample(n, generator=torch.Generator().manual_seed(0))

        rows.append(compare(
            f"MADE samples, {shape[0]}x{shape[1]}, {levels} levels, n = {n}",
            incremental, recomputed,
            lambda a, b: (bool((a == b).float().mean() > 0.99),
                          f"{float((a == b).float().mean()):.1%} of pixels identical "
                          "(float32 round-off can flip a near-tie, and the rest follows)"),
            rounds, "before: first layer recomputed each draw"))  # fmt: skip

    # Memorisation: the peak memory of the distances.
    n = 300 if smoke else 10_000
    rng = np.random.default_rng(0)
    samples, train, test = (rng.random((n, 64)) for _ in range(3))

    def before_memorisation():
        def nearest(a, b):
            sq = (a**2).sum(1)[:, None] + (b**2).sum(1)[None] - 2 * a @ b.T
            return np.sqrt(np.maximum(sq, 0)).min(1)

        ds, dt = nearest(samples, train), nearest(test, train)
        return float(np.median(ds)), float(np.median(dt))

    rows.append(compare(
        f"memorisation, {n} x {n} x 64", lambda: M.memorisation(samples, train, test)[:2],
        before_memorisation, lambda a, b: close(a[0], b[0], 1e-9), max(1, rounds // 3),
        "before: the full n x m matrix", note="compare the peak memory"))  # fmt: skip
    return rows


def bench_ode(smoke: bool, rounds: int):
    """Flow matching's ODE against torchdiffeq's fixed-step solvers, with the same
    velocity network and the same steps: sampling (the midpoint method carried from
    noise to data), and the exact log-likelihood of the instantaneous change of
    variables, FFJORD's brute-force divergence (one backward pass per dimension) through
    torchdiffeq's ``odeint`` against selfsup's batched vector-Jacobian products.

    torchcfm's conditional flow matching loss is not compared: torchcfm depends on
    torchdyn, which requires torchvision."""
    import torchdiffeq

    from selfsup.models.flow_matching import VelocityMLP, ode_log_prob, odeint

    rows = []
    d, n, steps = (4, 32, 4) if smoke else (64, 1000, 50)
    torch.manual_seed(0)
    net = VelocityMLP(d, (16,) if smoke else (256, 256))
    for p in net.parameters():  # not the zero start of the output layer
        nn.init.normal_(p, std=0.05)
    z = torch.randn(n, d, generator=torch.Generator().manual_seed(1))
    grid = torch.linspace(0, 1, steps + 1)

    def field(y, s):
        return net(y, y.new_full((len(y),), s))

    def ours():
        with torch.no_grad():
            return odeint(field, z, 0.0, 1.0, steps, "midpoint")

    def peer():
        with torch.no_grad():
            return torchdiffeq.odeint(lambda t, y: net(y, t.expand(len(y))), z, grid,
                                      method="midpoint")[-1]  # fmt: skip

    def same(a, b):
        err = float((a - b).abs().max())
        return err < 1e-5, f"max |difference| {err:.1e}"

    rows.append(compare(f"flow matching sampling, {steps} midpoint steps, d={d}", ours, peer,
                        same, rounds, "torchdiffeq odeint"))  # fmt: skip

    d, n, steps = (3, 16, 2) if smoke else (16, 256, 10)
    torch.manual_seed(0)
    net = VelocityMLP(d, (16,) if smoke else (128, 128))
    for p in net.parameters():
        nn.init.normal_(p, std=0.05)
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(2))

    def ffjord_dynamics(t, state):
        # FFJORD's augmented state (y, -int div) with the brute-force exact divergence.
        y, _ = state
        with torch.enable_grad():
            y = y.detach().requires_grad_(True)
            v = net(y, t.expand(len(y)))
            div = 0
            for i in range(d):
                div = div + torch.autograd.grad(v[:, i].sum(), y, retain_graph=True)[0][:, i]
        return v.detach(), div.detach()

    def ours_ll():
        with torch.no_grad():
            return ode_log_prob(net, x, steps=steps, solver="midpoint")

    def peer_ll():
        with torch.no_grad():
            back = torch.linspace(1, 0, steps + 1)
            y0, acc = torchdiffeq.odeint(ffjord_dynamics, (x, x.new_zeros(n)), back,
                                         method="midpoint")  # fmt: skip
            y0, acc = y0[-1], acc[-1]
            return -0.5 * (y0**2).sum(1) - 0.5 * d * math.log(2 * math.pi) + acc

    def same_ll(a, b):
        err = float((a - b).abs().max())
        return err < 1e-4, f"max |difference| {err:.1e} nats"

    rows.append(compare(f"ODE log-likelihood, exact divergence, {steps} midpoint steps, "
                        f"d={d}", ours_ll, peer_ll, same_ll, rounds,
                        "FFJORD-style torchdiffeq odeint",
                        note="FFJORD's brute-force divergence takes one backward pass per "
                        "dimension; selfsup batches the d products with vmap."))  # fmt: skip
    return rows


def bench_book(smoke: bool) -> list[dict]:
    """Each chapter's wall time in the quick profile, executed as a notebook."""
    import jupytext
    from nbclient import NotebookClient

    env = {"SELFSUP_PROFILE": "quick", "SELFSUP_PROGRESS": "0"}
    os.environ.update(env)
    chapters = sorted((ROOT / "chapters").glob("*.md"))
    if smoke:
        chapters = [ROOT / "chapters" / "pareto.md"]
    rows = []
    for path in chapters:
        nb = jupytext.read(path)
        start = time.perf_counter()
        with __import__("tempfile").TemporaryDirectory() as tmp:
            NotebookClient(nb, timeout=900, kernel_name="python3", resources={
                "metadata": {"path": tmp}}).execute()  # fmt: skip
        seconds = time.perf_counter() - start
        rows.append({"chapter": path.stem, "seconds": seconds})
        print(f"chapter {path.stem:<16} {seconds:7.1f} s", flush=True)
    return rows


# ---------------------------------------------------------------- report


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        "# selfsup benchmarks",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['torch_threads']} torch thread(s), "
        f"GPU: {m['gpu'] or 'none'}; Python {m['python']}, torch {m['torch']}; {m['date']}.",
        "",
        "| comparison | peer | selfsup [ms] | peer [ms] | ratio | peak MB (selfsup / peer) "
        "| values |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results["comparisons"]:
        lines.append(
            f"| {r['comparison']} | {r['peer']} | {1e3 * r['selfsup_s']:.2f} | "
            f"{1e3 * r['peer_s']:.2f} | {r['ratio']:.2f} | {r['selfsup_peak_mb']:.1f} / "
            f"{r['peer_peak_mb']:.1f} | {'match' if r['values_match'] else 'MISMATCH'}: "
            f"{r['check']} |"
        )
    notes = [r for r in results["comparisons"] if r["note"]]
    if notes:
        lines += ["", "Notes:", ""]
        lines += [f"- {r['comparison']} vs {r['peer']}: {r['note']}" for r in notes]
    if results.get("book"):
        total = sum(r["seconds"] for r in results["book"])
        lines += ["", "| chapter | quick profile [s] |", "|---|---|"]
        lines += [f"| {r['chapter']} | {r['seconds']:.1f} |" for r in results["book"]]
        lines += [f"| **total** | **{total:.1f}** |"]
    return "\n".join(lines) + "\n"


def chart(results: dict, path: Path) -> None:
    """Bar chart of the ratios (left) and of the chapters' times (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["comparisons"]
    book = results.get("book") or []
    fig, axes = plt.subplots(
        1, 2 if book else 1, figsize=(11 if book else 6, 0.35 * len(rows) + 1.5)
    )
    ax = axes[0] if book else axes
    labels = [f"{r['comparison']}\nvs {r['peer']}" for r in rows]
    ratios = [r["ratio"] for r in rows]
    ax.barh(range(len(rows)), ratios, color=["tab:blue" if x <= 1 else "tab:red" for x in ratios])
    ax.axvline(1.0, color="black", lw=1)
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("time ratio selfsup / peer (log scale; < 1: selfsup faster)")
    if book:
        ax2 = axes[1]
        ax2.barh([r["chapter"] for r in book], [r["seconds"] for r in book], color="tab:gray")
        ax2.invert_yaxis()
        ax2.set_xlabel("wall time, quick profile [s]")
        ax2.set_title(f"whole book: {sum(r['seconds'] for r in book):.0f} s", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny inputs, one round")
    parser.add_argument("--no-book", action="store_true", help="skip the chapter timings")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, help="folder for results.json and results.md")
    args = parser.parse_args(argv)
    rounds = 1 if args.smoke else args.rounds
    out = args.out or (None if args.smoke else ROOT / "benchmarks")
    rows = [bench_flows(args.smoke, rounds)]
    rows += bench_vq(args.smoke, rounds)
    rows += bench_fid(args.smoke, rounds)
    rows += bench_ot(args.smoke, rounds)
    rows += bench_nt_xent(args.smoke, rounds)
    rows += bench_before_after(args.smoke, rounds)
    rows += bench_ode(args.smoke, rounds)
    rows += peers_diffusion.bench_diffusion(args.smoke, rounds, compare)
    results = {"machine": machine(), "smoke": args.smoke, "comparisons": rows}
    if not args.no_book:
        results["book"] = bench_book(args.smoke)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        (out / "results.md").write_text(markdown(results))
        chart(results, out / "results.png")
        print(f"wrote results.json, results.md and results.png to {out}")
    bad = [r for r in rows if not r["values_match"]]
    for r in bad:
        print(f"value check failed: {r['comparison']} vs {r['peer']}: {r['check']}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
