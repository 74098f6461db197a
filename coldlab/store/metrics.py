"""Writing metric rows (unique on run, name, step), evaluations and artifact paths (reads: ``queries``)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from coldlab.store.connection import transaction
from coldlab.store.postgres import Connection
from coldlab.store.retry import retrying


@retrying
def record_metrics(conn: Connection, run_id: int, rows: Iterable[tuple[str, int, int | None, float | None, dict[str, Any] | None]]) -> int:
    """Append (name, step, epoch, value, detail) rows; a row already stored for (run, name, step) is
    kept as it is, so a resumed run never duplicates. Returns how many rows were new."""
    now = time.time()
    with transaction(conn, relaxed=True):
        cur = conn.executemany(
            "INSERT INTO metrics (run_id, name, step, epoch, value, detail, recorded) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [(run_id, n, s, e, v, json.dumps(d) if d is not None else None, now) for n, s, e, v, d in rows],
        )
        return max(0, int(cur.rowcount))


@retrying
def record_artifact(conn: Connection, run_id: int, kind: str, path: str, *, epoch: int | None = None, step: int | None = None) -> None:
    with transaction(conn):
        conn.execute(
            "INSERT INTO artifacts (run_id, kind, path, epoch, step, created) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, kind, path) "
            "DO UPDATE SET epoch = excluded.epoch, step = excluded.step, created = excluded.created",
            (run_id, kind, path, epoch, step, time.time()),
        )


@retrying
def record_evaluation(
    conn: Connection,
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
        eval_id = int(
            conn.execute(
                "INSERT INTO evaluations (run_id, key, origin, epoch, step, sampler, settings, seconds, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (run_id, key, origin, epoch, step, json.dumps(sampler, sort_keys=True), json.dumps(settings, sort_keys=True), seconds, now),
            ).fetchone()[0]
        )
        conn.executemany(
            "INSERT INTO evaluation_values (evaluation_id, name, value, detail) VALUES (?, ?, ?, ?)",
            [(eval_id, n, v, json.dumps({**d, "evaluation": eval_id})) for n, v, d in results],
        )
        if series:
            conn.executemany(
                "INSERT INTO metrics (run_id, name, step, epoch, value, detail, recorded) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(run_id, n, step, epoch, v, json.dumps({**d, "evaluation": eval_id}), now) for n, v, d in results],
            )
        return eval_id, True
