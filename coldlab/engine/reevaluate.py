"""``coldlab eval RUN``: evaluate an existing run again, optionally with another sampler or step
count (report 003 compares DDIM step counts on one network), and store it as a new evaluation.

Weights come from ``weights-EPOCH.pt`` (saved at every evaluation epoch unless
``eval.keep_weights = false``) or, failing that, from a training checkpoint of that epoch
(the last two are kept). Metric parameters are the run's own (``eval.metrics``) where the
run configured that metric, else the metric's defaults.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from coldlab.engine.checkpoint import checkpoints
from coldlab.engine.evaluation import MetricResult, build_metrics, eval_settings, evaluate, save_samples
from coldlab.engine.kinds import kind_of
from coldlab.engine.run import RunComponents
from coldlab.errors import ColdlabError
from coldlab.files import TORN, load_tensors
from coldlab.home import Home, as_home
from coldlab.plugins import Registry, get_registry
from coldlab.store import get_run, record_artifact, record_evaluation

_WEIGHTS = re.compile(r"weights-(\d+)\.pt$")


def available_weights(folder: Path) -> dict[int, Path]:
    """Epoch -> file with the sampling weights at the end of that epoch: weights-EPOCH.pt, else a
    training checkpoint taken at the end of the epoch (not one taken mid-epoch by a stop)."""
    found = {int(m.group(1)): p for p in folder.glob("weights-*.pt") if (m := _WEIGHTS.search(p.name))}
    for path in checkpoints(folder):
        epoch = int(path.stem.split("-")[1])
        if epoch not in found:
            try:
                state = load_tensors(path, mmap=True)
            except TORN:  # a torn file is not a usable checkpoint
                continue
            if state.get("partial") is None:
                found[epoch] = path
    return dict(sorted(found.items()))


def sampler_spec(registry: Registry, run_sampler: dict[str, Any], name: str | None, steps: int | None) -> dict[str, Any]:
    """The run's sampler, or ``name``, with ``steps`` set if given; validated."""
    spec: dict[str, Any] = dict(run_sampler) if name is None or name == run_sampler["name"] else {"name": name}
    if steps is not None:
        spec["steps"] = steps
    try:
        return registry.resolve("sampler", spec)
    except ColdlabError as err:
        raise err.at("--steps" if steps is not None and "steps" in str(err) else "--sampler") from None


def metric_specs(registry: Registry, configured: list[dict[str, Any]], names: list[str] | None) -> list[dict[str, Any]]:
    if not names:
        if not configured:
            raise ColdlabError(
                "the run configured no metrics", hint="name some with --metrics, e.g. --metrics classifier-fid rmse", where=("--metrics",)
            )
        return configured
    by_name = {m["name"]: m for m in configured}
    out = []
    for name in names:
        try:
            out.append(by_name.get(name) or registry.resolve("metric", name))
        except ColdlabError as err:
            raise err.at("--metrics") from None
    return out


