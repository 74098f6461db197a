"""Append-only, named schema migrations (as llm does): never edit one that shipped; add a new one."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

from coldlab.store.postgres import LOCK_KEY, Connection

MIGRATIONS: list[tuple[str, Callable[[Connection], None]]] = []


def migration(fn: Callable[[Connection], None]) -> Callable[[Connection], None]:
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@migration
def m001_initial(conn: Connection) -> None:
    conn.execute(
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            study TEXT NOT NULL,
            name TEXT NOT NULL,
            config TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'queued',
            priority INTEGER NOT NULL DEFAULT 0,
            epochs INTEGER NOT NULL DEFAULT 0,
            epoch INTEGER NOT NULL DEFAULT 0,
            step INTEGER NOT NULL DEFAULT 0,
            total_steps INTEGER NOT NULL DEFAULT 0,
            worker TEXT,
            device TEXT,
            lease_until REAL,
            heartbeat REAL,
            attempts INTEGER NOT NULL DEFAULT 0,
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            created REAL NOT NULL,
            started REAL,
            finished REAL,
            UNIQUE (study, name)
        )"""
    )
    conn.execute("CREATE INDEX runs_status ON runs (status, priority, id)")
    conn.execute(
        """CREATE TABLE metrics (
            run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            step INTEGER NOT NULL,
            epoch INTEGER,
            value REAL,
            detail TEXT,
            recorded REAL NOT NULL,
            PRIMARY KEY (run_id, name, step)
        ) WITHOUT ROWID"""
    )
    conn.execute(
        """CREATE TABLE artifacts (
            run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            path TEXT NOT NULL,
            epoch INTEGER,
            step INTEGER,
            created REAL NOT NULL,
            PRIMARY KEY (run_id, kind, path)
        )"""
    )


@migration
def m002_evaluations(conn: Connection) -> None:
    """One row per evaluation (during training or by ``coldlab eval``) and its metric values."""
    conn.execute(
        """CREATE TABLE evaluations (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            key TEXT UNIQUE,
            origin TEXT NOT NULL,
            epoch INTEGER,
            step INTEGER,
            sampler TEXT NOT NULL,
            settings TEXT NOT NULL,
            seconds REAL,
            created REAL NOT NULL
        )"""
    )
    conn.execute("CREATE INDEX evaluations_run ON evaluations (run_id, id)")
    conn.execute(
        """CREATE TABLE evaluation_values (
            evaluation_id INTEGER NOT NULL REFERENCES evaluations (id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            value REAL,
            detail TEXT,
            PRIMARY KEY (evaluation_id, name)
        ) WITHOUT ROWID"""
    )


@migration
def m003_run_dependencies(conn: Connection) -> None:
    """A run may wait for another (latent diffusion waits for its autoencoder run)."""
    conn.execute("ALTER TABLE runs ADD COLUMN depends_on INTEGER REFERENCES runs (id)")


@migration
def m004_attempt_time_and_deaths(conn: Connection) -> None:
    """Running time summed over attempts (``run_seconds``, plus ``attempt_started`` of the attempt under
    way), worker deaths counted per run (a run that kills ``max_attempts`` workers fails), and artifact
    paths made relative to HOME (they were stored as the worker wrote them: relative to the folder
    ``coldlab run`` started in, or absolute)."""
    conn.execute("ALTER TABLE runs ADD COLUMN run_seconds REAL NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE runs ADD COLUMN attempt_started REAL")
    conn.execute("ALTER TABLE runs ADD COLUMN deaths INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE runs ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT 3")
    conn.execute("UPDATE runs SET run_seconds = finished - started WHERE finished IS NOT NULL AND started IS NOT NULL AND finished >= started")
    conn.execute("UPDATE runs SET attempt_started = COALESCE(heartbeat, started) WHERE status = 'running'")
    for row in conn.execute("SELECT run_id, kind, path FROM artifacts").fetchall():
        fixed = home_relative(row[2])
        if fixed != row[2]:
            conn.execute("DELETE FROM artifacts WHERE run_id = ? AND kind = ? AND path = ?", (row[0], row[1], fixed))
            conn.execute("UPDATE artifacts SET path = ? WHERE run_id = ? AND kind = ? AND path = ?", (fixed, row[0], row[1], row[2]))


