"""The self-contained HTML report: every image embedded as a data URI, no external resource.

Per study: the comparison table (metrics first; click a header to sort, type in the box above it to
filter rows), the study's figures, then a section per run with its facts (status, sweep values, tags,
note, provenance), its own figures (loss curves, model figures), its sample grids with an epoch slider,
and its config. The page's one inline script sorts, filters and moves the sliders; it loads nothing."""

from __future__ import annotations

import base64
import html
import io
import json
import time
from pathlib import Path
from typing import Any

from coldlab.provenance import provenance_lines
from coldlab.report.collect import RunRecord
from coldlab.report.figures import Figure
from coldlab.report.tables import Table, to_html

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table.comparison { border-collapse: collapse; font-size: 0.85em; display: block; overflow-x: auto; }
table.comparison th, table.comparison td { border: 1px solid #ccc; padding: 0.25em 0.5em; white-space: nowrap; }
table.comparison th { background: #f2f2f2; }
td.best { font-weight: bold; background: #e8f5e9; }
td.unavailable { color: #a66; font-style: italic; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
pre { background: #f7f7f7; padding: 0.5em; overflow-x: auto; font-size: 0.8em; }
.warning { color: #a60; }
.tag { background: #e3ecf7; border-radius: 3px; padding: 0 0.3em; font-size: 0.85em; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort=ascending]::after { content: " \\25B2"; }
table.sortable th[aria-sort=descending]::after { content: " \\25BC"; }
input.filter { margin: 0.3em 0; padding: 0.2em 0.4em; width: 20em; }
.epochs img { display: none; max-width: 100%; } .epochs img.shown { display: block; }
.epochs input[type=range] { width: 20em; vertical-align: middle; }
"""

SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener('click', function () {
      var down = th.getAttribute('aria-sort') === 'ascending';
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', down ? 'descending' : 'ascending');
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var cell = row.cells[col], v = cell.getAttribute('data-value');
        if (v !== null) { return parseFloat(v); }
        var n = parseFloat(cell.textContent);
        return isNaN(n) || th.getAttribute('data-type') !== 'num' && !/^-?[0-9.e+-]+$/i.test(cell.textContent.trim()) ? cell.textContent.trim() : n;
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === '' || y === '') { return x === '' ? (y === '' ? 0 : 1) : -1; }
        var c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
        return down ? -c : c;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
document.querySelectorAll('input.filter').forEach(function (box) {
  box.addEventListener('input', function () {
    var terms = box.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var table = document.getElementById(box.getAttribute('data-for'));
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      var text = row.textContent.toLowerCase();
      row.style.display = terms.every(function (t) { return text.indexOf(t) >= 0; }) ? '' : 'none';
    });
  });
});
document.querySelectorAll('.epochs').forEach(function (box) {
  var slider = box.querySelector('input[type=range]'), label = box.querySelector('output');
  var images = box.querySelectorAll('img');
  slider.addEventListener('input', function () {
    Array.prototype.forEach.call(images, function (img, i) { img.classList.toggle('shown', i === +slider.value); });
    label.textContent = 'epoch ' + images[+slider.value].getAttribute('data-epoch');
  });
});
"""

MOST_EPOCHS = 24  # grids a run's slider holds (evenly thinned, first and last kept)


def compact_png(path: Path) -> bytes:
    """A PNG as the page embeds it: grey images as 8-bit grey, others with a 256-colour palette (plots
    have a few dozen colours; the saved files under ``figures/`` keep full colour), optimised."""
    from PIL import Image

    with Image.open(path) as img:
        rgb = img.convert("RGB")
        r, g, b = rgb.split()
        small = rgb.convert("L") if r.tobytes() == g.tobytes() == b.tobytes() else rgb.quantize(colors=256)
        out = io.BytesIO()
        small.save(out, format="PNG", optimize=True)
    data = out.getvalue()
    original = path.read_bytes()
    return data if len(data) < len(original) else original


def _data_uri(path: Path) -> str:
    return f"data:image/png;base64,{base64.b64encode(compact_png(path)).decode()}"


def _img(figure: Figure) -> str:
    data = base64.b64encode(compact_png(figure.path)).decode()
    return (
        f'<figure id="{html.escape(figure.path.name)}"><img alt="{html.escape(figure.title)}" '
        f'data-file="{html.escape(figure.path.name)}" src="data:image/png;base64,{data}">'
        f"<figcaption><b>{html.escape(figure.title)}.</b> {html.escape(figure.caption)}</figcaption></figure>"
    )


def _epoch_slider(run: RunRecord) -> str:
    """The run's sample grids, one epoch at a time, with a slider (the newest shown first)."""
    grids: dict[int, Any] = {}
    for a in run.artifacts:
        if a["kind"] == "grid" and a["epoch"] is not None:
            path = run.artifact("grid", int(a["epoch"]))
            if path is not None:
                grids[int(a["epoch"])] = path
    epochs = sorted(grids)
    if len(epochs) > MOST_EPOCHS:
        epochs = [epochs[round(i * (len(epochs) - 1) / (MOST_EPOCHS - 1))] for i in range(MOST_EPOCHS)]
    if not epochs:
        return ""
    last = len(epochs) - 1
    shown = ' class="shown"'
    images = "".join(
        f'<img alt="samples of run {run.id} at epoch {e}" data-epoch="{e}"{shown if i == last else ""} src="{_data_uri(grids[e])}">'
        for i, e in enumerate(epochs)
    )
    return (
        f"<div class='epochs' id='epochs-run{run.id}'><p>Samples (same start points every epoch): "
        f"<input type='range' min='0' max='{last}' value='{last}' aria-label='epoch of run {run.id}'> "
        f"<output>epoch {epochs[-1]}</output></p>{images}</div>"
    )


def _run_section(run: RunRecord, figures: list[Figure] | None = None) -> str:
    status = html.escape(run.status) + (f": {html.escape(run.error)}" if run.error else "")
    unavailable = sorted(
        {
            f"{n}: {v['detail']['unavailable']}"
            for e in run.evaluations
            for n, v in e["values"].items()
            if v["value"] is None and v["detail"].get("unavailable")
        }
    )
    extra = "".join(f"<li class='warning'>unavailable — {html.escape(u)}</li>" for u in unavailable)
    facts = []
    if run.params:
        facts.append("sweep values: " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in run.params.items()))
    if run.tags:
        facts.append("tags: " + " ".join(run.tags))
    if run.note:
        facts.append("note: " + run.note)
    facts += provenance_lines(run.provenance)
    listed = "".join(f"<li>{html.escape(f)}</li>" for f in facts)
    tags = "".join(f" <span class='tag'>{html.escape(t)}</span>" for t in run.tags)
    own = "".join(_img(f) for f in figures or [])
    return (
        f"<section class='run' id='run-{run.id}'><h4>run {run.id}: {html.escape(run.name)} — {status}, epoch {run.epoch}/{run.epochs}{tags}</h4>"
        f"<ul>{listed}{extra}</ul>{own}{_epoch_slider(run)}"
        f"<details><summary>config</summary><pre>{html.escape(json.dumps(run.config, indent=2))}</pre></details></section>"
    )


def render(sections: list[dict[str, Any]], warnings: list[str], home: str) -> str:
    """``sections``: per study, {"study", "table", "figures", "runs"}."""
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>coldlab report</title><style>{STYLE}</style></head><body>",
        f"<h1>coldlab report</h1><p>Store: <code>{html.escape(home)}</code>; exported {time.strftime('%Y-%m-%d %H:%M')}. "
        "Figures marked <i>epoch N weights</i> show the model at that epoch: drawn from what the run stored after its last "
        "epoch, or, for a run stored before that, computed at export time from its saved weights.</p>",
    ]
    if warnings:
        parts.append("<ul>" + "".join(f"<li class='warning'>{html.escape(w)}</li>" for w in warnings) + "</ul>")
    parts.append(
        "<nav><ul>"
        + "".join(f"<li><a href='#study-{html.escape(s['study'])}'>study {html.escape(s['study'])}</a></li>" for s in sections)
        + "</ul></nav>"
    )
    for s in sections:
        table: Table = s["table"]
        parts.append(f"<section id='study-{html.escape(s['study'])}'><h2>Study {html.escape(s['study'])}</h2>")
        table_id = f"table-{html.escape(s['study'])}"
        parts.append(
            f"<h3>Comparison</h3><input class='filter' type='search' placeholder='filter rows (all words must match)' "
            f"data-for='{table_id}' aria-label='filter the rows of study {html.escape(s['study'])}'>"
            f"<div data-table='{html.escape(s['table_file'])}'>{to_html(table, table_id)}</div>"
        )
        by_run: dict[int, list[Figure]] = {}
        for f in s["figures"]:
            if f.run is not None:
                by_run.setdefault(f.run, []).append(f)
        parts.append("<h3>Figures</h3>" + "".join(_img(f) for f in s["figures"] if f.run is None or f.run not in {r.id for r in s["runs"]}))
        parts.append("<h3>Runs</h3>" + "".join(_run_section(r, by_run.get(r.id)) for r in s["runs"]) + "</section>")
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts)
