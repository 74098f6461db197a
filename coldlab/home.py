"""A coldlab HOME: the one place that knows its layout.

::

    HOME/coldlab.db          the store (runs, metrics, evaluations, artifact paths)
    HOME/runs/NNNNN/         one folder per run: checkpoints, weights, grids, samples, run.log, error.log
    HOME/logs/worker-K.log   each worker process's output
    HOME/cache/              shared caches (prior fits, real-image statistics)
    HOME/exports/            what the dashboard's compare view exports

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

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @classmethod
    def default(cls) -> Home:
        """``$COLDLAB_HOME``, else ``./coldlab-runs``."""
        return cls(os.environ.get("COLDLAB_HOME", "coldlab-runs"))

    def __repr__(self) -> str:
        return f"Home({str(self.root)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Home) and self.root == other.root

    def __hash__(self) -> int:
        return hash(self.root)

    @property
    def db(self) -> Path:
        return self.root / DB_NAME

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

        return connect(self.db, readonly=readonly)


def as_home(home: Home | str | os.PathLike[str]) -> Home:
    """Accept a :class:`Home` or a folder."""
    return home if isinstance(home, Home) else Home(home)
