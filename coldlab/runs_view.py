"""``coldlab ls`` and ``coldlab show``: what the store holds, as tables or JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from coldlab.store import artifacts, connect, evaluations, get_run, list_runs, metric_series


def format_number(x: float | None) -> str:
    """A metric value for a table cell: 4 significant digits, scientific when very large or small."""
    if x is None:
        return ""
    if x == 0 or 1e-3 <= abs(x) < 1e5:
        return f"{x:.4g}"
    return f"{x:.3e}"


def _latest(conn, run_id: int) -> dict[str, float | None]:
    rows = conn.execute(
        "SELECT name, value FROM metrics m WHERE run_id = ? AND step = (SELECT MAX(step) FROM metrics WHERE run_id = m.run_id AND name = m.name)",
        (run_id,),
    ).fetchall()
    return {r["name"]: r["value"] for r in rows}


def runs_summary(home: Path) -> list[dict[str, Any]]:
    conn = connect(Path(home) / "coldlab.db", readonly=True)
    out = []
    for r in list_runs(conn):
        latest = _latest(conn, r["id"])
        out.append({
            "id": r["id"], "study": r["study"], "name": r["name"], "status": r["status"], "epoch": r["epoch"],
            "epochs": r["epochs"], "device": r["device"], "train_loss": latest.pop("train_loss", None),
            "metrics": latest, "error": r["error"],
        })
    return out


def print_ls(home: Path, as_json: bool) -> int:
    rows = runs_summary(home)
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title=f"runs in {Path(home) / 'coldlab.db'}")
    for col in ("id", "study", "name", "status", "epoch", "train loss", "metrics"):
        table.add_column(col)
    for r in rows:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(r["metrics"].items()) if v is not None and k != "train_loss_step")
        loss = f"{r['train_loss']:.4f}" if r["train_loss"] is not None else ""
        table.add_row(str(r["id"]), r["study"], r["name"], r["status"], f"{r['epoch']}/{r['epochs']}", loss, metrics)
    Console().print(table)
    return 0


def run_details(home: Path, run_id: int) -> dict[str, Any]:
    conn = connect(Path(home) / "coldlab.db", readonly=True)
    r = get_run(conn, run_id)
    return {
        "id": r["id"], "study": r["study"], "name": r["name"], "status": r["status"], "error": r["error"],
        "epoch": r["epoch"], "epochs": r["epochs"], "step": r["step"], "device": r["device"], "attempts": r["attempts"],
        "config": json.loads(r["config"]), "metrics": metric_series(conn, run_id),
        "artifacts": [{"kind": a["kind"], "path": a["path"], "epoch": a["epoch"]} for a in artifacts(conn, run_id)],
        "evaluations": evaluations(conn, run_id),
    }


def describe_value(value: float | None, detail: dict[str, Any]) -> str:
    """A metric value as shown to people: the number, or why there is none."""
    if detail.get("unavailable"):
        return f"unavailable: {detail['unavailable']}"
    if value is None:
        return "none" + (" (p-value never above alpha: z_t never looks Gaussian)" if "first_t" in detail else "")
    return f"{value:.6g}"


def print_show(home: Path, run_id: int, as_json: bool) -> int:
    details = run_details(home, run_id)
    if as_json:
        print(json.dumps(details, indent=2))
        return 0
    console = Console()
    console.print(f"[bold]run {details['id']}[/bold] {details['study']}/{details['name']}: {details['status']} "
                  f"(epoch {details['epoch']}/{details['epochs']}, step {details['step']}, attempts {details['attempts']})")
    if details["error"]:
        console.print(f"[red]error:[/red] {details['error']}")
    console.print_json(json.dumps(details["config"]))
    for name, series in details["metrics"].items():
        tail = ", ".join(f"{p['step']}: {p['value']:.4g}" for p in series[-8:] if p["value"] is not None)
        last = series[-1]
        if last["value"] is None:
            tail = (tail + "; " if tail else "") + f"last: {describe_value(None, last['detail'] or {})}"
        console.print(f"{name} ({len(series)} points): {tail}")
    if details["evaluations"]:
        table = Table(title="evaluations")
        for col in ("id", "origin", "epoch", "sampler", "metric", "value"):
            table.add_column(col, overflow="fold")
        for e in details["evaluations"]:
            sampler = e["sampler"]["name"] + "".join(f" {k}={v}" for k, v in e["sampler"].items() if k == "steps" and v is not None)
            for i, (name, v) in enumerate(e["values"].items()):
                head = (str(e["id"]), e["origin"], str(e["epoch"]), sampler) if i == 0 else ("", "", "", "")
                table.add_row(*head, name, describe_value(v["value"], v["detail"]))
        console.print(table)
    for a in details["artifacts"]:
        console.print(f"{a['kind']} epoch {a['epoch']}: {a['path']}")
    return 0
