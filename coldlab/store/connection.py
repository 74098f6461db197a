"""Opening the store and write transactions, on either backend.

A store is named by a path or a URL (``--store``, ``$COLDLAB_STORE``): a file path or
``sqlite:///relative.db`` / ``sqlite:////absolute.db`` (one machine; the default is ``HOME/coldlab.db``),
or ``postgresql://USER@HOST/DB`` (many machines; :mod:`coldlab.store.postgres`). SQLite must never be
shared over NFS: its WAL needs every process on one host.
"""

from __future__ import annotations

import contextlib
import sqlite3
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from coldlab.errors import ColdlabError
from coldlab.store.migrations import migrate, pending
from coldlab.store.postgres import LOCK_KEY, PgConnection, database_errors

BUSY_TIMEOUT_MS = 30_000
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(store: str | Path) -> bool:
    return isinstance(store, str) and store.startswith(POSTGRES_SCHEMES)


def sqlite_path(store: str | Path) -> Path:
    """The file a SQLite store name points at (``sqlite:///x.db`` is relative, ``sqlite:////x.db`` absolute)."""
    if isinstance(store, str) and store.startswith("sqlite:"):
        rest = store[len("sqlite:") :]
        if not rest.startswith("///"):
            raise ColdlabError(f"bad store URL {store!r}", hint="write sqlite:///relative/path.db or sqlite:////absolute/path.db", where=("--store",))
        return Path(urllib.parse.unquote(rest[3:]))
    if isinstance(store, str) and "://" in store:
        scheme = store.split("://", 1)[0]
        raise ColdlabError(
            f"unknown store scheme {scheme!r} in {store!r}", hint="use a file path, sqlite:///PATH or postgresql://USER@HOST/DB", where=("--store",)
        )
    return Path(store)


def is_postgres(conn: Any) -> bool:
    return isinstance(conn, PgConnection)


def db_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a store operation raises when the database fails (either backend)."""
    return (sqlite3.Error, *database_errors())


def connect(store: str | Path, *, readonly: bool = False) -> Any:
    """Open (and, for writers, create and migrate) the store ``store`` (a path or URL, see the module).

    Connections run in autocommit mode; group writes with :func:`transaction`. A read-only SQLite
    connection opens the file through a ``file:`` URI with the path percent-encoded, so a HOME whose
    path holds ``#``, ``?`` or ``%`` opens that file, not a stray one. A PostgreSQL store is migrated
    by whoever connects first (readers too: an empty database reads as an empty store)."""
    if is_postgres_url(store):
        conn = PgConnection(str(store))
        migrate(conn)
        return conn
    path = sqlite_path(store)
    if readonly:
        if not path.exists():
            raise ColdlabError(f"no store at {path}", hint="run `coldlab run FILE.toml` first, or pass --home")
        sconn = _open_readonly(path)
        if pending(sconn):  # a store written by an older coldlab: bring it up to date once, then read
            sconn.close()
            try:
                connect(path).close()
            except sqlite3.OperationalError as err:
                raise ColdlabError(
                    f"the store {path} was written by an older coldlab and could not be updated: {err}",
                    hint="make the folder writable once (any coldlab command then updates it), or copy the HOME somewhere writable",
                ) from None
            sconn = _open_readonly(path)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        sconn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
        sconn.execute("PRAGMA journal_mode=WAL")
        sconn.execute("PRAGMA synchronous=NORMAL")
        sconn.execute("PRAGMA foreign_keys=ON")
    sconn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    sconn.row_factory = sqlite3.Row
    if not readonly:
        migrate(sconn)
    return sconn


def _open_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection; the path is percent-encoded in a ``file:`` URI."""
    return sqlite3.connect(
        f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro",
        uri=True,
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
        check_same_thread=False,
    )


@contextlib.contextmanager
def transaction(conn: Any, *, exclusive: bool = False, relaxed: bool = False) -> Iterator[Any]:
    """``BEGIN`` ... ``COMMIT`` (``ROLLBACK`` on error).

    On SQLite every write transaction takes the write lock up front (``BEGIN IMMEDIATE``), so writers
    never interleave. On PostgreSQL transactions run side by side; ``exclusive`` ones (queueing runs,
    removing them, migrations: whatever reads then writes the set of runs) also take one advisory lock,
    so they run one at a time. ``relaxed`` ones (metric rows) do not wait for the commit to reach the
    disk on PostgreSQL (SQLite's ``synchronous=NORMAL`` is the same for every write)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if exclusive and is_postgres(conn):
            conn.execute("SELECT pg_advisory_xact_lock(?)", (LOCK_KEY,))
        if relaxed and is_postgres(conn):
            conn.execute("SET LOCAL synchronous_commit = off")
        yield conn
    except BaseException:
        try:
            conn.execute("ROLLBACK")
        except db_errors():
            if not is_postgres(conn):  # a broken PostgreSQL connection has rolled back already
                raise
        raise
    conn.execute("COMMIT")
