"""Sweep figures: each metric against each swept value (mean over seeds, the std as error bars), one line
per experiment and values of the other swept keys. Numbers go on a numeric axis (logarithmic when the
values span more than a factor of 50, as learning rates do); other values (names, tables) are categories
in the order the sweep lists them."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from coldlab.formatting import file_safe
from coldlab.report.collect import RunRecord
from coldlab.report.figures import Figure, save
from coldlab.report.tables import sweep_keys
from coldlab.sweeps import short_keys, value_label


def final_value(run: RunRecord, name: str) -> float | None:
    """A metric's final value: the last training evaluation that computed it, else the series' last point."""
    history = run.metric_history(name)
    if history:
        return float(history[-1][1])
    series = [p["value"] for p in run.series.get(name, []) if p["value"] is not None]
    return float(series[-1]) if series else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def sweep_curves(study: str, runs: list[RunRecord], metrics: list[str], out: Path) -> list[Figure]:
    keys = sweep_keys(runs)
    short = short_keys(keys)
    figures: list[Figure] = []
    for key in keys:
        swept = [r for r in runs if key in r.params]
        values: list[Any] = []
        for r in swept:
            if r.params[key] not in values:
                values.append(r.params[key])
        if len(values) < 2:
            continue
        numeric = all(_is_number(v) for v in values)
        for name in [*metrics, "val_loss"]:
            # line: (experiment, other swept values) -> x value -> the seeds' values
            lines: dict[str, dict[str, list[float]]] = {}
            for r in swept:
                v = final_value(r, name)
                if v is None:
                    continue
                others = ", ".join(f"{short.get(k, k)}={value_label(x)}" for k, x in r.params.items() if k != key)
                line = r.experiment + (f" ({others})" if others else "")
                lines.setdefault(line, {}).setdefault(json.dumps(r.params[key], sort_keys=True), []).append(v)
            if not lines:
                continue
            fig, ax = plt.subplots(figsize=(7, 4))
            for line, points in lines.items():
                xs = [x for x in values if json.dumps(x, sort_keys=True) in points]
                ys = [statistics.fmean(points[json.dumps(x, sort_keys=True)]) for x in xs]
                errs = [statistics.stdev(p) if len(p) > 1 else 0.0 for p in (points[json.dumps(x, sort_keys=True)] for x in xs)]
                where = [float(x) for x in xs] if numeric else [values.index(x) for x in xs]
                ax.errorbar(where, ys, yerr=errs, marker="o", capsize=3, label=line)
            if numeric:
                numbers = [float(v) for v in values]
                if min(numbers) > 0 and max(numbers) / min(numbers) > 50:
                    ax.set_xscale("log")
            else:
                ax.set_xticks(range(len(values)), [value_label(v) for v in values], rotation=20)
            ax.set(title=f"{name} against {key}, study {study}", xlabel=key, ylabel=f"{name} (final)")
            ax.legend(fontsize=7)
            figures.append(
                Figure(
                    save(fig, out / f"sweep-{file_safe(name)}-{file_safe(key)}-{file_safe(study)}.png"),
                    f"{name} against {key}, study {study}",
                    f"Final {name} of each swept value of {key}: mean over seeds, error bars one standard deviation (none for one seed).",
                    list(lines),
                )
            )
    return figures
