"""The self-contained HTML report: every image embedded as a data URI, no external resource."""

from __future__ import annotations

import base64
import html
import json
import time
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
"""


def _img(figure: Figure) -> str:
    data = base64.b64encode(figure.path.read_bytes()).decode()
    return (
        f'<figure id="{html.escape(figure.path.name)}"><img alt="{html.escape(figure.title)}" '
        f'data-file="{html.escape(figure.path.name)}" src="data:image/png;base64,{data}">'
        f"<figcaption><b>{html.escape(figure.title)}.</b> {html.escape(figure.caption)}</figcaption></figure>"
    )


def _run_section(run: RunRecord) -> str:
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
    return (
        f"<details><summary>run {run.id}: {html.escape(run.name)} — {status}, epoch {run.epoch}/{run.epochs}{tags}</summary>"
        f"<ul>{listed}{extra}</ul><pre>{html.escape(json.dumps(run.config, indent=2))}</pre></details>"
    )


def render(sections: list[dict[str, Any]], warnings: list[str], home: str) -> str:
    """``sections``: per study, {"study", "table", "figures", "runs"}."""
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>coldlab report</title><style>{STYLE}</style></head><body>",
        f"<h1>coldlab report</h1><p>Store: <code>{html.escape(home)}</code>; exported {time.strftime('%Y-%m-%d %H:%M')}. "
        "Figures marked <i>epoch N weights</i> were computed at export time from the run's saved weights.</p>",
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
        parts.append(f"<h3>Comparison</h3><div data-table='{html.escape(s['table_file'])}'>{to_html(table)}</div>")
        parts.append("<h3>Figures</h3>" + "".join(_img(f) for f in s["figures"]))
        parts.append("<h3>Runs</h3>" + "".join(_run_section(r) for r in s["runs"]) + "</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
