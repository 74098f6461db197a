"""A coldlab HOME: the one place that knows its layout.

::

    HOME/coldlab.db          the store (runs, metrics, evaluations, artifact paths)
    HOME/runs/NNNNN/         one folder per run: checkpoints, weights, grids, samples, run.log, error.log
    HOME/logs/worker-K.log   each worker process's output
    HOME/cache/              shared caches (prior fits, real-image statistics)
    HOME/exports/            what the dashboard's compare view exports

The store may live elsewhere (``--store``, ``$COLDLAB_STORE``): another SQLite file, or a PostgreSQL
database that the workers of many machines share; HOME then holds only the run folders, on a
filesystem every node mounts.

Artifact paths are stored relative to HOME (``runs/00001/grid-0005.png``), so a HOME can be copied
or moved and every figure still resolves; :meth:`Home.file` turns a stored path back into a file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

DB_NAME = "coldlab.db"


class Home:
    """The folder of one store and its run folders."""

    def __init__(self, root: str | os.PathLike[str], store: str | None = None) -> None:
        self.root = Path(root)
        #: the store's path or URL; None: ``HOME/coldlab.db``
        self.store = str(store) if store else None

    @classmethod
    def default(cls, store: str | None = None) -> Home:
        """``$COLDLAB_HOME``, else ``./coldlab-runs``; the store ``store``, else ``$COLDLAB_STORE``, else ``HOME/coldlab.db``."""
        return cls(os.environ.get("COLDLAB_HOME", "coldlab-runs"), store or os.environ.get("COLDLAB_STORE") or None)

    def __repr__(self) -> str:
        return f"Home({str(self.root)!r})" if self.store is None else f"Home({str(self.root)!r}, store={self.store_label!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Home) and (self.root, self.store) == (other.root, other.store)

    def __hash__(self) -> int:
        return hash((self.root, self.store))

    @property
    def postgres(self) -> bool:
        """True when the store is a PostgreSQL database (shared by many machines)."""
        from coldlab.store.connection import is_postgres_url

        return self.store is not None and is_postgres_url(self.store)

    @property
    def db(self) -> Path:
        """The SQLite file of the store (``HOME/coldlab.db`` unless ``store`` names another)."""
        if self.store is None:
            return self.root / DB_NAME
        from coldlab.store.connection import sqlite_path

        if self.postgres:
            raise ValueError(f"the store of {self!r} is not a SQLite file")
        return sqlite_path(self.store)

    @property
    def store_label(self) -> str:
        """The store as shown to people: the file, or the URL without its password."""
        if self.postgres:
            from coldlab.store.postgres import mask

            return mask(str(self.store))
        return str(self.db)

    def store_exists(self) -> bool:
        """Whether the store has been created (a PostgreSQL store is created by whoever connects first)."""
        return self.postgres or self.db.exists()

    def store_args(self) -> list[str]:
        """The command-line options that name this store for another coldlab process."""
        return ["--home", str(self.root)] + (["--store", str(self.store)] if self.store else [])

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    def run_dir(self, run_id: int) -> Path:
        return self.root / "runs" / f"{int(run_id):05d}"

    def run_log(self, run_id: int) -> Path:
        return self.run_dir(run_id) / "run.log"

    def error_log(self, run_id: int) -> Path:
        return self.run_dir(run_id) / "error.log"

    def relative(self, path: str | os.PathLike[str]) -> str:
        """How a file under HOME is stored: relative to HOME, with ``/`` (a file elsewhere: absolute)."""
        path = Path(path)
        for base, candidate in ((self.root, path), (self.root.resolve(), path.resolve())):
            try:
                return candidate.relative_to(base).as_posix()
            except ValueError:
                continue
        return str(path.resolve())

    def file(self, stored: str | os.PathLike[str]) -> Path:
        """The file a stored artifact path names (relative to HOME unless absolute)."""
        path = Path(stored)
        return path if path.is_absolute() else self.root / path

    def connect(self, *, readonly: bool = False) -> Any:
        """A connection to this HOME's store (see :func:`coldlab.store.connect`)."""
        from coldlab.store import connect

        return connect(str(self.store) if self.postgres else self.db, readonly=readonly)


def as_home(home: Home | str | os.PathLike[str]) -> Home:
    """Accept a :class:`Home` or a folder."""
    return home if isinstance(home, Home) else Home(home)