def evaluate_run(
    home: Path | Home,
    run_id: int,
    *,
    epoch: int | None = None,
    metrics: list[str] | None = None,
    sampler: str | None = None,
    steps: int | None = None,
    samples: int | None = None,
    device: str = "cpu",
    registry: Registry | None = None,
    guidance: float | None = None,
    sample_class: int | str | None = None,
) -> dict[str, Any]:
    """Evaluate run ``run_id`` at ``epoch`` (default: the newest weights) and store the evaluation."""
    registry = registry or get_registry()
    home = as_home(home)
    conn = home.connect()
    row = get_run(conn, run_id)
    spec = json.loads(row["config"])
    kind = kind_of(spec)
    if not kind.samples:
        raise ColdlabError(
            f"run {run_id} is an {kind.name} run: {kind.no_eval_reason}",
            hint="coldlab eval evaluates diffusion runs (a latent one names this run in latent = { run = ... })",
        )
    folder = home.run_dir(run_id)
    weights = available_weights(folder)
    if not weights:
        raise ColdlabError(f"run {run_id} has no saved weights in {folder}", hint="train it first (coldlab run), or check --home")
    if epoch is None:
        epoch = max(weights)
    elif epoch not in weights:
        raise ColdlabError(
            f"run {run_id} has no weights for epoch {epoch}", hint="epochs with weights: " + ", ".join(map(str, weights)), where=("--checkpoint",)
        )
    parts = RunComponents.from_spec(spec, registry, device, home=home)
    loaded_epoch, step, which = parts.load_weights(weights[epoch])
    s_spec = sampler_spec(registry, parts.spec.sampler, sampler, steps)
    built_sampler = registry.build("sampler", s_spec)
    built_sampler.prepare(parts.data.context)  # what it may assume of the data (a latent run's have no range)
    try:
        built_sampler.check(parts.degradation)
    except ColdlabError as err:
        raise err.at("--sampler") from None
    configured = [m for m in parts.eval.metrics + parts.eval.final_metrics if isinstance(m, dict)]
    specs = metric_specs(registry, configured, metrics)
    built = build_metrics(registry, specs)
    if (guidance is not None or sample_class is not None) and not parts.conditional:
        raise ColdlabError(
            f"run {run_id} has no class-conditional network: it cannot be guided",
            hint="train one with network.conditional = true and train.label_dropout",
            where=("--guidance",),
        )
    if isinstance(sample_class, int) and not 0 <= sample_class < parts.data.num_classes:
        raise ColdlabError(f"class {sample_class} is not one of the dataset's classes 0..{parts.data.num_classes - 1}", where=("--class",))
    ctx = parts.eval_context(
        sampler=built_sampler,
        samples=samples,
        guidance_scale="run" if guidance is None else guidance,
        sample_class="run" if sample_class is None else sample_class,
    )
    if ctx.guidance_scale is None and sample_class is not None:
        raise ColdlabError("--class needs a guidance scale", hint="add --guidance W (1: plain conditional sampling)", where=("--class",))
    start = time.perf_counter()
    results = evaluate(ctx, built)
    seconds = time.perf_counter() - start
    settings = eval_settings(specs, ctx, which, weights_file=weights[epoch].name)
    eval_id, _ = record_evaluation(
        conn,
        run_id,
        origin="eval",
        epoch=loaded_epoch,
        step=step,
        sampler=s_spec,
        settings=settings,
        results=[(r.name, r.value, r.row_detail()) for r in results],
        seconds=seconds,
    )
    if ctx.has_samples:
        path = save_samples(ctx.samples(), ctx, folder / f"evaluation-{eval_id:05d}-samples.pt")
        record_artifact(conn, run_id, "samples", home.relative(path), epoch=loaded_epoch, step=step)
    conn.close()
    return {
        "evaluation": eval_id,
        "run": run_id,
        "epoch": loaded_epoch,
        "sampler": s_spec,
        "seconds": seconds,
        "results": results,
        "guidance_scale": ctx.guidance_scale,
        "class": ctx.sample_class if ctx.guidance_scale is not None else None,
    }


def format_value(result: MetricResult) -> str:
    from coldlab.formatting import describe_value

    return describe_value(result.value, result.row_detail())


def print_evaluation(out: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(
            json.dumps(
                {
                    **out,
                    "results": [
                        {"name": r.name, "value": r.value, "unavailable": r.unavailable, "detail": r.row_detail(), "seconds": r.seconds}
                        for r in out["results"]
                    ],
                },
                indent=2,
            )
        )
        return
    from rich.console import Console
    from rich.table import Table

    sampler = ", ".join(f"{k}={v}" for k, v in out["sampler"].items() if k != "name")
    if out.get("guidance_scale") is not None:
        sampler += f"; guidance w={out['guidance_scale']}, class {out['class']}"
    table = Table(
        title=f"evaluation {out['evaluation']} of run {out['run']}, epoch {out['epoch']}, "
        f"sampler {out['sampler']['name']} ({sampler}), {out['seconds']:.1f} s"
    )
    for col in ("metric", "value", "seconds"):
        table.add_column(col, overflow="fold")
    for r in out["results"]:
        table.add_row(r.name, format_value(r), f"{r.seconds:.1f}", style="yellow" if r.unavailable else None)
    Console().print(table)
