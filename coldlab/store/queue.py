"""Runs as a queue: enqueue, atomic claim with a lease, heartbeat, requeue of dead workers."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from coldlab.errors import ColdlabError
from coldlab.store.connection import transaction

STATUSES = ("queued", "running", "finished", "failed", "interrupted", "cancelled", "skipped")
DEFAULT_LEASE_S = 60.0


def enqueue(conn: sqlite3.Connection, study: str, name: str, config: dict[str, Any], *, epochs: int = 0,
            priority: int = 0, depends_on: int | None = None) -> tuple[int, bool]:
    """Add a run; returns (id, created). An existing (study, name) is left as it is.

    A run that ``depends_on`` another is claimed only once that one has finished (and is skipped,
    with the reason, if it fails or is cancelled)."""
    with transaction(conn):
        row = conn.execute("SELECT id FROM runs WHERE study = ? AND name = ?", (study, name)).fetchone()
        if row:
            return int(row["id"]), False
        cur = conn.execute(
            "INSERT INTO runs (study, name, config, epochs, priority, created, depends_on) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (study, name, json.dumps(config, sort_keys=True), epochs, priority, time.time(), depends_on),
        )
        return int(cur.lastrowid), True


def requeue_expired(conn: sqlite3.Connection, now: float | None = None) -> list[int]:
    """Put back in the queue every running run whose lease has run out (its worker died)."""
    now = time.time() if now is None else now
    with transaction(conn):
        rows = conn.execute(
            "UPDATE runs SET status = 'queued', worker = NULL, lease_until = NULL "
            "WHERE status = 'running' AND lease_until < ? RETURNING id", (now,)
        ).fetchall()
    return [int(r["id"]) for r in rows]


def claim(conn: sqlite3.Connection, worker: str, device: str, *, lease_s: float = DEFAULT_LEASE_S,
          now: float | None = None) -> sqlite3.Row | None:
    """Atomically take the next queued run (highest priority, then oldest) for ``worker``; a run
    whose dependency has not finished waits (see :func:`waiting`)."""
    requeue_expired(conn, now)
    skip_orphans(conn)
    now = time.time() if now is None else now
    with transaction(conn):
        return conn.execute(
            "UPDATE runs SET status = 'running', worker = ?, device = ?, lease_until = ?, heartbeat = ?, "
            "started = COALESCE(started, ?), attempts = attempts + 1, error = NULL "
            "WHERE id = (SELECT r.id FROM runs r WHERE r.status = 'queued' AND (r.depends_on IS NULL OR "
            "(SELECT d.status FROM runs d WHERE d.id = r.depends_on) = 'finished') ORDER BY r.priority DESC, r.id LIMIT 1) "
            "RETURNING *",
            (worker, device, now + lease_s, now, now),
        ).fetchone()


def skip_orphans(conn: sqlite3.Connection) -> list[int]:
    """Mark ``skipped`` every queued run whose dependency ended without finishing (the error names it;
    requeue both to try again)."""
    with transaction(conn):
        rows = conn.execute(
            "UPDATE runs SET status = 'skipped', error = 'it needs run ' || d.id || ' (' || d.name || '), which is ' || "
            "d.status || ' (hint: requeue that run, then this one)' FROM runs d "
            "WHERE runs.depends_on = d.id AND runs.status = 'queued' AND d.status IN ('failed', 'cancelled', 'skipped') "
            "RETURNING runs.id"
        ).fetchall()
    return [int(r["id"]) for r in rows]


def waiting(conn: sqlite3.Connection) -> int:
    """How many queued runs wait for a run that is still queued or running (a worker should wait too)."""
    return int(conn.execute(
        "SELECT COUNT(*) FROM runs r JOIN runs d ON d.id = r.depends_on WHERE r.status = 'queued' "
        "AND d.status IN ('queued', 'running')"
    ).fetchone()[0])


def heartbeat(conn: sqlite3.Connection, run_id: int, worker: str, *, epoch: int | None = None, step: int | None = None,
              total_steps: int | None = None, lease_s: float = DEFAULT_LEASE_S) -> tuple[bool, bool]:
    """Extend the lease and record progress; returns (still owned, cancel requested)."""
    now = time.time()
    with transaction(conn):
        row = conn.execute(
            "UPDATE runs SET heartbeat = ?, lease_until = ?, epoch = COALESCE(?, epoch), step = COALESCE(?, step), "
            "total_steps = COALESCE(?, total_steps) "
            "WHERE id = ? AND worker = ? AND status = 'running' RETURNING cancel_requested",
            (now, now + lease_s, epoch, step, total_steps, run_id, worker),
        ).fetchone()
    return (row is not None, bool(row and row["cancel_requested"]))


def finish(conn: sqlite3.Connection, run_id: int, worker: str, status: str, error: str | None = None) -> None:
    """End a claimed run as finished, failed, interrupted or cancelled."""
    if status not in ("finished", "failed", "interrupted", "cancelled"):
        raise ValueError(f"cannot finish a run as {status!r}")
    with transaction(conn):
        conn.execute(
            "UPDATE runs SET status = ?, error = ?, finished = ?, lease_until = NULL, worker = NULL "
            "WHERE id = ? AND worker = ?", (status, error, time.time(), run_id, worker)
        )


def mark(conn: sqlite3.Connection, run_id: int, status: str, error: str | None = None) -> None:
    """Set a run's status outside a worker (e.g. ``skipped`` with the reason)."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    with transaction(conn):
        conn.execute("UPDATE runs SET status = ?, error = ? WHERE id = ?", (status, error, run_id))


def requeue(conn: sqlite3.Connection, run_id: int) -> None:
    """Queue an interrupted, failed or cancelled run again (it resumes from its checkpoint)."""
    with transaction(conn):
        row = conn.execute(
            "UPDATE runs SET status = 'queued', cancel_requested = 0, finished = NULL WHERE id = ? "
            "AND status IN ('interrupted', 'failed', 'cancelled', 'skipped') RETURNING id", (run_id,)
        ).fetchone()
    if row is None:
        raise ColdlabError(f"run {run_id} cannot be requeued", hint="only interrupted, failed, cancelled or skipped runs can")


def request_cancel(conn: sqlite3.Connection, run_id: int) -> None:
    """Ask the worker of a running run to checkpoint and stop; a queued run is cancelled at once."""
    with transaction(conn):
        conn.execute("UPDATE runs SET status = 'cancelled' WHERE id = ? AND status = 'queued'", (run_id,))
        conn.execute("UPDATE runs SET cancel_requested = 1 WHERE id = ? AND status = 'running'", (run_id,))


def get_run(conn: sqlite3.Connection, run_id: int) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise ColdlabError(f"no run with id {run_id}", hint="`coldlab ls` lists the runs")
    return row


def list_runs(conn: sqlite3.Connection, *, study: str | None = None, status: str | None = None) -> list[sqlite3.Row]:
    sql, args = "SELECT * FROM runs WHERE 1 = 1", []
    if study:
        sql += " AND study = ?"
        args.append(study)
    if status:
        sql += " AND status = ?"
        args.append(status)
    return conn.execute(sql + " ORDER BY id", args).fetchall()


def set_priority(conn: sqlite3.Connection, run_id: int, priority: int) -> None:
    """Change where a queued run stands: higher priority runs are claimed first (then older ones)."""
    with transaction(conn):
        row = conn.execute("UPDATE runs SET priority = ? WHERE id = ? RETURNING id", (int(priority), run_id)).fetchone()
    if row is None:
        raise ColdlabError(f"no run with id {run_id}", hint="`coldlab ls` lists the runs")
