"""Runs as a queue: enqueue, atomic claim with a lease, heartbeat, requeue of dead workers."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any, cast

from coldlab.errors import ColdlabError
from coldlab.store.connection import is_postgres, transaction
from coldlab.store.postgres import Connection
from coldlab.store.retry import retrying
from coldlab.store.status import DEFAULT_MAX_ATTEMPTS, ENDED, STATUSES, lease_seconds

# the running time of the attempt under way, added to run_seconds when it ends (at its last heartbeat
# when its worker died)
_ATTEMPT_TIME = "MAX(0, COALESCE({end}, attempt_started) - COALESCE(attempt_started, {end}))"


@retrying
def enqueue(
    conn: Connection,
    study: str,
    name: str,
    config: dict[str, Any],
    *,
    epochs: int = 0,
    priority: int = 0,
    depends_on: int | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    experiment: str | None = None,
    seed: int | None = None,
    params: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
    trackers: list[dict[str, Any]] | None = None,
) -> tuple[int, bool]:
    """Add a run; returns (id, created). An existing (study, name) is left as it is.

    ``experiment``: the experiment the run comes from (default: its name; the runs of one experiment
    at several seeds share it, and reports pool them); ``seed``: its seed.

    A run that ``depends_on`` another is claimed only once that one has finished (and is skipped,
    with the reason, if it fails or is cancelled). A run whose worker process dies ``max_attempts``
    times fails (see :func:`worker_died`).

    ``params``: the values a sweep set (dotted key -> value); ``provenance``: where and how it was queued;
    ``trackers``: the tracker tables the run reports to (an existing run takes the new list). Ids are never
    reused: a new run's id follows the highest id the store has given out, removed runs included."""
    with transaction(conn, exclusive=True):
        row = conn.execute("SELECT id FROM runs WHERE study = ? AND name = ?", (study, name)).fetchone()
        if row:
            if trackers is not None:
                conn.execute("UPDATE runs SET trackers = ? WHERE id = ?", (json.dumps(trackers, sort_keys=True) if trackers else None, row["id"]))
            return int(row["id"]), False
        new = conn.execute(
            "INSERT INTO runs (id, study, name, config, epochs, priority, created, depends_on, max_attempts, experiment, seed, params, "
            "provenance, trackers) VALUES ((SELECT COALESCE(MAX(id), 0) + 1 FROM (SELECT MAX(id) AS id FROM runs UNION ALL "
            "SELECT MAX(id) FROM removed_runs) AS ids), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                study,
                name,
                json.dumps(config, sort_keys=True),
                epochs,
                priority,
                time.time(),
                depends_on,
                max_attempts,
                experiment or name,
                seed,
                json.dumps(params) if params else None,  # in the sweep's order
                json.dumps(provenance, sort_keys=True) if provenance else None,
                json.dumps(trackers, sort_keys=True) if trackers else None,
            ),
        ).fetchone()
        return int(new[0]), True


def _bury(conn: Connection, where: str, args: tuple[Any, ...], reason: str, now: float) -> list[tuple[int, str]]:
    """Inside a transaction: count a worker death for each running run matched by ``where``; queue it
    again, or fail it once its worker died ``max_attempts`` times. Returns (id, new status)."""
    rows = conn.execute(
        f"UPDATE runs SET deaths = deaths + 1, run_seconds = run_seconds + {_ATTEMPT_TIME.format(end='heartbeat')}, "
        "attempt_started = NULL, worker = NULL, lease_until = NULL, "
        "status = CASE WHEN deaths + 1 >= max_attempts THEN 'failed' ELSE 'queued' END, "
        "finished = CASE WHEN deaths + 1 >= max_attempts THEN ? ELSE finished END, "
        "error = CASE WHEN deaths + 1 >= max_attempts THEN 'worker died ' || (deaths + 1) || ' times (last: ' || ? || ')' "
        "ELSE 'worker died (' || ? || '); queued again' END "
        f"WHERE status = 'running' AND {where} RETURNING id, status",
        (now, reason, reason, *args),
    ).fetchall()
    return [(int(r["id"]), r["status"]) for r in rows]


@retrying
def requeue_expired(conn: Connection, now: float | None = None) -> list[int]:
    """Put back in the queue every running run whose lease has run out (its worker died or lost the
    store); each counts as a worker death (see :func:`worker_died`)."""
    now = time.time() if now is None else now
    with transaction(conn):
        return [run_id for run_id, _ in _bury(conn, "lease_until < ?", (now,), "its lease ran out: no heartbeat", now)]


@retrying
def worker_died(conn: Connection, worker: str, reason: str, *, prefix: bool = False) -> list[tuple[int, str]]:
    """The worker ``worker`` (every worker id starting with it, with ``prefix``) is gone, e.g. killed
    by a signal: its running run is queued again at once, or fails with "worker died N times (...)"
    once that has happened ``max_attempts`` times. Returns (run id, new status)."""
    now = time.time()
    with transaction(conn):
        if prefix:
            return _bury(conn, "substr(worker, 1, ?) = ?", (len(worker), worker), reason, now)
        return _bury(conn, "worker = ?", (worker,), reason, now)


