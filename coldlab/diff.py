"""``coldlab diff RUN RUN``: what differs between two runs — the flattened config keys (and swept values),
the final metrics side by side, and the provenance (commit, study file, versions, host, device)."""

from __future__ import annotations

import json
from typing import Any

from coldlab.dotted import flatten
from coldlab.errors import ColdlabError
from coldlab.formatting import format_number
from coldlab.home import Home
from coldlab.store.catalog import run_records

MISSING = "(absent)"  # a key one run has and the other does not


def differing(tables: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Dotted key -> each table's value, for every key whose values are not all equal (MISSING where a
    table lacks it): two runs for ``coldlab diff``, any number for the dashboard's compare screen."""
    flat = [flatten(t) for t in tables]
    out = {}
    for key in sorted(set().union(*flat)):
        values = [f.get(key, MISSING) for f in flat]
        if any(v != values[0] for v in values[1:]):
            out[key] = values
    return out


def _changed(a: dict[str, Any], b: dict[str, Any]) -> dict[str, list[Any]]:
    """Dotted key -> [value in a, value in b] for every key whose values differ (MISSING where absent)."""
    return differing([a, b])


def diff_runs(home: Home, a: int, b: int) -> dict[str, Any]:
    """The differences between runs ``a`` and ``b`` (archived runs too) as JSON-friendly data."""
    conn = home.connect(readonly=True)
    try:
        records = {r["id"]: r for r in run_records(conn, ids=[a, b])}
    finally:
        conn.close()
    for run_id in (a, b):
        if run_id not in records:
            raise ColdlabError(f"no run with id {run_id}", hint="`coldlab ls --all` lists the runs")
    ra, rb = records[a], records[b]
    names = sorted((set(ra["metrics"]) | set(rb["metrics"])) - {"train_loss_step"})
    return {
        "runs": [{k: r[k] for k in ("id", "study", "name", "experiment", "seed", "status", "tags", "note")} for r in (ra, rb)],
        "config": _changed(ra["config"], rb["config"]),
        "params": _changed(ra["params"], rb["params"]),
        "metrics": {n: [ra["metrics"].get(n), rb["metrics"].get(n)] for n in names},
        "provenance": _changed(ra["provenance"], rb["provenance"]),
    }


def show_value(value: Any) -> str:
    """A config value as ``coldlab diff`` and the compare screen show it (numbers shortened, JSON otherwise)."""
    if isinstance(value, float):
        return format_number(value)
    return json.dumps(value) if not isinstance(value, str) else value


def print_diff(home: Home, a: int, b: int, as_json: bool) -> int:
    out = diff_runs(home, a, b)
    if as_json:
        print(json.dumps(out, indent=2))
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    ra, rb = out["runs"]
    head_a, head_b = f"{ra['id']} {ra['name']}", f"{rb['id']} {rb['name']}"
    for section, title in (("config", "config"), ("params", "sweep values"), ("provenance", "provenance")):
        rows = out[section]
        if not rows:
            console.print(escape(f"{title}: the same"))
            continue
        table = Table(title=escape(f"{title}: {len(rows)} keys differ"))
        for col in ("key", head_a, head_b):
            table.add_column(escape(col), overflow="fold")
        for key, (va, vb) in rows.items():
            table.add_row(escape(key), escape(show_value(va)), escape(show_value(vb)))
        console.print(table)
    if out["metrics"]:
        table = Table(title="final metrics (latest value)")
        for col in ("metric", head_a, head_b, "b - a"):
            table.add_column(escape(col), overflow="fold")
        for name, (va, vb) in out["metrics"].items():
            delta = format_number(vb - va) if isinstance(va, (int, float)) and isinstance(vb, (int, float)) else ""
            table.add_row(escape(name), format_number(va) if va is not None else "-", format_number(vb) if vb is not None else "-", delta)
        console.print(table)
    else:
        console.print("metrics: neither run recorded any")
    return 0
