"""Metric rows (unique on run, name, step) and artifact paths."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any, Iterable

from coldlab.store.connection import transaction


def record_metrics(conn: sqlite3.Connection, run_id: int, rows: Iterable[tuple[str, int, int | None, float | None, dict | None]]) -> int:
    """Append (name, step, epoch, value, detail) rows; a row already stored for (run, name, step) is
    kept as it is, so a resumed run never duplicates. Returns how many rows were new."""
    now = time.time()
    with transaction(conn):
        before = conn.total_changes
        conn.executemany(
            "INSERT OR IGNORE INTO metrics (run_id, name, step, epoch, value, detail, recorded) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(run_id, n, s, e, v, json.dumps(d) if d is not None else None, now) for n, s, e, v, d in rows],
        )
        return conn.total_changes - before


def metric_series(conn: sqlite3.Connection, run_id: int, name: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every metric of a run as name -> [{step, epoch, value, detail}] ordered by step."""
    sql, args = "SELECT name, step, epoch, value, detail FROM metrics WHERE run_id = ?", [run_id]
    if name:
        sql += " AND name = ?"
        args.append(name)
    out: dict[str, list[dict[str, Any]]] = {}
    for r in conn.execute(sql + " ORDER BY name, step", args):
        out.setdefault(r["name"], []).append(
            {"step": r["step"], "epoch": r["epoch"], "value": r["value"], "detail": json.loads(r["detail"]) if r["detail"] else None}
        )
    return out


def record_artifact(conn: sqlite3.Connection, run_id: int, kind: str, path: str, *, epoch: int | None = None,
                    step: int | None = None) -> None:
    with transaction(conn):
        conn.execute(
            "INSERT OR REPLACE INTO artifacts (run_id, kind, path, epoch, step, created) VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, kind, path, epoch, step, time.time()),
        )


def artifacts(conn: sqlite3.Connection, run_id: int, kind: str | None = None) -> list[sqlite3.Row]:
    sql, args = "SELECT * FROM artifacts WHERE run_id = ?", [run_id]
    if kind:
        sql += " AND kind = ?"
        args.append(kind)
    return conn.execute(sql + " ORDER BY created, path", args).fetchall()
