"""``coldlab run FILE --dry-run``: what a run of the file would do, and about how long it would take, with
nothing queued, trained or downloaded.

For each run of the file (after ``--only``, ``--smoke`` and ``--epochs``): its state in the store (new,
queued, finished, ...: the store is read, never created or written), its training steps
(epochs x batches of its training split), its evaluation epochs and its sampling work, counted in
*network evaluations over images* (generated samples x sampler steps, the grid, reconstructions x
their steps, the guidance sweep, doubled where guidance runs the network twice, and each epoch's
validation images), and an estimated time.

The estimate comes from a short calibration on the chosen device: the run's own training loop times a
few steps at its batch size and settings (precision, channels-last; compilation is not included), and
its sampling network times a forward pass of one evaluation chunk. Runs with the same network, data,
degradation and loop settings share one calibration (seeds and sweep values of other settings do). Not
counted: metrics' own work (feature extraction, a classifier trained on first use), data loading and
compilation. With several workers, the wall time assumes each worker takes the longest waiting run next.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from coldlab.config import EvalSettings, TrainSettings, load_experiments, settings_of
from coldlab.engine.availability import DataCheck
from coldlab.engine.budget import for_flags
from coldlab.engine.data import load_run_data
from coldlab.engine.evaluation import build_metrics
from coldlab.engine.kinds import kind_of
from coldlab.engine.queueing import check_queue
from coldlab.engine.reporter import Reporter
from coldlab.errors import ColdlabError
from coldlab.formatting import format_duration
from coldlab.home import Home
from coldlab.plugins import Registry, get_registry

WARMUP_STEPS, TIMED_STEPS = 1, 2


@dataclasses.dataclass
class PlannedRun:
    """One run of the plan."""

    study: str
    name: str
    kind: str
    state: str  # "new", or the stored run's status
    runs: bool  # whether ``coldlab run`` (with the same flags) would train it
    epochs: int
    train_images: int | None = None
    steps: int | None = None
    evaluations: int = 0
    network_evaluations: int | None = None
    seconds: float | None = None
    note: str = ""


@dataclasses.dataclass
class Calibration:
    """Seconds per training step and per network evaluation of one image (sampling)."""

    step_seconds: float
    forward_seconds_per_image: float
    chunk: int


def eval_epochs(epochs: int, every: int) -> list[int]:
    """The epochs that evaluate (as the training loop decides: every ``every`` epochs, and the last)."""
    return [e for e in range(1, epochs + 1) if (every > 0 and e % every == 0) or e == epochs]


def sampling_work(spec: dict[str, Any], registry: Registry, data: Any, test_images: int) -> tuple[int, int]:
    """(evaluation epochs, network evaluations over images) of a diffusion run's evaluations and validation."""
    train, ev = settings_of(TrainSettings, spec["train"]), settings_of(EvalSettings, spec["eval"])
    degradation = registry.build("degradation", spec["degradation"])
    degradation.prepare(data.context)
    sampler = registry.build("sampler", spec["sampler"])
    T = degradation.T

    def passes(t: int) -> int:
        return len(sampler.steps(t)) - 1

    def work(metric_specs: list[Any], guidance: Any, *, grid: bool) -> int:
        metrics = build_metrics(registry, list(metric_specs)) if metric_specs else []
        factor = 2 if guidance not in (None, 0, 1) else 1  # guidance runs the network twice per step
        samples = ev.samples if any(m.source == "samples" for _, m in metrics) else 0
        if grid:  # the grid comes from the samples when there are enough of them
            samples = max(samples, ev.grid)
        total = samples * passes(T) * factor
        for _, metric in metrics:
            if metric.source == "reconstructions":
                n = metric.reconstruction_images() or test_images
                total += sum(min(n, test_images) * passes(t) for t in metric.reconstruction_steps(T))
        return total

    epochs = eval_epochs(train.epochs, ev.every)
    total = sum(work(list(ev.metrics) + (list(ev.final_metrics) if e == train.epochs else []), ev.guidance_scale, grid=True) for e in epochs)
    if ev.metrics:  # after the last epoch, eval.metrics again at each guidance scale of the sweep
        total += sum(work(list(ev.metrics), w, grid=False) for w in ev.guidance_sweep)
    total += train.epochs * int(data.val.shape[0])  # validation loss: one network evaluation per image and epoch
    return len(epochs), total


