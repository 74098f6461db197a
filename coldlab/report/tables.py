"""Comparison tables: one row per experiment and set of swept values (its seeds pooled as mean ± std),
rendered as Markdown, CSV, LaTeX, JSON and HTML. A study with sweeps has a column per swept key.

Columns: the distinguishing settings (degradation, schedule, network, sampler, steps), epochs,
training time, final train and validation loss, and for every metric its *final* value (the last
training evaluation that computed it) and, where the metric says which way is better, its *best*
value over the training evaluations. Evaluations made later by ``coldlab eval`` (another sampler
or step count) become rows of their own, labelled with that sampler. The best value of each
column with a direction is marked (bold; ``best`` in CSV/JSON). A metric that was unavailable
shows as ``unavailable`` with its reason in the notes.
"""

from __future__ import annotations

import csv
import dataclasses
import html
import io
import json
import re
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coldlab.engine.kinds import kind_of
from coldlab.errors import ColdlabError
from coldlab.formatting import format_number
from coldlab.report.collect import RunRecord
from coldlab.sweeps import value_label


@dataclasses.dataclass
class Column:
    key: str
    label: str
    higher_is_better: bool | None = None  # None: no best marked
    numeric: bool = True


@dataclasses.dataclass
class Cell:
    values: list[float] = dataclasses.field(default_factory=list)
    text: str | None = None  # for settings and notes
    unavailable: str | None = None

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None


@dataclasses.dataclass
class Table:
    study: str
    columns: list[Column]
    rows: list[dict[str, Cell]]
    notes: list[str]

    def best(self, key: str) -> set[int]:
        """Indices of the rows holding the best value of a column (ties all marked)."""
        col = next(c for c in self.columns if c.key == key)
        if col.higher_is_better is None:
            return set()
        means = [(i, m) for i, r in enumerate(self.rows) if key in r and (m := r[key].mean) is not None]
        if len(means) < 2:
            return set()
        if len({m for _, m in means}) == 1:
            return set()  # every row the same: nothing stands out
        target = (max if col.higher_is_better else min)(m for _, m in means)
        return {i for i, m in means if m == target}


def cell_text(cell: Cell | None) -> str:
    if cell is None:
        return ""
    if cell.text is not None:
        return cell.text
    if cell.unavailable and not cell.values:
        return "unavailable"
    if cell.mean is None:
        return "–"
    return format_number(cell.mean) + (f" ± {format_number(cell.std)}" if cell.std is not None else "")


def _settings(run: RunRecord, sampler: dict[str, Any] | None = None) -> dict[str, str]:
    cfg = run.config
    kind = kind_of(cfg)
    if not kind.samples:  # an autoencoder run: its model in the network column
        models = []
        for key in kind.components:
            params = ", ".join(f"{k}={v}" for k, v in cfg[key].items() if k != "name")
            models.append(f"{key} {cfg[key]['name']} ({params})")
        return {"degradation": "", "schedule": "", "network": "; ".join(models), "sampler": "", "steps": ""}
    deg = cfg["degradation"]
    sched = deg.get("schedule")
    samp = sampler or cfg["sampler"]
    sched_text = ""
    if isinstance(sched, dict):
        extras = [f"{k}={v}" for k, v in sched.items() if k not in ("name", "T")]
        sched_text = f"{sched['name']} (T={sched.get('T')}{', ' if extras else ''}{', '.join(extras)})"
    return {
        "degradation": describe("degradation", deg),
        "schedule": sched_text,
        "network": cfg["network"]["name"] + latent_text(cfg),
        "sampler": describe("sampler", samp),
        "steps": str(samp.get("steps") or "all"),
    }


def describe(kind: str, spec: dict[str, Any]) -> str:
    """A component as tables name it: its class's ``describe`` of the resolved table (a component whose
    plugin is no longer installed is named only)."""
    from coldlab.plugins import get_registry

    try:
        cls = get_registry().get(kind, spec["name"]).cls
    except ColdlabError:
        return str(spec["name"])
    return str(cls.describe(spec))


