"""Figures that need a run's model, computed at export time from its newest saved weights (CPU,
the run's evaluation seed): degradation strips, reconstructions at several degradation levels,
sampling trajectories, and the prior's pixel histogram against the fully degraded data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from coldlab.components.naming import name_of  # noqa: E402
from coldlab.engine.kinds import kind_of  # noqa: E402
from coldlab.engine.run import RunComponents  # noqa: E402
from coldlab.report.collect import RunRecord  # noqa: E402
from coldlab.report.figures import Figure, label, save  # noqa: E402

LEVELS = (0.25, 0.5, 0.75, 1.0)


def _show(ax: Any, image: torch.Tensor, ctx: Any) -> None:
    unit = ctx.to_unit(image.float().cpu())
    ax.imshow(unit.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])


def load_components(run: RunRecord, home: Path, registry: Any) -> tuple[RunComponents, int] | None:
    """The run's assembled parts with its newest sampling weights loaded, and that epoch; None without weights."""
    from coldlab.engine.reevaluate import available_weights
    from coldlab.home import as_home

    folder = as_home(home).run_dir(run.id)
    weights = available_weights(folder) if folder.exists() else {}
    if not weights:
        return None
    parts = RunComponents.from_spec(run.config, registry, "cpu", home=home)
    epoch, _, _ = parts.load_weights(weights[max(weights)])
    return parts, epoch


def degradation_strip(run: RunRecord, parts: RunComponents, out: Path, images: int = 4, levels: int = 8) -> Figure:
    ctx = parts.eval_context()
    x, _ = ctx.test_set()
    x = ctx.encode(x[:images].to(ctx.device))  # a latent run degrades latents: shown decoded
    deg = parts.degradation
    ts = sorted({round(deg.T * i / (levels - 1)) for i in range(levels)})
    noise = deg.sample_noise(x, ctx.generator(2))
    fig, axes = plt.subplots(images, len(ts), figsize=(1.2 * len(ts), 1.3 * images), squeeze=False)
    for j, t in enumerate(ts):
        z = ctx.decode(deg.degrade(x, t, noise))
        for i in range(images):
            _show(axes[i][j], z[i], ctx)
        axes[0][j].set_title(f"t={t}", fontsize=7)
    d = run.config["degradation"]
    latent = " (of their latents, decoded)" if ctx.codec is not None else ""
    return Figure(
        save(fig, out / f"degradation-run{run.id}.png"),
        f"Degradation {d['name']} ({label(run)})",
        f"D(x, t) of {images} test images{latent} at {len(ts)} steps from 0 to T={deg.T}.",
        [f"t={t}" for t in ts],
        run.id,
    )


def reconstructions(run: RunRecord, parts: RunComponents, epoch: int, out: Path, images: int = 4) -> Figure:
    ctx = parts.eval_context()
    deg = parts.degradation
    steps = sorted({max(1, round(level * deg.T)) for level in LEVELS})
    fig, axes = plt.subplots(len(steps), 3 * images, figsize=(1.0 * 3 * images, 1.25 * len(steps)), squeeze=False)
    for r, t in enumerate(steps):
        originals, recon, _ = ctx.reconstructions(t, images)
        x0 = ctx.encode(originals)
        z = ctx.decode(deg.degrade(x0, t, deg.sample_noise(x0, ctx.generator(2))))
        for i in range(min(images, originals.shape[0])):  # each image: its original, degraded, sampled back
            for c, image in enumerate((originals[i], z[i], recon[i])):
                _show(axes[r][3 * i + c], image, ctx)
        axes[r][0].set_ylabel(f"t={t}", fontsize=7)
    for i in range(images):
        for c, title in enumerate(("x", "z_t", "back")):
            axes[0][3 * i + c].set_title(title, fontsize=7)
    return Figure(
        save(fig, out / f"reconstructions-run{run.id}.png"),
        f"Reconstructions of {label(run)}",
        f"Epoch {epoch} weights: {images} test images, each as a triple (x: the original; z_t: degraded to t; back: "
        f"sampled back from t by {run.config['sampler']['name']}), at {len(steps)} levels of t.",
        [f"t={t}" for t in steps],
        run.id,
    )