def calibration_key(spec: dict[str, Any]) -> str:
    """Runs that cost the same per step: the same network, data, degradation, latent codec and loop settings."""
    train = {k: v for k, v in spec["train"].items() if k in ("batch_size", "precision", "channels_last")}
    keep = {k: spec.get(k) for k in ("dataset", "network", "latent")}
    degradation = dict(spec.get("degradation") or {})
    if isinstance(degradation.get("schedule"), dict):  # a schedule's values cost nothing; its T can (blur applies up to T kernels)
        degradation["schedule"] = {"T": degradation["schedule"].get("T")}
    return json.dumps({**keep, "degradation": degradation, "train": train, "chunk": spec["eval"].get("batch_size")}, sort_keys=True, default=str)


def calibrate(spec: dict[str, Any], registry: Registry, device: str, home: Home) -> Calibration:
    """Time the run's training loop for a few steps and its sampling network on one evaluation chunk."""
    from coldlab.engine.trainer import Trainer

    s = json.loads(json.dumps(spec))
    batch = int(s["train"]["batch_size"])
    s["train"].update(val_fraction=0.0, max_train_images=batch * (WARMUP_STEPS + TIMED_STEPS), epochs=1, compile=False)
    with tempfile.TemporaryDirectory(prefix="coldlab-plan-") as tmp:
        trainer = Trainer(s, Path(tmp) / "run", registry=registry, reporter=Reporter(), device=device, cache_dir=Path(tmp) / "cache", home=home.root)
        loop = trainer.loop
        loop.steps_per_epoch = WARMUP_STEPS
        loop.train_epoch(1)
        loop.partial, loop.steps_per_epoch = None, TIMED_STEPS
        sync(trainer.device)
        start = time.perf_counter()
        loop.train_epoch(1)
        sync(trainer.device)
        step_seconds = (time.perf_counter() - start) / TIMED_STEPS
        ctx = trainer.eval_context()
        chunk = ctx.chunk_size()
        net = ctx.chunked(ctx.net)
        z = trainer.prior.sample(chunk, tuple(ctx.sample_shape)).to(trainer.device)
        t = torch.full((chunk,), 0.5, device=trainer.device)
        y = torch.full((chunk,), int(getattr(ctx.net, "null_label", 0) or 0), device=trainer.device) if ctx.conditional else None
        with torch.inference_mode():
            net(z, t, y)  # warm-up
            sync(trainer.device)
            start = time.perf_counter()
            for _ in range(TIMED_STEPS):
                net(z, t, y)
            sync(trainer.device)
        forward = (time.perf_counter() - start) / (TIMED_STEPS * chunk)
    return Calibration(step_seconds, forward, chunk)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def stored_states(home: Home) -> dict[tuple[str, str], str]:
    """(study, name) -> status of the runs in the store; empty when there is no store (none is created)."""
    if not home.store_exists():
        return {}
    conn = home.connect(readonly=True)
    try:
        return {(r["study"], r["name"]): r["status"] for r in conn.execute("SELECT study, name, status FROM runs")}
    finally:
        conn.close()


def wall_time(seconds: list[float], workers: int) -> float:
    """Longest-first onto ``workers`` workers: when the last one finishes."""
    loads = [0.0] * max(1, workers)
    for s in sorted(seconds, reverse=True):
        loads[loads.index(min(loads))] += s
    return max(loads)