@retrying
def claim(conn: Connection, worker: str, device: str, *, lease_s: float | None = None, now: float | None = None) -> sqlite3.Row | None:
    """Atomically take the next queued run (highest priority, then oldest) for ``worker``; a run
    whose dependency has not finished waits (see :func:`waiting`)."""
    lease_s = lease_seconds() if lease_s is None else lease_s
    requeue_expired(conn, now)
    skip_orphans(conn)
    now = time.time() if now is None else now
    # SQLite: the transaction holds the one write lock. PostgreSQL: concurrent claims each lock the row they
    # pick and skip rows another claim holds (without it, two workers took the same run, 330 of 400 times)
    lock = " FOR UPDATE OF r SKIP LOCKED" if is_postgres(conn) else ""
    with transaction(conn):
        return cast(
            "sqlite3.Row | None",
            conn.execute(
                "UPDATE runs SET status = 'running', worker = ?, device = ?, lease_until = ?, heartbeat = ?, "
                "started = COALESCE(started, ?), attempt_started = ?, attempts = attempts + 1, error = NULL "
                "WHERE id = (SELECT r.id FROM runs r WHERE r.status = 'queued' AND (r.depends_on IS NULL OR "
                "(SELECT d.status FROM runs d WHERE d.id = r.depends_on) = 'finished') ORDER BY r.priority DESC, r.id LIMIT 1"
                f"{lock}) AND status = 'queued' RETURNING *",
                (worker, device, now + lease_s, now, now, now),
            ).fetchone(),
        )


@retrying
def skip_orphans(conn: Connection) -> list[int]:
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


@retrying
def heartbeat(
    conn: Connection,
    run_id: int,
    worker: str,
    *,
    epoch: int | None = None,
    step: int | None = None,
    total_steps: int | None = None,
    lease_s: float | None = None,
    now: float | None = None,
) -> tuple[bool, bool]:
    """Extend the lease and record progress; returns (still owned, cancel requested)."""
    lease_s = lease_seconds() if lease_s is None else lease_s
    now = time.time() if now is None else now
    with transaction(conn):
        row = conn.execute(
            "UPDATE runs SET heartbeat = ?, lease_until = ?, epoch = COALESCE(?, epoch), step = COALESCE(?, step), "
            "total_steps = COALESCE(?, total_steps) "
            "WHERE id = ? AND worker = ? AND status = 'running' RETURNING cancel_requested",
            (now, now + lease_s, epoch, step, total_steps, run_id, worker),
        ).fetchone()
    return (row is not None, bool(row and row["cancel_requested"]))


@retrying
def finish(conn: Connection, run_id: int, worker: str, status: str, error: str | None = None, *, now: float | None = None) -> None:
    """End a claimed run as finished, failed, interrupted or cancelled; the attempt's running time is
    added to the run's."""
    if status not in ENDED:
        raise ValueError(f"cannot finish a run as {status!r}")
    now = time.time() if now is None else now
    with transaction(conn):
        conn.execute(
            f"UPDATE runs SET status = ?, error = ?, finished = ?, lease_until = NULL, worker = NULL, "
            f"run_seconds = run_seconds + {_ATTEMPT_TIME.format(end='?')}, attempt_started = NULL "
            "WHERE id = ? AND worker = ? AND status = 'running'",
            (status, error, now, now, now, run_id, worker),
        )


@retrying
def release(conn: Connection, run_id: int, worker: str) -> bool:
    """Give a claimed run back to the queue without ending it (its worker lost its lease and stopped
    without a checkpoint: the run resumes from its last one). False if it is no longer this worker's."""
    now = time.time()
    with transaction(conn):
        row = conn.execute(
            f"UPDATE runs SET status = 'queued', worker = NULL, lease_until = NULL, "
            f"run_seconds = run_seconds + {_ATTEMPT_TIME.format(end='?')}, attempt_started = NULL "
            "WHERE id = ? AND worker = ? AND status = 'running' RETURNING id",
            (now, now, run_id, worker),
        ).fetchone()
    return row is not None


@retrying
def mark(conn: Connection, run_id: int, status: str, error: str | None = None) -> None:
    """Set a run's status outside a worker (e.g. ``skipped`` with the reason)."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    with transaction(conn):
        conn.execute("UPDATE runs SET status = ?, error = ? WHERE id = ?", (status, error, run_id))


@retrying
def requeue(conn: Connection, run_id: int) -> None:
    """Queue an interrupted, failed or cancelled run again (it resumes from its checkpoint)."""
    with transaction(conn):
        row = conn.execute(
            "UPDATE runs SET status = 'queued', cancel_requested = 0, finished = NULL, deaths = 0 WHERE id = ? "
            "AND status IN ('interrupted', 'failed', 'cancelled', 'skipped') RETURNING id",
            (run_id,),
        ).fetchone()
    if row is None:
        raise ColdlabError(f"run {run_id} cannot be requeued", hint="only interrupted, failed, cancelled or skipped runs can")


@retrying
def request_cancel(conn: Connection, run_id: int) -> None:
    """Ask the worker of a running run to checkpoint and stop; a queued run is cancelled at once."""
    with transaction(conn):
        conn.execute("UPDATE runs SET status = 'cancelled' WHERE id = ? AND status = 'queued'", (run_id,))
        conn.execute("UPDATE runs SET cancel_requested = 1 WHERE id = ? AND status = 'running'", (run_id,))


@retrying
def set_priority(conn: Connection, run_id: int, priority: int) -> None:
    """Change where a queued run stands: higher priority runs are claimed first (then older ones)."""
    with transaction(conn):
        row = conn.execute("UPDATE runs SET priority = ? WHERE id = ? RETURNING id", (int(priority), run_id)).fetchone()
    if row is None:
        raise ColdlabError(f"no run with id {run_id}", hint="`coldlab ls` lists the runs")
