"""``coldlab export``: write tables, figures, a manifest and the HTML report for the selected runs."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coldlab.errors import ColdlabError
from coldlab.formatting import file_safe
from coldlab.home import Home
from coldlab.report import figures as fig
from coldlab.report.collect import collect
from coldlab.report.figures_sweep import sweep_curves
from coldlab.report.tables import build_table, dumps_json, metric_names, to_csv, to_latex, to_markdown

FORMATS = ("md", "csv", "latex", "html", "json")


def parse_formats(text: str) -> list[str]:
    wanted = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown or not wanted:
        raise ColdlabError(
            f"unknown format {unknown[0]!r}" if unknown else "no format given", hint="formats: " + ",".join(FORMATS), where=("--format",)
        )
    return wanted


def export(
    home: Path | Home,
    out: Path,
    *,
    studies: list[str] | None = None,
    run_ids: list[int] | None = None,
    formats: list[str] | None = None,
    model_figures: bool = True,
    archived: bool = False,
    registry: Any = None,
    warn: Callable[[str], None] = print,
    jobs: int | None = None,
) -> dict[str, Any]:
    """Export the selection; returns the manifest (also written to ``out/manifest.json``).

    The figures of the studies are drawn by ``jobs`` processes (default: one per CPU core, at most one per
    study; 1 draws them here, as does a ``registry`` given by the caller, which other processes cannot share)."""
    from coldlab.plugins import get_registry

    registry_given = registry is not None
    registry = registry or get_registry()
    jobs = jobs or os.cpu_count() or 1
    formats = list(FORMATS) if formats is None else formats
    data = collect(home, studies=studies, run_ids=run_ids, archived=archived)
    home = data.home
    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    warnings: list[str] = []

    def note(message: str) -> None:
        warnings.append(message)
        warn(message)

    from coldlab.engine.kinds import KINDS

    own = {name: higher for kind in KINDS.values() for name, higher in kind.metric_directions.items()}

    directions = {}
    for name in metric_names(data.runs):
        try:
            directions[name] = registry.get("metric", name).cls.higher_is_better
        except ColdlabError:  # the values autoencoder runs record themselves, else no direction
            directions[name] = own.get(name)
    sections: list[dict[str, Any]] = []
    manifest: dict[str, Any] = {"home": str(home), "studies": [], "warnings": warnings}
    plans: list[tuple[str, list[Any], Any, dict[str, str]]] = []
    for study, runs in data.studies().items():
        table = build_table(study, runs, directions)
        files = {}
        writers = {"md": ("md", to_markdown), "csv": ("csv", to_csv), "latex": ("tex", to_latex)}
        for f in formats:
            if f in writers:
                ext, render = writers[f]
                path = out / f"table-{file_safe(study)}.{ext}"
                path.write_text(render(table))
                files[f] = path.name
        if "json" in formats:
            (out / f"table-{file_safe(study)}.json").write_text(dumps_json([table]))
            files["json"] = f"table-{file_safe(study)}.json"
        plans.append((study, runs, table, files))
    jobs = 1 if registry_given else jobs
    drawn = draw_studies([(study, runs) for study, runs, _, _ in plans], Path(home), registry, out / "figures", model_figures, jobs)
    for (study, runs, table, files), (figures, messages) in zip(plans, drawn, strict=True):
        for message in messages:
            note(message)
        sections.append({"study": study, "table": table, "figures": figures, "runs": runs, "table_file": files.get("md") or files.get("csv") or ""})
        manifest["studies"].append(
            {
                "study": study,
                "runs": [r.id for r in runs],
                "tables": files,
                "figures": [{**dataclasses.asdict(f), "path": f"figures/{f.path.name}"} for f in figures],
            }
        )
    if "html" in formats:
        from coldlab.report.html import render as render_html

        (out / "report.html").write_text(render_html(sections, warnings, str(home)))
        manifest["report"] = "report.html"
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def study_figures(study: str, runs: list[Any], home: Path, registry: Any, figdir: Path, model_figures: bool) -> tuple[list[fig.Figure], list[str]]:
    """Every figure of one study, and the warnings drawing them gave."""
    from coldlab.plugins import get_registry

    registry = registry or get_registry()
    messages: list[str] = []
    metrics = [m for m in metric_names(runs) if any(r.metric_history(m) for r in runs)]
    figures = (
        fig.schedules(study, runs, registry, figdir)
        + fig.losses(study, runs, figdir)
        + fig.metric_histories(study, runs, metrics, figdir)
        + fig.grids(study, runs, figdir)
        + fig.grids_by_epoch(study, runs, figdir)
        + fig.best_worst(runs, figdir)
        + fig.ks_curves(study, runs, figdir)
        + fig.class_histograms(study, runs, figdir)
        + fig.guidance_curves(study, runs, figdir)
        + sweep_curves(study, runs, metric_names(runs), figdir)
    )
    if model_figures:
        from coldlab.report.figures_model import model_figures as draw_model

        figures += draw_model(runs, home, registry, figdir, messages.append)
    return figures, messages


def _in_child(study: str, runs: list[Any], home: Path, figdir: Path, model_figures: bool) -> tuple[list[fig.Figure], list[str]]:
    from coldlab.engine.session import data_session

    with data_session():
        return study_figures(study, runs, home, None, figdir, model_figures)


def draw_studies(
    studies: list[tuple[str, list[Any]]], home: Path, registry: Any, figdir: Path, model_figures: bool, jobs: int
) -> list[tuple[list[fig.Figure], list[str]]]:
    """The figures of each study, in order: here when ``jobs`` is 1 or there is one study, else in ``jobs``
    fresh processes (spawned: a forked process inherits torch's thread pools in an unknown state)."""
    if jobs <= 1 or len(studies) <= 1:
        return [study_figures(study, runs, home, registry, figdir, model_figures) for study, runs in studies]
    import torch

    threads = torch.get_num_threads()
    workers = min(jobs, len(studies))
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=torch.set_num_threads, initargs=(max(1, threads // workers),)
    ) as pool:
        futures = [pool.submit(_in_child, study, runs, home, figdir, model_figures) for study, runs in studies]
        return [f.result() for f in futures]