def latent_text(cfg: dict[str, Any]) -> str:
    """`` in the latent space of RUN`` (or of an autoencoder file) for latent diffusion runs."""
    latent = cfg.get("latent")
    if not latent:
        return ""
    if "run" in latent:
        return f" in the latent space of {latent['run']}" + (f" (run {latent['run_id']})" if "run_id" in latent else "")
    return f" in the latent space of {Path(latent['checkpoint']).name}"


SETTINGS = ("degradation", "schedule", "network", "sampler", "steps")


def sweep_keys(runs: list[RunRecord]) -> list[str]:
    """The swept keys of the runs, in the order the sweeps give them."""
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run.params if k not in keys]
    return keys


def metric_names(runs: list[RunRecord]) -> list[str]:
    names: list[str] = []
    for run in runs:
        for e in run.evaluations:
            for name in e["values"]:
                if name not in names:
                    names.append(name)
    return names


def _metric_cells(evals: list[dict[str, Any]], name: str, higher: bool | None) -> tuple[Cell, Cell]:
    """(final, best) of one metric over a run's evaluations (oldest first)."""
    final, best = Cell(), Cell()
    with_metric = [e for e in evals if name in e["values"]]
    if not with_metric:
        return final, best
    last = with_metric[-1]["values"][name]
    if last["value"] is not None:
        final.values.append(last["value"])
    elif last["detail"].get("unavailable"):
        final.unavailable = last["detail"]["unavailable"]
    numbers = [e["values"][name]["value"] for e in with_metric if e["values"][name]["value"] is not None]
    if numbers and higher is not None:
        best.values.append(max(numbers) if higher else min(numbers))
    elif final.unavailable:
        best.unavailable = final.unavailable
    return final, best


def _merge(cells: list[Cell]) -> Cell:
    out = Cell()
    for c in cells:
        out.values += c.values
        out.unavailable = out.unavailable or c.unavailable
    return out


def build_table(study: str, runs: list[RunRecord], directions: dict[str, bool | None]) -> Table:
    """The comparison table of one study."""
    metrics = metric_names(runs)
    swept = sweep_keys(runs)
    columns = [Column("experiment", "experiment", numeric=False)]
    columns += [Column(f"param:{k}", f"sweep: {k}", numeric=False) for k in swept]
    columns += [Column("runs", "runs", numeric=False), Column("tags", "tags", numeric=False)]
    columns += [Column(k, k, numeric=False) for k in SETTINGS]
    columns += [
        Column("epochs", "epochs", numeric=False),
        Column("train_seconds", "train time (s)", False),
        Column("train_loss", "final train loss", False),
        Column("val_loss", "final val loss", False),
    ]
    for name in metrics:
        higher = directions.get(name)
        columns.append(Column(f"{name}:final", f"{name} (final)", higher))
        if higher is not None:
            columns.append(Column(f"{name}:best", f"{name} (best)", higher))
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for run in runs:  # an experiment's runs at one set of swept values: its seeds, pooled
        groups.setdefault((run.experiment, json.dumps(run.params, sort_keys=True)), []).append(run)
    rows, notes = [], []
    for (experiment, _), members in groups.items():
        statuses = [m.status for m in members]
        status = "" if set(statuses) == {"finished"} else " [" + ", ".join(f"{statuses.count(s)} {s}" for s in sorted(set(statuses))) + "]"
        tags = sorted({t for m in members for t in m.tags})
        row = {
            "experiment": Cell(text=experiment + status),
            **{f"param:{k}": Cell(text=value_label(members[0].params[k])) for k in swept if k in members[0].params},
            "runs": Cell(text=", ".join(str(m.id) for m in members)),
            "tags": Cell(text=" ".join(tags)),
            "epochs": Cell(text="/".join(sorted({f"{m.epoch}/{m.epochs}" for m in members}))),
            "train_seconds": Cell([m.seconds for m in members if m.seconds is not None]),
        }
        for key, value in _settings(members[0]).items():
            row[key] = Cell(text=value)
        for series in ("train_loss", "val_loss"):
            row[series] = Cell([m.series[series][-1]["value"] for m in members if m.series.get(series)])
        for name in metrics:
            pairs = [_metric_cells(m.training_evaluations, name, directions.get(name)) for m in members]
            row[f"{name}:final"] = _merge([p[0] for p in pairs])
            row[f"{name}:best"] = _merge([p[1] for p in pairs])
        rows.append(row)
        for m in members:  # re-evaluations with coldlab eval: one row each
            for e in m.evaluations:
                if e["origin"] == "training":
                    continue
                settings = _settings(m, e["sampler"])
                guided = e["settings"].get("guidance_scale")
                if guided is not None:
                    settings["sampler"] += f" w={guided} class={e['settings'].get('class', 'all')}"
                label = (
                    f"{m.name} (w={guided:g})"
                    if e["origin"] == "guidance" and guided is not None
                    else f"{m.name} (evaluation {e['id']}, epoch {e['epoch']})"
                )
                extra = {
                    "experiment": Cell(text=label),
                    **{f"param:{k}": Cell(text=value_label(m.params[k])) for k in swept if k in m.params},
                    "runs": Cell(text=str(m.id)),
                    "tags": Cell(text=" ".join(m.tags)),
                    "epochs": Cell(text=f"{e['epoch']}/{m.epochs}"),
                    **{k: Cell(text=v) for k, v in settings.items()},
                }
                for name in metrics:
                    final, _ = _metric_cells([e], name, directions.get(name))
                    extra[f"{name}:final"] = final
                rows.append(extra)
    for row in rows:
        for name in metrics:
            cell = row.get(f"{name}:final")
            if cell is not None and cell.unavailable and not cell.values:
                note = f"{name} unavailable: {cell.unavailable}"
                if note not in notes:
                    notes.append(note)
    return Table(study, columns, rows, notes)


