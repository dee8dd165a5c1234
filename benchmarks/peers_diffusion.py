"""The diffusion model against Hugging Face ``diffusers``' schedulers around the same
denoiser (``benchmarks/run.py`` calls :func:`bench_diffusion`).

``diffusers`` works in discrete time with a table of ``betas``; the library's model is in
continuous time. For ``T`` steps the two describe the same process when the table is
``alpha_bar_k = sigmoid(-gamma((k + 1) / T))``, ``k = 0..T-1``; then:

- the noising and loss step: ``DDPMScheduler.add_noise`` and the unweighted
  noise-prediction error, against :meth:`Diffusion.loss` with ``weighting="simple"``'s
  arithmetic on the same ``t``, noise and batch;
- a DDIM loop (``eta = 0``, clipped ``x_hat``): ``DDIMScheduler.step`` against
  :meth:`Diffusion.sample` with ``sampler="ddim"`` from the same starting noise;
- an ancestral loop: ``DDPMScheduler.step`` (``variance_type="fixed_small"``, clipped)
  with a generator seeded as the library's, so both draw the same noise at every step.

At ``t = 0`` the library steps to ``gamma_min`` (``alpha_0^2 = sigmoid(13.3)``) where
``diffusers`` steps to ``alpha_bar = 1``: the last step differs by about ``sigma_0 =
1e-3``, so the loops are compared on the decoded integer images and on ``z_0`` to a
tolerance of 1e-2.
"""

from __future__ import annotations

import torch


def _table(model, steps: int) -> torch.Tensor:
    t = torch.arange(1, steps + 1, dtype=torch.float64) / steps
    return torch.sigmoid(-model.gamma(t.float()).double())  # alpha_bar_k, k = 0..T-1


def _betas(alpha_bar: torch.Tensor) -> torch.Tensor:
    previous = torch.cat([torch.ones(1, dtype=alpha_bar.dtype), alpha_bar[:-1]])
    return (1 - alpha_bar / previous).float()


def bench_diffusion(smoke: bool, rounds: int, compare):
    from diffusers import DDIMScheduler, DDPMScheduler

    from selfsup.models.diffusion import Diffusion

    rows = []
    n, side, steps = (16, 4, 10) if smoke else (256, 8, 100)
    torch.manual_seed(0)
    model = Diffusion((side, side), 17, hidden=(64,) if smoke else (512, 512)).eval()
    d = side * side
    alpha_bar = _table(model, steps)
    betas = _betas(alpha_bar).numpy().tolist()
    common = {"num_train_timesteps": steps, "trained_betas": betas, "clip_sample": True,
              "clip_sample_range": 1.0, "prediction_type": "epsilon"}  # fmt: skip
    ddpm = DDPMScheduler(variance_type="fixed_small", **common)
    ddim = DDIMScheduler(set_alpha_to_one=True, **common)
    ddim.set_timesteps(steps)
    ddpm.set_timesteps(steps)
    x = torch.randint(0, 17, (n, side, side), generator=torch.Generator().manual_seed(1))
    x0 = model.scale(x)
    k = torch.randint(0, steps, (n,), generator=torch.Generator().manual_seed(2))
    noise = torch.randn(n, d, generator=torch.Generator().manual_seed(3))

    def ours_loss():
        gamma = model.gamma((k + 1).float() / steps)
        alpha, sigma = model.alpha_sigma(gamma)
        z = alpha[:, None] * x0 + sigma[:, None] * noise
        return float((noise - model.eps(z, gamma)).pow(2).sum(-1).mean())

    def peer_loss():
        z = ddpm.add_noise(x0, noise, k)
        gamma = model.gamma((k + 1).float() / steps)
        return float((noise - model.eps(z, gamma)).pow(2).sum(-1).mean())

    with torch.no_grad():
        rows.append(compare(
            f"diffusion noising + loss, {side}x{side}, B = {n}, T = {steps}", ours_loss,
            peer_loss, lambda a, b: (abs(a - b) <= 1e-4 * abs(b), f"{a:.6g} vs {b:.6g}"),
            rounds, "diffusers DDPMScheduler.add_noise"))  # fmt: skip

    def peer_loop(scheduler, seed):
        """The loop with diffusers' step; returns (z before the last step, z_0)."""
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, d, generator=g)
        before_last = z
        for t in scheduler.timesteps:
            before_last = z
            gamma = model.gamma(torch.full((n,), (int(t) + 1) / steps))
            z = scheduler.step(model.eps(z, gamma), t, z, generator=g).prev_sample
        return before_last, z

    def ours_loop(sampler, seed):
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, d, generator=g)
        path = []
        z0 = model._reverse(z, steps, sampler, g, path=path)
        return path[-2], z0

    def same(a, b):
        # The same process up to t = 1/T; the last step goes to gamma_min against
        # alpha_bar = 1 (module doc), so z_0 is compared to a looser tolerance.
        before = float((a[0] - b[0]).abs().max())
        last = float((a[1] - b[1]).abs().max())
        ok = before < 1e-4 and last < 1e-2
        return ok, f"max |difference| at t = 1/T {before:.1e}, at t = 0 {last:.1e}"

    with torch.no_grad():
        rows.append(compare(
            f"DDIM sampling, {side}x{side}, n = {n}, {steps} steps",
            lambda: ours_loop("ddim", 4), lambda: peer_loop(ddim, 4), same, rounds,
            "diffusers DDIMScheduler"))  # fmt: skip
        rows.append(compare(
            f"ancestral sampling, {side}x{side}, n = {n}, {steps} steps",
            lambda: ours_loop("ancestral", 5), lambda: peer_loop(ddpm, 5), same, rounds,
            "diffusers DDPMScheduler"))  # fmt: skip
    return rows
