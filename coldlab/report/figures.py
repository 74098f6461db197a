"""Figures drawn from what the store holds (SPEC.md §8): schedules, loss curves, metric histories,
final sample grids, best and worst samples, K-S curves, class histograms.

Every function returns :class:`Figure` records (file, title, caption, the names of its series) so
the report and the tests know what each PNG shows.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, cast

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from coldlab.files import load_tensors  # noqa: E402
from coldlab.formatting import file_safe  # noqa: E402
from coldlab.report import mosaic  # noqa: E402
from coldlab.report.collect import RunRecord  # noqa: E402


@dataclasses.dataclass
class Figure:
    path: Path
    title: str
    caption: str
    series: list[str]
    run: int | None = None


def literal_text(fig: Any) -> None:
    """Titles, axis labels and legends hold user strings (study and run names): `$` is a dollar sign there,
    never mathtext. Tick labels keep mathtext (log axes write ``10^{-2}`` with it)."""
    ticks = {id(t) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis) for t in axis.get_ticklabels(which="both")}
    for text in fig.findobj(Text):
        if id(text) not in ticks:
            text.set_parse_math(False)


def save(fig: Any, path: Path) -> Path:
    literal_text(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def epoch_axis(ax: Any) -> None:
    """Epochs are whole numbers: ticks at integers only (a 1- or 2-epoch run otherwise gets 0.25, 0.5, ...),
    with half an epoch of room either side when the curves span under two epochs (one epoch: one tick)."""
    xs = [float(x) for line in ax.get_lines() for x in line.get_xdata()]
    if xs and max(xs) - min(xs) < 2:
        ax.set_xlim(min(xs) - 0.5, max(xs) + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def points_style(n: int) -> dict[str, Any]:
    """How a series of ``n`` points is drawn: a line, with markers big enough to see when there are few
    points (a single epoch is one point, which a line alone does not show)."""
    return {"marker": "o", "markersize": 7 if n == 1 else 4} if n < 10 else {}


def label(run: RunRecord) -> str:
    return f"{run.name} (#{run.id})"


def schedules(study: str, runs: list[RunRecord], registry: Any, out: Path) -> list[Figure]:
    """beta_t and alpha_bar_t of every distinct schedule of the study."""
    seen: dict[str, dict[str, Any]] = {}
    for run in runs:
        sched = (run.config.get("degradation") or {}).get("schedule")
        if isinstance(sched, dict):
            key = ", ".join(f"{k}={v}" for k, v in sched.items() if k != "name")
            seen.setdefault(f"{sched['name']} ({key})", sched)
    if not seen:
        return []
    fig, (ax_b, ax_a) = plt.subplots(1, 2, figsize=(11, 4))
    for name, spec in seen.items():
        s = registry.build("schedule", spec)
        t = list(range(s.T + 1))
        ax_b.plot(t[1:], s.beta[1:].tolist(), label=name)
        ax_a.plot(t, s.alpha_bar.tolist(), label=name)
    ax_b.set(title="beta_t", xlabel="t", yscale="log")
    ax_a.set(title="alpha_bar_t", xlabel="t")
    ax_a.legend(fontsize=7)
    path = save(fig, out / f"schedules-{file_safe(study)}.png")
    return [Figure(path, f"Schedules of study {study}", "beta_t (log scale) and alpha_bar_t of each schedule.", list(seen))]


def losses(study: str, runs: list[RunRecord], out: Path) -> list[Figure]:
    """Per study: train (solid) and validation (dashed) loss per epoch, one colour per run; per run: also the step losses."""
    figures = []
    fig, ax = plt.subplots(figsize=(8, 4.5))
    series = []
    for i, run in enumerate(runs):
        colour = f"C{i % 10}"
        for name, style in (("train_loss", "-"), ("val_loss", "--")):
            points = run.series.get(name, [])
            if points:
                ax.plot(
                    [p["epoch"] for p in points],
                    [p["value"] for p in points],
                    style,
                    color=colour,
                    label=f"{label(run)} {name.split('_')[0]}",
                    **points_style(len(points)),
                    markerfacecolor="none" if name == "val_loss" else colour,  # validation: hollow, so both show at one epoch
                )
                series.append(f"{run.id}:{name}")
    if series:
        ax.set(title=f"Study {study}: loss per epoch", xlabel="epoch", ylabel="loss", yscale="log")
        epoch_axis(ax)
        ax.legend(fontsize=7)
        figures.append(
            Figure(
                save(fig, out / f"loss-{file_safe(study)}.png"),
                f"Loss curves of study {study}",
                "Train (solid) and validation (dashed) loss per epoch, one colour per run.",
                series,
            )
        )
    else:
        plt.close(fig)
    for run in runs:
        names = [n for n in ("train_loss_step", "train_loss", "val_loss") if run.series.get(n)]
        if not names:
            continue
        fig, ax = plt.subplots(figsize=(7, 4))
        steps_per_epoch = _steps_per_epoch(run)
        for name in names:
            points = run.series[name]
            x = [p["step"] for p in points] if name == "train_loss_step" else [p["epoch"] * steps_per_epoch for p in points]
            step = name == "train_loss_step"
            look: dict[str, Any] = {} if step else {"marker": "o", "markersize": 7 if len(points) == 1 else 5}
            if name == "val_loss":
                look["markerfacecolor"] = "none"  # hollow: train and validation both show at a single epoch
            ax.plot(x, [p["value"] for p in points], label=name, alpha=0.5 if step else 1.0, zorder=1 if step else 3, **look)
        ax.set(title=label(run), xlabel="step", ylabel="loss", yscale="log")
        ax.legend(fontsize=8)
        figures.append(
            Figure(
                save(fig, out / f"loss-run{run.id}.png"),
                f"Loss of {label(run)}",
                "Per-step train loss, and train and validation loss per epoch (at the epoch's last step).",
                names,
                run.id,
            )
        )
    return figures


def _steps_per_epoch(run: RunRecord) -> float:
    points = run.series.get("train_loss", [])
    steps = run.series.get("train_loss_step", [])
    if points and steps and points[-1]["epoch"]:
        return cast("float", steps[-1]["step"] / points[-1]["epoch"])
    return 1.0


def metric_histories(study: str, runs: list[RunRecord], metrics: list[str], out: Path) -> list[Figure]:
    """Each metric against the epoch over the training evaluations, one line per run."""
    figures = []
    for name in metrics:
        fig, ax = plt.subplots(figsize=(7, 4))
        series = []
        for run in runs:
            history = run.metric_history(name)
            if history:
                ax.plot([e for e, _ in history], [v for _, v in history], label=label(run), **points_style(len(history)) or {"marker": "o"})
                series.append(str(run.id))
        if not series:
            plt.close(fig)
            continue
        ax.set(title=f"{name}, study {study}", xlabel="epoch", ylabel=name)
        epoch_axis(ax)
        ax.legend(fontsize=7)
        safe = file_safe(name)
        figures.append(
            Figure(
                save(fig, out / f"metric-{safe}-{file_safe(study)}.png"),
                f"{name} per epoch, study {study}",
                f"{name} at every training evaluation, one line per run.",
                series,
            )
        )
    return figures


def grids(study: str, runs: list[RunRecord], out: Path) -> list[Figure]:
    """The final sample grid of every run, side by side."""
    found = [(run, run.artifact("grid")) for run in runs]
    shown = [(run, path) for run, path in found if path is not None]
    if not shown:
        return []
    cols = min(4, len(shown))
    rows = (len(shown) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (run, path) in zip(axes.flat, shown, strict=False):
        ax.imshow(plt.imread(path), cmap="gray")
        ax.set_title(f"{run.name}\n#{run.id}, epoch {_epoch_of(path)}", fontsize=8)
    path = save(fig, out / f"grids-{file_safe(study)}.png")
    return [
        Figure(
            path,
            f"Final samples, study {study}",
            "The last sample grid of every run (same start points for every epoch).",
            [str(run.id) for run, _ in shown],
        )
    ]


def grid_epochs(runs: list[RunRecord], most: int = 6) -> list[int]:
    """The epochs to show grids at: every epoch some run saved a grid at, thinned evenly to ``most``
    (the first and the last always kept)."""
    epochs = sorted({int(a["epoch"]) for run in runs for a in run.artifacts if a["kind"] == "grid" and a["epoch"] is not None})
    if len(epochs) <= most:
        return epochs
    picks = {round(i * (len(epochs) - 1) / (most - 1)) for i in range(most)}
    return [epochs[i] for i in sorted(picks)]


def grids_by_epoch(study: str, runs: list[RunRecord], out: Path, most: int = 6) -> list[Figure]:
    """Sample grids across training (SPEC §8): one row per run, one column per epoch, so each run reads
    left to right and the runs of a study compare top to bottom at the same epoch."""
    epochs = grid_epochs(runs, most)
    shown = [run for run in runs if any(run.artifact("grid", e) for e in epochs)]
    if len(epochs) < 2 or not shown:
        return []  # one epoch: the final-grid figure shows it
    tiles = [[_grid_image(run.artifact("grid", epoch)) for epoch in epochs] for run in shown]
    fig, ax = plt.subplots(figsize=mosaic.figsize(len(shown), len(epochs), 2.2, (1.4, 0.6)))
    xs, ys = mosaic.draw(ax, tiles, [f"epoch {e}" for e in epochs], [f"{run.name}\n#{run.id}" for run in shown], fontsize=8)
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            if tile is None:
                ax.text(xs[c], ys[r], "no grid", ha="center", va="center", fontsize=7)
    return [
        Figure(
            save(fig, out / f"grids-epochs-{file_safe(study)}.png"),
            f"Samples across training, study {study}",
            f"Each run's sample grid (rows) at epochs {', '.join(map(str, epochs))} (columns); the same start points at every "
            "epoch, so a column compares the runs at the same point of training.",
            [str(run.id) for run in shown],
        )
    ]


def _grid_image(path: Path | None) -> Any:
    return None if path is None else plt.imread(path)


def _epoch_of(path: Path) -> str:
    return path.stem.rsplit("-", 1)[-1].lstrip("0") or "0"


def best_worst(runs: list[RunRecord], out: Path, n: int = 8) -> list[Figure]:
    """The samples nearest to and farthest from any real test image in the classifier's feature space
    (class-histogram's ranking; an evaluation stored before it ranked by the classifier's confidence, and
    the caption then says so)."""
    figures = []
    for run in runs:
        latest = run.latest("class-histogram")
        if not latest or latest["value"] is None:
            continue
        samples_path = run.artifact("samples", latest["epoch"])
        if samples_path is None:
            continue
        samples = load_tensors(samples_path)
        detail = latest["detail"]
        best, worst = detail["best"][:n], detail["worst"][:n]
        if max(best + worst, default=0) >= samples.shape[0]:
            continue
        distance = detail.get("nearest_real_distance")
        fig, ax = plt.subplots(figsize=mosaic.figsize(2, len(best), 1.2, (0.8, 0.8)))
        half = samples.shape[-2] / 2
        pairs = [[samples[i] for i in best], [samples[i] for i in worst]]
        xs, ys = mosaic.draw(ax, pairs, [], ["best", "worst"], row_gap=int(half), fontsize=8)
        for r, idx in enumerate((best, worst)):
            for c, i in enumerate(idx):
                shown = f"d {distance[i]:.2f}" if distance is not None else f"{detail['confidence'][i]:.2f}"
                ax.text(xs[c], ys[r] - half - 0.5, f"{detail['predicted'][i]} ({shown})", ha="center", va="bottom", fontsize=7)
        figures.append(
            Figure(
                save(fig, out / f"best-worst-run{run.id}.png"),
                f"Best and worst samples of {label(run)}",
                (
                    f"Epoch {latest['epoch']}: the {len(best)} samples nearest to a real test image (top) and farthest from "
                    f"every one of {detail.get('reference_images', 'the')} (bottom), by distance in the classifier's feature "
                    "space, with the predicted class and that distance d."
                    if distance is not None
                    else f"Epoch {latest['epoch']}: the {len(best)} samples the classifier is surest of (top) and least sure "
                    "of (bottom), with predicted class and confidence (an evaluation stored before samples were ranked by "
                    "distance to real images; confidence rates saturated noise high: re-evaluate with coldlab eval)."
                ),
                ["best", "worst"],
                run.id,
            )
        )
    return figures


def ks_curves(study: str, runs: list[RunRecord], out: Path) -> list[Figure]:
    """K-S p-value of z_t against N(0, 1) per step, one line per run."""
    fig, ax = plt.subplots(figsize=(7, 4))
    series, alpha = [], 0.05
    for run in runs:
        latest = run.latest("ks-normality")
        if latest and latest["detail"].get("t"):
            d = latest["detail"]
            alpha = d.get("alpha", alpha)
            ax.plot(d["t"], d["p"], label=label(run))
            series.append(str(run.id))
    if not series:
        plt.close(fig)
        return []
    ax.axhline(alpha, color="k", ls=":", lw=1, label=f"alpha = {alpha}")
    ax.set(title=f"K-S normality of z_t, study {study}", xlabel="t", ylabel="p-value", yscale="log")
    ax.legend(fontsize=7)
    return [
        Figure(
            save(fig, out / f"ks-{file_safe(study)}.png"),
            f"K-S p-values, study {study}",
            "p-value of the flattened z_t against N(0, 1) at every evaluated step; above the dotted line z_t passes as Gaussian.",
            series,
        )
    ]


def class_histograms(study: str, runs: list[RunRecord], out: Path) -> list[Figure]:
    """The classifier's predicted classes of each run's samples (grouped bars)."""
    found = [(run, h) for run in runs if (h := run.latest("class-histogram")) and h["value"] is not None]
    if not found:
        return []
    k = len(found[0][1]["detail"]["counts"])
    width = 0.8 / len(found)
    fig, ax = plt.subplots(figsize=(8, 4))
    for i, (run, h) in enumerate(found):
        counts = h["detail"]["counts"]
        ax.bar([c + i * width - 0.4 + width / 2 for c in range(len(counts))], counts, width, label=f"{label(run)} H={h['value']:.2f} bits")
    ax.set(title=f"Predicted classes of the samples, study {study}", xlabel="class", ylabel="samples", xticks=list(range(k)))
    ax.legend(fontsize=7)
    return [
        Figure(
            save(fig, out / f"classes-{file_safe(study)}.png"),
            f"Class histograms, study {study}",
            "How many samples the dataset's classifier assigns to each class (entropy in the legend; uniform is best).",
            [str(run.id) for run, _ in found],
        )
    ]


def guidance_curves(study: str, runs: list[RunRecord], out: Path) -> list[Figure]:
    """Each metric of the guidance sweeps against the guidance scale w, one line per run."""
    by_metric: dict[str, dict[int, list[tuple[float, float]]]] = {}
    for run in runs:
        for e in run.evaluations:
            w = e["settings"].get("guidance_scale")
            if e["origin"] != "guidance" or w is None:
                continue
            for name, v in e["values"].items():
                if v["value"] is not None:
                    by_metric.setdefault(name, {}).setdefault(run.id, []).append((w, v["value"]))
    figures = []
    names = {r.id: r for r in runs}
    for name, lines in by_metric.items():
        fig, ax = plt.subplots(figsize=(7, 4))
        for run_id, points in lines.items():
            points.sort()
            ax.plot([w for w, _ in points], [v for _, v in points], marker="o", label=label(names[run_id]))
        ax.set(title=f"{name} against the guidance scale, study {study}", xlabel="guidance scale w", ylabel=name)
        ax.legend(fontsize=7)
        safe = file_safe(name)
        figures.append(
            Figure(
                save(fig, out / f"guidance-{safe}-{file_safe(study)}.png"),
                f"{name} against w, study {study}",
                f"{name} of samples drawn with classifier-free guidance w (0: unconditional, 1: conditional).",
                [str(i) for i in lines],
            )
        )
    return figures