def plan_file(
    path: str,
    home: Home,
    *,
    only: list[str] | None,
    smoke_run: bool,
    epochs: int | None,
    devices: list[str],
    resume: bool,
    calibrate_runs: bool = True,
    console: Console,
    as_json: bool = False,
) -> int:
    """Print the plan of ``path`` (a table, or one JSON object); returns the exit code (0)."""
    registry = get_registry()
    specs = [(run, for_flags(run.to_dict(), smoke_run, epochs)) for run in load_experiments(path, only=only)]
    states = stored_states(home)
    if home.store_exists():
        conn = home.connect(readonly=True)
        try:
            check_queue(conn, specs, where=path)
        finally:
            conn.close()
    data_check = DataCheck(registry, download=False)
    device = devices[0]
    calibrations: dict[str, Calibration | str] = {}
    planned: list[PlannedRun] = []
    for run, spec in specs:
        state = states.get((spec["study"], spec["name"]), "new")
        would_run = state in ("new", "queued") or (resume and state in ("interrupted", "failed", "cancelled"))
        row = PlannedRun(spec["study"], spec["name"], run.kind, state, would_run, int(spec["train"]["epochs"]))
        planned.append(row)
        missing = data_check.missing(spec)
        if missing:  # coldlab run would skip it (after trying to download, where the dataset can)
            row.note, row.runs = "data missing: " + "; ".join(missing), False
            continue
        fill_counts(row, spec, registry)
        if not would_run:
            row.note = {"finished": "already finished"}.get(state, f"{state}: " + ("pass --resume to continue it" if not resume else "not run"))
            continue
        if not calibrate_runs:
            continue
        if not kind_of(run.kind).samples:
            row.note = "autoencoder run: steps only"
            continue
        if spec.get("latent"):
            row.note = "latent run: timed once its autoencoder run has weights" if not latent_ready(spec, home) else ""
            if row.note:
                continue
        key = calibration_key(spec)
        if key not in calibrations:
            try:
                calibrations[key] = calibrate(spec, registry, device, home)
            except ColdlabError as err:
                calibrations[key] = f"not calibrated: {err}"
        cal = calibrations[key]
        if isinstance(cal, str):
            row.note = cal
            continue
        row.seconds = (row.steps or 0) * cal.step_seconds + (row.network_evaluations or 0) * cal.forward_seconds_per_image
    timed = [r.seconds for r in planned if r.runs and r.seconds is not None]
    total = sum(timed)
    wall = wall_time(timed, len(devices)) if timed else 0.0
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "file": path,
                    "device": device,
                    "workers": len(devices),
                    "runs": [dataclasses.asdict(r) for r in planned],
                    "total_seconds": total,
                    "wall_seconds": wall,
                }
            )
        )
        return 0
    show(planned, console, device=device, devices=devices, total=total, wall=wall, calibrated=calibrate_runs)
    return 0


def fill_counts(row: PlannedRun, spec: dict[str, Any], registry: Registry) -> None:
    """Training images, steps, evaluation epochs and network evaluations of a run."""
    from coldlab.engine.data import load_dataset

    train: Any = settings_of(kind_of(row.kind).train_settings, spec["train"])
    data = load_run_data(registry, spec["dataset"], val_fraction=train.val_fraction, seed=train.seed, max_images=train.max_train_images, device="cpu")
    row.train_images = int(data.train.shape[0])
    row.steps = train.epochs * math.ceil(row.train_images / train.batch_size)
    if kind_of(row.kind).samples:
        test_images = int(load_dataset(registry, spec["dataset"], "test")[0].shape[0])
        row.evaluations, row.network_evaluations = sampling_work(spec, registry, data, test_images)


def latent_ready(spec: dict[str, Any], home: Home) -> bool:
    from coldlab.engine.latent import autoencoder_path

    try:
        return autoencoder_path(spec["latent"], home.root).exists()
    except ColdlabError:
        return False


def show(planned: list[PlannedRun], console: Console, *, device: str, devices: list[str], total: float, wall: float, calibrated: bool) -> None:
    """The plan as a table (notes as numbered lines below it), then the totals."""
    table = Table(title=f"coldlab run --dry-run: {len(planned)} runs, nothing queued", title_justify="left")
    table.add_column("run", overflow="fold")
    for col in ("state", "epochs", "steps", "evals", "net evals", "est. time"):
        table.add_column(col, justify="left" if col == "state" else "right", no_wrap=True)
    notes: list[str] = []
    for r in planned:
        mark = ""
        if r.note:
            if r.note not in notes:
                notes.append(r.note)
            mark = f" [{notes.index(r.note) + 1}]"
        table.add_row(
            escape(f"{r.study}/{r.name}") + mark,
            escape(r.state) if r.runs else f"[dim]{escape(r.state)}[/dim]",
            str(r.epochs),
            "" if r.steps is None else f"{r.steps:,}",
            str(r.evaluations) if r.steps is not None else "",
            "" if r.network_evaluations is None else f"{r.network_evaluations:,}",
            "" if r.seconds is None else format_duration(r.seconds),
        )
    console.print(table)
    for i, note in enumerate(notes, 1):
        console.print(escape(f"[{i}] {note}"), highlight=False)
    would = [r for r in planned if r.runs]
    if calibrated:
        console.print(
            f"{len(would)} runs would run; calibrated on {escape(device)}: about {format_duration(total)} of training and sampling"
            + (f", {format_duration(wall)} on {len(devices)} workers" if len(devices) > 1 else "")
            + " (metrics' own work, data loading and compilation not included)",
            highlight=False,
        )
    else:
        console.print(f"{len(would)} runs would run (not calibrated: --no-calibrate)", highlight=False)