def trajectory(run: RunRecord, parts: RunComponents, epoch: int, out: Path, images: int = 4, points: int = 8) -> Figure:
    ctx = parts.eval_context()
    deg, sampler = parts.degradation, parts.sampler
    n_steps = len(sampler.steps(deg.T)) - 1
    every = max(1, n_steps // (points - 1))
    z = parts.prior.sample(images, ctx.sample_shape, generator=torch.Generator().manual_seed(ctx.seed)).to(ctx.device)
    parts.sampling_net.eval()
    with torch.no_grad():
        result = sampler.sample(parts.sampling_net, deg, z, trajectory_every=every, generator=ctx.generator(1))
    traj = [(t, ctx.decode(zt)) for t, zt in result.trajectory]  # latents decoded in a latent run
    fig, axes = plt.subplots(images, len(traj), figsize=(1.2 * len(traj), 1.3 * images), squeeze=False)
    for j, (t, zt) in enumerate(traj):
        for i in range(images):
            _show(axes[i][j], zt[i], ctx)
        axes[0][j].set_title(f"t={t}", fontsize=7)
    return Figure(
        save(fig, out / f"trajectory-run{run.id}.png"),
        f"Sampling trajectories of {label(run)}",
        f"Epoch {epoch} weights: z_t along the {name_of(sampler)} sampler from prior samples (t = T) to the images (t = 0).",
        [f"t={t}" for t, _ in traj],
        run.id,
    )


def prior_histogram(run: RunRecord, parts: RunComponents, out: Path, n: int = 512) -> Figure:
    ctx = parts.eval_context()
    deg = parts.degradation
    x = parts.data.train[:n].cpu()
    g = torch.Generator().manual_seed(ctx.seed)
    degraded = deg.degrade(x, deg.T, deg.sample_noise(x, g)).flatten()
    prior = parts.prior.sample(n, ctx.sample_shape, generator=g).flatten()
    fig, ax = plt.subplots(figsize=(7, 4))
    lo = float(min(degraded.min(), prior.min()))
    hi = float(max(degraded.max(), prior.max()))
    bins = torch.linspace(lo, hi + 1e-6, 81).tolist()
    ax.hist(degraded.numpy(), bins=bins, alpha=0.5, density=True, label=f"D(x, T) of {x.shape[0]} training images")
    ax.hist(prior.numpy(), bins=bins, alpha=0.5, density=True, label=f"prior {run.config['prior']['name']} ({n} samples)")
    what = "Latent values" if ctx.codec is not None else "Pixel values"
    ax.set(title=f"{what} at t = T, {label(run)}", xlabel=what.lower()[:-1], ylabel="density")
    ax.legend(fontsize=8)
    return Figure(
        save(fig, out / f"prior-run{run.id}.png"),
        f"Prior pixel histogram of {label(run)}",
        "Pixel values of the prior's start points against those of the fully degraded training images.",
        ["degraded", "prior"],
        run.id,
    )


def model_figures(runs: list[RunRecord], home: Path, registry: Any, out: Path, warn: Any) -> list[Figure]:
    """Every model figure for each run with saved weights; a run that cannot be drawn is reported, not hidden."""
    figures = []
    for run in runs:
        if not kind_of(run.config).samples:
            continue  # an autoencoder's figures are its reconstruction grids (in the grid figures)
        try:
            loaded = load_components(run, home, registry)
            if loaded is None:
                warn(f"run {run.id} ({run.name}) has no saved weights: no degradation, reconstruction, trajectory or prior figures")
                continue
            parts, epoch = loaded
            torch.manual_seed(0)
            figures += [
                degradation_strip(run, parts, out),
                reconstructions(run, parts, epoch, out),
                trajectory(run, parts, epoch, out),
                prior_histogram(run, parts, out),
            ]
        except Exception as err:  # one run's failure must not lose the rest of the report
            warn(f"run {run.id} ({run.name}): model figures failed: {type(err).__name__}: {err}")
    return figures
