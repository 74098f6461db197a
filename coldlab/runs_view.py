"""``coldlab ls`` and ``coldlab show``: what the store holds, as tables or JSON.

Every user string (study, experiment and run names, errors) reaches Rich escaped."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from coldlab.formatting import describe_value, format_duration, format_number
from coldlab.home import Home
from coldlab.provenance import provenance_lines
from coldlab.search import check_field, field_value, parse_all, select, sort_records
from coldlab.store.catalog import run_records
from coldlab.store.queries import artifacts, evaluations, get_run, metric_series, running_seconds
from coldlab.store.records import tags_of

__all__ = ["find_runs", "print_ls", "print_show", "run_details", "runs_summary"]


DEFAULT_COLUMNS = ("id", "study", "name", "status", "epoch", "time", "train loss", "metrics", "tags", "note")


def find_runs(
    home: Home, where: list[str] | None = None, *, sort: str | None = None, limit: int | None = None, archived: bool = False
) -> list[dict[str, Any]]:
    """The runs ``ls`` shows: run records (see :mod:`coldlab.store.catalog`) that every ``where`` expression
    holds for (see :mod:`coldlab.search`), sorted and cut to ``limit``. Archived runs only with ``archived``."""
    conditions = parse_all(where)
    sort_records([], sort)  # a bad sort key is an error before the store is read
    conn = home.connect(readonly=True)
    try:
        records = run_records(conn, archived=archived)
    finally:
        conn.close()
    found = sort_records(select(records, conditions), sort)
    return found[:limit] if limit is not None else found


def runs_summary(home: Home, where: list[str] | None = None, *, records: list[dict[str, Any]] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    """``ls --json``: one object per run (of ``records``, else those ``find_runs`` gives), its latest metrics under
    ``metrics`` (``train_loss`` beside them)."""
    out = []
    for r in find_runs(home, where, **kwargs) if records is None else records:
        metrics = dict(r["metrics"])
        r = {k: v for k, v in r.items() if k not in ("config", "provenance")}
        r["train_loss"] = metrics.pop("train_loss", None)
        r["metrics"] = metrics
        out.append(r)
    return out


def _cell(record: dict[str, Any], column: str) -> str:
    if column == "epoch":
        return f"{record['epoch']}/{record['epochs']}"
    if column == "time":
        return format_duration(record["seconds"])
    if column == "train loss":
        return format_number(record["metrics"].get("train_loss"))
    if column == "metrics":
        shown = {k: v for k, v in record["metrics"].items() if v is not None and k not in ("train_loss", "train_loss_step")}
        return ", ".join(f"{k}={format_number(v)}" for k, v in sorted(shown.items()))
    if column == "tags":
        return " ".join(record["tags"])
    if column == "note":
        note = (record["note"] or "").splitlines()[0] if record["note"] else ""
        return note if len(note) <= 40 else note[:39] + "…"
    field, key = check_field(column, "--columns", column)
    found, value = field_value(record, field, key)
    if not found:
        return ""
    return format_number(value) if isinstance(value, float) else json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def columns_of(text: list[str] | None) -> list[str]:
    """``--columns`` (names, comma or space separated) checked: table columns or search fields."""
    if not text:
        return list(DEFAULT_COLUMNS)
    columns = [c.strip() for part in text for c in part.split(",") if c.strip()]
    for column in columns:
        if column not in DEFAULT_COLUMNS:
            check_field(column, "--columns", column)
    return columns


def _hidden_note(home: Home) -> str:
    conn = home.connect(readonly=True)
    try:
        n = int(conn.execute("SELECT COUNT(*) FROM runs WHERE archived = 1").fetchone()[0])
    finally:
        conn.close()
    return f"{n} archived {'run' if n == 1 else 'runs'} hidden (--all shows them)" if n else ""


def print_ls(
    home: Home,
    as_json: bool,
    where: list[str] | None = None,
    *,
    sort: str | None = None,
    limit: int | None = None,
    columns: list[str] | None = None,
    archived: bool = False,
) -> int:
    shown = columns_of(columns)
    rows = find_runs(home, where, sort=sort, limit=limit, archived=archived)
    if as_json:
        print(json.dumps(runs_summary(home, records=rows), indent=2))
        return 0
    caption = ", ".join(part for part in (f"{len(rows)} matching" if where else "", "" if archived else _hidden_note(home)) if part)
    table = Table(title=escape(f"runs in {home.store_label}"), caption=caption or None)
    for col in shown:
        table.add_column(escape(col), overflow="fold")
    for r in rows:
        style = "dim" if r["archived"] else None
        table.add_row(*(escape(_cell(r, c)) for c in shown), style=style)
    Console().print(table)
    return 0


def run_details(home: Home, run_id: int) -> dict[str, Any]:
    conn = home.connect(readonly=True)
    try:
        r = get_run(conn, run_id)
        return {
            "id": r["id"],
            "study": r["study"],
            "name": r["name"],
            "status": r["status"],
            "error": r["error"],
            "epoch": r["epoch"],
            "epochs": r["epochs"],
            "step": r["step"],
            "device": r["device"],
            "attempts": r["attempts"],
            "worker_deaths": r["deaths"],
            "seconds": running_seconds(r),
            "experiment": r["experiment"] or r["name"],
            "seed": r["seed"],
            "params": json.loads(r["params"]) if r["params"] else {},
            "tags": tags_of(conn, [run_id])[run_id],
            "note": r["note"],
            "archived": bool(r["archived"]),
            "provenance": json.loads(r["provenance"]) if r["provenance"] else {},
            "config": json.loads(r["config"]),
            "metrics": metric_series(conn, run_id),
            "artifacts": [
                {"kind": a["kind"], "path": str(home.file(a["path"]).absolute()), "stored": a["path"], "epoch": a["epoch"]}
                for a in artifacts(conn, run_id)
            ],
            "evaluations": evaluations(conn, run_id),
        }
    finally:
        conn.close()


def print_show(home: Home, run_id: int, as_json: bool) -> int:
    details = run_details(home, run_id)
    if as_json:
        print(json.dumps(details, indent=2))
        return 0
    console = Console()
    console.print(
        f"[bold]run {details['id']}[/bold] {escape(details['study'])}/{escape(details['name'])}: {details['status']} "
        f"(epoch {details['epoch']}/{details['epochs']}, step {details['step']}, attempts {details['attempts']}"
        + (f", ran {format_duration(details['seconds'])}" if details["seconds"] is not None else "")
        + ")"
    )
    if details["error"]:
        console.print(f"[red]error:[/red] {escape(details['error'])}")
    if details["archived"]:
        console.print("[dim]archived (hidden from ls, export and the dashboard; coldlab archive --undo shows it again)[/dim]")
    if details["params"]:
        console.print("sweep values: " + escape(", ".join(f"{k} = {json.dumps(v)}" for k, v in details["params"].items())))
    if details["tags"]:
        console.print("tags: " + escape(" ".join(details["tags"])))
    if details["note"]:
        console.print("note: " + escape(details["note"]))
    console.print_json(json.dumps(details["config"]))
    for line in provenance_lines(details["provenance"]):
        console.print(escape(line))
    for name, series in details["metrics"].items():
        tail = ", ".join(f"{p['step']}: {p['value']:.4g}" for p in series[-8:] if p["value"] is not None)
        last = series[-1]
        if last["value"] is None:
            tail = (tail + "; " if tail else "") + f"last: {describe_value(None, last['detail'] or {})}"
        console.print(escape(f"{name} ({len(series)} points): {tail}"))
    if details["evaluations"]:
        table = Table(title="evaluations")
        for col in ("id", "origin", "epoch", "sampler", "metric", "value"):
            table.add_column(col, overflow="fold")
        for e in details["evaluations"]:
            sampler = e["sampler"]["name"] + "".join(f" {k}={v}" for k, v in e["sampler"].items() if k == "steps" and v is not None)
            for i, (name, v) in enumerate(e["values"].items()):
                head = (str(e["id"]), e["origin"], str(e["epoch"]), escape(sampler)) if i == 0 else ("", "", "", "")
                table.add_row(*head, escape(name), escape(describe_value(v["value"], v["detail"])))
        console.print(table)
    for a in details["artifacts"]:
        console.print(escape(f"{a['kind']} epoch {a['epoch']}: {a['path']}"))
    return 0
