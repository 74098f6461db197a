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


def record_evaluation(conn: sqlite3.Connection, run_id: int, *, origin: str, epoch: int | None, step: int | None,
                      sampler: dict[str, Any], settings: dict[str, Any], results: list[tuple[str, float | None, dict]],
                      seconds: float | None = None, key: str | None = None, series: bool = False) -> tuple[int, bool]:
    """Store one evaluation and its (name, value, detail) results in one transaction.

    ``key`` makes it idempotent (a training evaluation is keyed ``training:EPOCH``, so a resumed
    run does not record it twice); ``series = True`` also appends the values to the run's metric
    series at ``step`` (what curves and sparklines read). Returns (evaluation id, created).
    """
    now = time.time()
    with transaction(conn):
        if key is not None:
            row = conn.execute("SELECT id FROM evaluations WHERE key = ?", (key,)).fetchone()
            if row:
                return int(row["id"]), False
        cur = conn.execute(
            "INSERT INTO evaluations (run_id, key, origin, epoch, step, sampler, settings, seconds, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, key, origin, epoch, step, json.dumps(sampler, sort_keys=True), json.dumps(settings, sort_keys=True), seconds, now),
        )
        eval_id = int(cur.lastrowid)
        conn.executemany(
            "INSERT INTO evaluation_values (evaluation_id, name, value, detail) VALUES (?, ?, ?, ?)",
            [(eval_id, n, v, json.dumps({**d, "evaluation": eval_id})) for n, v, d in results],
        )
        if series:
            conn.executemany(
                "INSERT OR IGNORE INTO metrics (run_id, name, step, epoch, value, detail, recorded) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(run_id, n, step, epoch, v, json.dumps({**d, "evaluation": eval_id}), now) for n, v, d in results],
            )
        return eval_id, True


def has_evaluation(conn: sqlite3.Connection, key: str) -> bool:
    return conn.execute("SELECT 1 FROM evaluations WHERE key = ?", (key,)).fetchone() is not None


def evaluations(conn: sqlite3.Connection, run_id: int) -> list[dict[str, Any]]:
    """Every evaluation of a run, oldest first, each with its values as name -> {value, detail}."""
    out = []
    for e in conn.execute("SELECT * FROM evaluations WHERE run_id = ? ORDER BY id", (run_id,)).fetchall():
        values = {
            v["name"]: {"value": v["value"], "detail": json.loads(v["detail"]) if v["detail"] else {}}
            for v in conn.execute("SELECT * FROM evaluation_values WHERE evaluation_id = ? ORDER BY name", (e["id"],))
        }
        out.append({"id": e["id"], "origin": e["origin"], "epoch": e["epoch"], "step": e["step"],
                    "sampler": json.loads(e["sampler"]), "settings": json.loads(e["settings"]), "seconds": e["seconds"],
                    "created": e["created"], "values": values})
    return out
