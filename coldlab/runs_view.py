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
from coldlab.store.queries import artifacts, evaluations, get_run, latest_metrics, list_runs, metric_series, running_seconds

__all__ = ["print_ls", "print_show", "run_details", "runs_summary"]


def runs_summary(home: Home) -> list[dict[str, Any]]:
    conn = home.connect(readonly=True)
    try:
        rows = list_runs(conn)
        latest = latest_metrics(conn)
        out = []
        for r in rows:
            metrics = dict(latest.get(r["id"], {}))
            out.append(
                {
                    "id": r["id"],
                    "study": r["study"],
                    "name": r["name"],
                    "status": r["status"],
                    "epoch": r["epoch"],
                    "epochs": r["epochs"],
                    "device": r["device"],
                    "train_loss": metrics.pop("train_loss", None),
                    "metrics": metrics,
                    "seconds": running_seconds(r),
                    "error": r["error"],
                }
            )
        return out
    finally:
        conn.close()


def print_ls(home: Home, as_json: bool) -> int:
    rows = runs_summary(home)
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title=escape(f"runs in {home.db}"))
    for col in ("id", "study", "name", "status", "epoch", "time", "train loss", "metrics"):
        table.add_column(col)
    for r in rows:
        metrics = ", ".join(f"{k}={format_number(v)}" for k, v in sorted(r["metrics"].items()) if v is not None and k != "train_loss_step")
        table.add_row(
            str(r["id"]),
            escape(r["study"]),
            escape(r["name"]),
            r["status"],
            f"{r['epoch']}/{r['epochs']}",
            format_duration(r["seconds"]),
            format_number(r["train_loss"]),
            escape(metrics),
        )
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
    console.print_json(json.dumps(details["config"]))
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
