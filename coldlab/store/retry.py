"""Riding out a store outage: a PostgreSQL server that restarts, a network that drops for a while.

Every store function (``queue``, ``metrics``, ``records``, ``queries``) is wrapped in :func:`retrying`.
When its connection fails with an outage (psycopg's ``OperationalError``: the server is gone, a
deadlock was broken) the function's transaction has rolled back; the connection is opened again and
the function called again, after pauses growing from 0.2 s to 5 s, for up to ``$COLDLAB_STORE_RETRY_S``
seconds (default: twice the lease, at least 60 s). A worker therefore pauses through an outage shorter
than its lease and carries on with its run; a longer one costs the run its lease (it goes back to the
queue and resumes from its checkpoint). SQLite connections are never retried here (their busy timeout
waits for the write lock).

Every function retried is safe to run twice: writes are keyed (metric rows by run, name and step,
evaluations by key) or conditional on the state they change. One case is not undone: a claim whose commit
reached the server but whose reply was lost is retried, so the worker takes another run, and the first
stays ``running`` until its lease runs out (then it is queued again, counted as a worker death).
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from coldlab.errors import ColdlabError
from coldlab.store.postgres import is_outage, mask
from coldlab.store.status import lease_seconds

P = ParamSpec("P")
R = TypeVar("R")


def outage_seconds() -> float:
    """How long a store function keeps retrying through an outage."""
    return float(os.environ.get("COLDLAB_STORE_RETRY_S") or max(60.0, 2 * lease_seconds()))


def retrying(fn: Callable[P, R]) -> Callable[P, R]:
    """Call ``fn(conn, ...)`` again through an outage of a PostgreSQL store (see the module)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        conn: Any = args[0]
        deadline, pause = 0.0, 0.2
        while True:
            try:
                return fn(*args, **kwargs)
            except Exception as err:
                if getattr(conn, "backend", "sqlite") != "postgresql" or not is_outage(err):
                    raise
                now = time.monotonic()
                if not deadline:
                    deadline = now + outage_seconds()
                    print(
                        f"coldlab: the store {mask(conn.url)} failed ({type(err).__name__}: {str(err).strip()}); retrying",
                        file=sys.stderr,
                        flush=True,
                    )
                if now >= deadline:
                    raise ColdlabError(
                        f"the store {mask(conn.url)} has been unreachable for {outage_seconds():.0f} s: {str(err).strip()}",
                        hint="check that the PostgreSQL server is up and reachable from this machine ($COLDLAB_STORE_RETRY_S sets the wait)",
                    ) from None
                time.sleep(pause)
                pause = min(5.0, pause * 2)
                try:
                    conn.reconnect()
                except Exception:  # still down: the next call fails again and is retried
                    pass

    return wrapper
