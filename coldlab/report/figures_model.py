"""Figures of a run's model (degradation strips, reconstructions at several degradation levels, sampling
trajectories, the prior's values against the fully degraded data), drawn from the tensors the run stored
after its last epoch (``figures-EPOCH.pt``, :mod:`coldlab.engine.figure_data`). A run stored before that
file existed is rebuilt from its newest saved weights on the CPU, once, to compute the same tensors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from coldlab.engine import figure_data  # noqa: E402
from coldlab.engine.kinds import kind_of  # noqa: E402
from coldlab.files import load_tensors  # noqa: E402
from coldlab.report import mosaic  # noqa: E402
from coldlab.report.collect import RunRecord  # noqa: E402
from coldlab.report.figures import Figure, label, save  # noqa: E402


def computed_data(run: RunRecord, home: Path, registry: Any) -> dict[str, torch.Tensor] | None:
    """The figure tensors of a run stored without them: rebuilt from its newest sampling weights on the
    CPU (the run's evaluation seed); None without weights."""
    from coldlab.engine.reevaluate import available_weights
    from coldlab.engine.run import RunComponents
    from coldlab.home import as_home

    folder = as_home(home).run_dir(run.id)
    weights = available_weights(folder) if folder.exists() else {}
    if not weights:
        return None
    parts = RunComponents.from_spec(run.config, registry, "cpu", home=home)
    epoch, _, _ = parts.load_weights(weights[max(weights)])
    return figure_data.compute(parts, epoch)


def _figure(tiles: list[list[Any]], cols: list[str], rows: list[str], path: Path, *, block: int = 0, inches: float = 1.0) -> Path:
    fig, ax = plt.subplots(figsize=mosaic.figsize(len(tiles), max(len(r) for r in tiles), inches))
    mosaic.draw(ax, tiles, cols, rows, block=block)
    return save(fig, path)


def degradation_strip(run: RunRecord, data: dict[str, Any], out: Path) -> Figure:
    strip, ts = data["degradation"], [int(t) for t in data["degradation_t"]]
    tiles = [[strip[i, j] for j in range(len(ts))] for i in range(strip.shape[0])]
    d = run.config["degradation"]
    latent = " (of their latents, decoded)" if bool(data["latent"]) else ""
    return Figure(
        _figure(tiles, [f"t={t}" for t in ts], [], out / f"degradation-run{run.id}.png"),
        f"Degradation {d['name']} ({label(run)})",
        f"D(x, t) of {strip.shape[0]} test images{latent} at {len(ts)} steps from 0 to T={max(ts)}.",
        [f"t={t}" for t in ts],
        run.id,
    )


def reconstruction_tiles(data: dict[str, Any]) -> tuple[list[list[Any]], list[str], list[str]]:
    """One row per level t; each test image as a triple (x, z_t, back) of columns."""
    recon, steps = data["reconstructions"], [int(t) for t in data["reconstruction_t"]]
    images = recon.shape[1]
    tiles = [[recon[r, i, c] for i in range(images) for c in range(3)] for r in range(len(steps))]
    return tiles, ["x", "z_t", "back"] * images, [f"t={t}" for t in steps]


def reconstructions(run: RunRecord, data: dict[str, Any], out: Path) -> Figure:
    tiles, cols, rows = reconstruction_tiles(data)
    images = data["reconstructions"].shape[1]
    return Figure(
        _figure(tiles, cols, rows, out / f"reconstructions-run{run.id}.png", block=3, inches=0.9),
        f"Reconstructions of {label(run)}",
        f"Epoch {int(data['epoch'])} weights: {images} test images, each as a triple (x: the original; z_t: degraded to t; "
        f"back: sampled back from t by {run.config['sampler']['name']}), at {len(rows)} levels of t.",
        rows,
        run.id,
    )


def trajectory(run: RunRecord, data: dict[str, Any], out: Path) -> Figure:
    traj, ts = data["trajectory"], [int(t) for t in data["trajectory_t"]]
    tiles = [[traj[j, i] for j in range(len(ts))] for i in range(traj.shape[1])]
    return Figure(
        _figure(tiles, [f"t={t}" for t in ts], [], out / f"trajectory-run{run.id}.png"),
        f"Sampling trajectories of {label(run)}",
        f"Epoch {int(data['epoch'])} weights: z_t along the {run.config['sampler']['name']} sampler from prior samples "
        "(t = T) to the images (t = 0).",
        [f"t={t}" for t in ts],
        run.id,
    )


def prior_histogram(run: RunRecord, data: dict[str, Any], out: Path) -> Figure:
    edges = data["prior_edges"].numpy()
    degraded_n, n = (int(v) for v in data["prior_n"])
    fig, ax = plt.subplots(figsize=(7, 4))
    shown = (("prior_degraded", f"D(x, T) of {degraded_n} training images"), ("prior_prior", f"prior {run.config['prior']['name']} ({n} samples)"))
    for key, what in shown:
        ax.stairs(data[key].numpy(), edges, fill=True, alpha=0.5, label=what)
    what = "Latent values" if bool(data["latent"]) else "Pixel values"
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
    """Every model figure for each run with stored figure data or saved weights; a run that cannot be drawn is reported, not hidden."""
    figures = []
    for run in runs:
        if not kind_of(run.config).samples:
            continue  # an autoencoder's figures are its reconstruction grids (in the grid figures)
        try:
            stored = run.artifact("figures")
            data = load_tensors(stored) if stored is not None else computed_data(run, home, registry)
            if data is None:
                state = "" if run.status == "finished" else f" is {run.status} and"
                warn(f"run {run.id} ({run.name}){state} has no saved weights: no degradation, reconstruction, trajectory or prior figures")
                continue
            figures += [draw(run, data, out) for draw in (degradation_strip, reconstructions, trajectory, prior_histogram)]
        except Exception as err:  # one run's failure must not lose the rest of the report
            warn(f"run {run.id} ({run.name}): model figures failed: {type(err).__name__}: {err}")
    return figures