@migration
def m005_experiment_and_seed(conn: Connection) -> None:
    """The experiment a run comes from and its seed, as fields (they were recovered by parsing run names:
    ``NAME-seedN``, ``NAME-seedN-smoke``). Existing runs get them from their name and stored spec."""
    conn.execute("ALTER TABLE runs ADD COLUMN experiment TEXT")
    conn.execute("ALTER TABLE runs ADD COLUMN seed INTEGER")
    for row in conn.execute("SELECT id, name, config FROM runs").fetchall():
        try:
            seed = json.loads(row[2]).get("train", {}).get("seed")
        except (ValueError, AttributeError):
            seed = None
        conn.execute(
            "UPDATE runs SET experiment = ?, seed = ? WHERE id = ?", (_SEEDED.sub("", row[1]), seed if isinstance(seed, int) else None, row[0])
        )


@migration
def m006_autoencoder_specs_hold_their_own_tables(conn: Connection) -> None:
    """An autoencoder run's stored spec holds the tables of its kind only: the empty network, degradation,
    prior and sampler tables it carried are dropped (so queueing the same experiment again matches it)."""
    for row in conn.execute("SELECT id, config FROM runs").fetchall():
        try:
            config = json.loads(row[1])
        except ValueError:
            continue
        if not isinstance(config, dict) or config.get("kind") != "autoencoder":
            continue
        kept = {k: v for k, v in config.items() if not (k in ("network", "degradation", "prior", "sampler") and v == {})}
        if kept != config:
            conn.execute("UPDATE runs SET config = ? WHERE id = ?", (json.dumps(kept, sort_keys=True), row[0]))


@migration
def m007_workflow(conn: Connection) -> None:
    """What a researcher adds to runs: the swept values of a sweep (``params``, JSON), a note, tags, an
    archived flag, provenance (JSON: where and how the run was queued and ran) and the trackers a run
    reports to; and a record of removed runs, so that a removed run's id is never given out again."""
    conn.execute("ALTER TABLE runs ADD COLUMN params TEXT")
    conn.execute("ALTER TABLE runs ADD COLUMN note TEXT")
    conn.execute("ALTER TABLE runs ADD COLUMN archived INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE runs ADD COLUMN provenance TEXT")
    conn.execute("ALTER TABLE runs ADD COLUMN trackers TEXT")
    conn.execute(
        """CREATE TABLE tags (
            run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            tag TEXT NOT NULL,
            PRIMARY KEY (run_id, tag)
        ) WITHOUT ROWID"""
    )
    conn.execute("CREATE INDEX tags_tag ON tags (tag)")
    conn.execute("CREATE TABLE removed_runs (id INTEGER PRIMARY KEY, study TEXT NOT NULL, name TEXT NOT NULL, removed REAL NOT NULL)")


_SEEDED = re.compile(r"-seed\d+(?=(-smoke)?$)")


def home_relative(path: str) -> str:
    """``.../runs/00012/grid-0005.png`` -> ``runs/00012/grid-0005.png`` (a path without a run folder is kept)."""
    parts = path.replace("\\", "/").split("/")
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "runs" and parts[i + 1].isdigit():
            return "/".join(parts[i:])
    return path


def pending(conn: Any) -> list[str]:
    """The migrations this store still lacks (all of them for a store without a migrations table)."""
    try:
        done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
    except Exception as err:  # no migrations table yet (sqlite3.OperationalError, psycopg's UndefinedTable)
        if "migrations" not in str(err):
            raise
        done = set()
    return [name for name, _ in MIGRATIONS if name not in done]


def migrate(conn: Any) -> list[str]:
    """Apply every migration not yet applied, each in its own transaction; return their names.

    On PostgreSQL each transaction first takes the store's advisory lock, so processes that start at
    once (a cluster's workers) apply each migration exactly once; SQLite's ``BEGIN IMMEDIATE`` does the
    same there."""
    postgres = getattr(conn, "backend", "sqlite") == "postgresql"

    def begin() -> None:
        conn.execute("BEGIN IMMEDIATE")
        if postgres:
            conn.execute("SELECT pg_advisory_xact_lock(?)", (LOCK_KEY,))

    if postgres and not pending(conn):
        return []
    begin()
    conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)")
    conn.execute("COMMIT")
    applied = []
    for name, fn in MIGRATIONS:
        begin()
        try:
            if conn.execute("SELECT 1 FROM migrations WHERE name = ?", (name,)).fetchone():
                conn.execute("COMMIT")
                continue
            fn(conn)
            conn.execute("INSERT INTO migrations (name, applied) VALUES (?, ?)", (name, time.time()))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        applied.append(name)
    return applied
