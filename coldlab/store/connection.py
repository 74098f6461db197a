"""Opening the store and write transactions."""

from __future__ import annotations

import contextlib
import sqlite3
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from coldlab.errors import ColdlabError
from coldlab.store.migrations import migrate, pending

BUSY_TIMEOUT_MS = 30_000


def connect(path: str | Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open (and, for writers, create and migrate) the store at ``path``.

    Connections run in autocommit mode; group writes with :func:`transaction`. A read-only
    connection opens the file through a ``file:`` URI with the path percent-encoded, so a HOME
    whose path holds ``#``, ``?`` or ``%`` opens that file, not a stray one.
    """
    path = Path(path)
    if readonly:
        if not path.exists():
            raise ColdlabError(f"no store at {path}", hint="run `coldlab run FILE.toml` first, or pass --home")
        conn = _open_readonly(path)
        if pending(conn):  # a store written by an older coldlab: bring it up to date once, then read
            conn.close()
            try:
                connect(path).close()
            except sqlite3.OperationalError as err:
                raise ColdlabError(
                    f"the store {path} was written by an older coldlab and could not be updated: {err}",
                    hint="make the folder writable once (any coldlab command then updates it), or copy the HOME somewhere writable",
                ) from None
            conn = _open_readonly(path)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.row_factory = sqlite3.Row
    if not readonly:
        migrate(conn)
    return conn


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
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error): the write lock is taken up front."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