# ---- renderers ----------------------------------------------------------------------------
def _visible(table: Table) -> list[Column]:
    return [c for c in table.columns if any(c.key in r and cell_text(r[c.key]) for r in table.rows)]


def to_markdown(table: Table) -> str:
    cols = _visible(table)
    best = {c.key: table.best(c.key) for c in cols}
    lines = ["| " + " | ".join(c.label for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for i, row in enumerate(table.rows):
        cells = []
        for c in cols:
            text = cell_text(row.get(c.key)).replace("|", "\\|")
            cells.append(f"**{text}**" if i in best[c.key] else text)
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Bold: the best value of the column (mean over seeds)."] + [f"- {n}" for n in table.notes]
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    """Numbers unrounded: a mean column, a std column where any row has seeds, a best flag."""
    cols = _visible(table)
    header: list[str] = []
    getters: list[Callable[..., str]] = []
    for c in cols:
        best = table.best(c.key)
        if c.numeric:
            header.append(c.label)
            getters.append(
                lambda i, r, k=c.key: (
                    "" if k not in r else (repr(r[k].mean) if r[k].mean is not None else ("unavailable" if r[k].unavailable else ""))
                )
            )
            if any(c.key in r and r[c.key].std is not None for r in table.rows):
                header.append(c.label + " std")
                getters.append(lambda i, r, k=c.key: repr(r[k].std) if k in r and r[k].std is not None else "")
            if c.higher_is_better is not None:
                header.append(c.label + " best")
                getters.append(lambda i, r, b=best: "1" if i in b else "0")
        else:
            header.append(c.label)
            getters.append(lambda i, r, k=c.key: cell_text(r.get(k)))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for i, row in enumerate(table.rows):
        writer.writerow([g(i, row) for g in getters])
    return out.getvalue()


_LATEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "_": r"\_",
    "#": r"\#",
    "$": r"\$",
    "{": r"\{",
    "}": r"\}",
    "^": r"\textasciicircum{}",
    "~": r"\textasciitilde{}",
    "±": r"$\pm$",
    "–": "--",
}
_LATEX_SPECIAL = re.compile("|".join(re.escape(c) for c in _LATEX))


def _latex_escape(text: str) -> str:
    """Text for a LaTeX table cell: every special character escaped (in one pass, so an escape is
    never escaped again)."""
    return _LATEX_SPECIAL.sub(lambda m: _LATEX[m.group(0)], text)


def to_latex(table: Table) -> str:
    cols = _visible(table)
    best = {c.key: table.best(c.key) for c in cols}
    lines = [
        r"\begin{tabular}{" + "".join("r" if c.numeric else "l" for c in cols) + "}",
        r"\hline",
        " & ".join(_latex_escape(c.label) for c in cols) + r" \\",
        r"\hline",
    ]
    for i, row in enumerate(table.rows):
        cells = []
        for c in cols:
            text = _latex_escape(cell_text(row.get(c.key)))
            cells.append(r"\textbf{" + text + "}" if i in best[c.key] else text)
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def to_json(table: Table) -> dict[str, Any]:
    cols = _visible(table)
    rows = []
    for i, row in enumerate(table.rows):
        out: dict[str, Any] = {}
        for c in cols:
            cell = row.get(c.key)
            if cell is None:
                continue
            if not c.numeric:
                out[c.key] = cell.text
            else:
                out[c.key] = {
                    "mean": cell.mean,
                    "std": cell.std,
                    "n": len(cell.values),
                    "values": cell.values,
                    "unavailable": cell.unavailable,
                    "best": i in table.best(c.key),
                }
        rows.append(out)
    return {"study": table.study, "columns": [dataclasses.asdict(c) for c in cols], "rows": rows, "notes": table.notes}


HTML_FIRST = ("experiment", "runs")
HTML_AFTER_METRICS = ("train_loss", "val_loss", "train_seconds", "epochs", "tags")


def html_columns(table: Table) -> list[Column]:
    """The HTML table's columns, metrics first: experiment and runs, every metric (final, best), the final
    losses, time, epochs and tags, then the swept values and the settings (what differs least, last)."""
    cols = _visible(table)

    def rank(c: Column) -> tuple[int, int]:
        if c.key in HTML_FIRST:
            return (0, HTML_FIRST.index(c.key))
        if c.key.endswith((":final", ":best")):
            return (1, 0)
        if c.key in HTML_AFTER_METRICS:
            return (2, HTML_AFTER_METRICS.index(c.key))
        return (3 if c.key.startswith("param:") else 4, 0)

    return sorted(cols, key=rank)  # stable: the metrics keep their order


def to_html(table: Table, table_id: str = "") -> str:
    """The comparison table for the report: metrics first, each numeric cell carrying its value
    (``data-value``) so the page's script sorts by number; headers carry ``data-type``."""
    cols = html_columns(table)
    best = {c.key: table.best(c.key) for c in cols}
    head = "".join(
        f'<th data-type="{"num" if c.numeric else "text"}" title="sort by {html.escape(c.label)}">{html.escape(c.label)}</th>' for c in cols
    )
    body = []
    for i, row in enumerate(table.rows):
        tds = []
        for c in cols:
            cell = row.get(c.key)
            text = html.escape(cell_text(cell))
            cls = (
                ' class="best"' if i in best[c.key] else (' class="unavailable"' if cell is not None and cell.unavailable and not cell.values else "")
            )
            title = f' title="{html.escape(cell.unavailable)}"' if cell is not None and cell.unavailable else ""
            value = f' data-value="{cell.mean!r}"' if cell is not None and cell.mean is not None else ""
            tds.append(f"<td{cls}{title}{value}>{text}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in table.notes)
    ident = f' id="{html.escape(table_id)}"' if table_id else ""
    return (
        f'<table class="comparison sortable"{ident}><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
        f'<p class="legend">Bold: the best value of the column (mean over seeds; ± is the std over seeds). Click a header to sort.</p>'
        + (f"<ul class='notes'>{notes}</ul>" if notes else "")
    )


def dumps_json(tables: list[Table]) -> str:
    return json.dumps([to_json(t) for t in tables], indent=2)
