"""What the report's model figures show, computed once from the network while the run still has it (after
its last epoch, ``figures-EPOCH.pt``): a degradation strip, reconstructions at four levels, sampling
trajectories and the prior's values against the fully degraded data. ``coldlab export`` draws these
tensors; it rebuilds a run from its weights only for runs stored before this file existed.

Images are stored as uint8 in [0, 255] (decoded in a latent run), histograms as densities over shared
bin edges, so the file is a few hundred kilobytes at most and holds tensors only (loaded with
``weights_only=True``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

LEVELS = (0.25, 0.5, 0.75, 1.0)
IMAGES = 4
STRIP_LEVELS = 8
TRAJECTORY_POINTS = 8
PRIOR_VALUES = 512
BINS = 80


def _uint8(ctx: Any, images: torch.Tensor) -> torch.Tensor:
    out: torch.Tensor = (ctx.to_unit(images.float().cpu()) * 255).round().to(torch.uint8)
    return out


@torch.no_grad()
def degradation_strip(parts: Any, ctx: Any, images: int = IMAGES, levels: int = STRIP_LEVELS) -> dict[str, torch.Tensor]:
    x, _ = ctx.test_set()
    x = ctx.encode(x[:images].to(ctx.device))  # a latent run degrades latents: shown decoded
    deg = parts.degradation
    ts = sorted({round(deg.T * i / (levels - 1)) for i in range(levels)})
    noise = deg.sample_noise(x, ctx.generator(2))
    strip = torch.stack([_uint8(ctx, ctx.decode(deg.degrade(x, t, noise))) for t in ts], dim=1)  # [images, levels, C, H, W]
    return {"degradation": strip, "degradation_t": torch.tensor(ts)}


@torch.no_grad()
def reconstructions(parts: Any, ctx: Any, images: int = IMAGES) -> dict[str, torch.Tensor]:
    deg = parts.degradation
    steps = sorted({max(1, round(level * deg.T)) for level in LEVELS})
    rows = []
    for t in steps:
        originals, recon, _ = ctx.reconstructions(t, images)
        x0 = ctx.encode(originals)
        z = ctx.decode(deg.degrade(x0, t, deg.sample_noise(x0, ctx.generator(2))))
        rows.append(torch.stack([_uint8(ctx, originals), _uint8(ctx, z), _uint8(ctx, recon)], dim=1))  # [images, 3, C, H, W]
    return {"reconstructions": torch.stack(rows), "reconstruction_t": torch.tensor(steps)}


@torch.no_grad()
def trajectory(parts: Any, ctx: Any, images: int = IMAGES, points: int = TRAJECTORY_POINTS) -> dict[str, torch.Tensor]:
    deg, sampler = parts.degradation, parts.sampler
    n_steps = len(sampler.steps(deg.T)) - 1
    every = max(1, n_steps // (points - 1))
    z = parts.prior.sample(images, ctx.sample_shape, generator=torch.Generator().manual_seed(ctx.seed)).to(ctx.device)
    net = parts.sampling_net
    was_training = net.training
    net.eval()
    try:
        result = sampler.sample(ctx.chunked(ctx.net), deg, z, trajectory_every=every, generator=ctx.generator(1))
    finally:
        net.train(was_training)
    return {
        "trajectory": torch.stack([_uint8(ctx, ctx.decode(zt)) for _, zt in result.trajectory]),  # [points, images, C, H, W]
        "trajectory_t": torch.tensor([int(t) for t, _ in result.trajectory]),
    }


@torch.no_grad()
def prior_values(parts: Any, ctx: Any, n: int = PRIOR_VALUES) -> dict[str, torch.Tensor]:
    deg = parts.degradation
    x = parts.data.train[:n].to(ctx.device)  # what the network works on: latents in a latent run
    g = torch.Generator(device=ctx.device).manual_seed(ctx.seed)
    degraded = deg.degrade(x, deg.T, deg.sample_noise(x, g)).flatten().float().cpu()
    prior = parts.prior.sample(n, ctx.sample_shape, generator=torch.Generator().manual_seed(ctx.seed)).flatten().float().cpu()
    lo, hi = float(min(degraded.min(), prior.min())), float(max(degraded.max(), prior.max()))
    edges = torch.linspace(lo, hi + 1e-6, BINS + 1, dtype=torch.float64)
    width = edges[1:] - edges[:-1]

    def density(v: torch.Tensor) -> torch.Tensor:
        counts = torch.histogram(v.double(), bins=edges).hist
        return counts / counts.sum() / width

    return {
        "prior_edges": edges,
        "prior_degraded": density(degraded),
        "prior_prior": density(prior),
        "prior_n": torch.tensor([x.shape[0], n]),
    }


def compute(parts: Any, epoch: int, on_batch: Any = None) -> dict[str, torch.Tensor]:
    """Every model figure's data for the run's current sampling weights (torch's RNG left as it was)."""
    ctx = parts.eval_context(on_batch=on_batch)
    cuda = [ctx.device] if torch.device(ctx.device).type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):  # a run resumed later draws the same numbers as one that never stopped
        torch.manual_seed(0)
        data: dict[str, torch.Tensor] = {"epoch": torch.tensor(epoch), "latent": torch.tensor(ctx.codec is not None)}
        for part in (degradation_strip, reconstructions, trajectory, prior_values):
            data.update(part(parts, ctx))
        return data


def path_for(run_dir: Path, epoch: int) -> Path:
    return Path(run_dir) / f"figures-{epoch:04d}.pt"
