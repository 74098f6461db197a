"""Writing metric rows (unique on run, name, step), evaluations and artifact paths (reads: ``queries``)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from typing import Any, cast

from coldlab.store.connection import transaction


def record_metrics(conn: sqlite3.Connection, run_id: int, rows: Iterable[tuple[str, int, int | None, float | None, dict[str, Any] | None]]) -> int:
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


def record_artifact(conn: sqlite3.Connection, run_id: int, kind: str, path: str, *, epoch: int | None = None, step: int | None = None) -> None:
    with transaction(conn):
        conn.execute(
            "INSERT OR REPLACE INTO artifacts (run_id, kind, path, epoch, step, created) VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, kind, path, epoch, step, time.time()),
        )


def record_evaluation(
    conn: sqlite3.Connection,
    run_id: int,
    *,
    origin: str,
    epoch: int | None,
    step: int | None,
    sampler: dict[str, Any],
    settings: dict[str, Any],
    results: list[tuple[str, float | None, dict[str, Any]]],
    seconds: float | None = None,
    key: str | None = None,
    series: bool = False,
) -> tuple[int, bool]:
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
            "INSERT INTO evaluations (run_id, key, origin, epoch, step, sampler, settings, seconds, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, key, origin, epoch, step, json.dumps(sampler, sort_keys=True), json.dumps(settings, sort_keys=True), seconds, now),
        )
        eval_id = int(cast(int, cur.lastrowid))
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
