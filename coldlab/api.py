"""The Python API over a store: ``coldlab.open(HOME)``.

::

    import coldlab

    store = coldlab.open("coldlab-runs")
    for run in store.runs("study = 000-ddpm", "metric.classifier-fid < 40", sort="metric.classifier-fid"):
        print(run.id, run.name, run.params, run.metrics["classifier-fid"], run.tags)
    losses = store.run(3).series("val_loss")           # [{"step", "epoch", "value", "detail"}, ...]
    frame = store.frame("status = finished")           # pandas: one row per run (pip install 'coldlab[pandas]')

Filters are the expressions of ``coldlab ls --where`` (:mod:`coldlab.search`). The store is opened read-only
for each call, so a study may be running while a notebook reads it. Archived runs are left out unless
``archived=True``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from coldlab.errors import ColdlabError
from coldlab.home import Home, as_home
from coldlab.search import parse_all, select, sort_records
from coldlab.store.catalog import run_records
from coldlab.store.queries import artifacts, evaluations, metric_series

PANDAS_HINT = "pip install 'coldlab[pandas]' (or pip install pandas)"


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ColdlabError("this needs pandas, which is not installed", hint=PANDAS_HINT) from None
    return pandas


@dataclasses.dataclass(frozen=True)
class Run:
    """One run: its fields, stored spec (``config``), swept values (``params``), tags, note, provenance and
    latest metric values (``metrics``: name -> value at its highest step); series, evaluations, artifacts and
    samples are read when asked for."""

    store: Store = dataclasses.field(repr=False)
    id: int
    study: str
    name: str
    experiment: str
    seed: int | None
    status: str
    tags: list[str]
    note: str | None
    params: dict[str, Any]
    config: dict[str, Any]
    provenance: dict[str, Any]
    metrics: dict[str, float | None]
    epoch: int
    epochs: int
    seconds: float | None
    error: str | None
    archived: bool
    attempts: int = 0  # times a worker took it
    deaths: int = 0  # times its worker process died holding it
    worker: str | None = None  # HOST:PID:DEVICE of the worker that holds it while it runs

    def series(self, name: str | None = None) -> Any:
        """Every metric series of the run as name -> [{step, epoch, value, detail}], or one series' points."""
        with self.store._read() as conn:
            out = metric_series(conn, self.id, name)
        return out.get(name, []) if name is not None else out

    def series_frame(self, name: str | None = None) -> Any:
        """The metric series as a pandas DataFrame: columns ``metric``, ``step``, ``epoch``, ``value``."""
        pd = _pandas()
        rows = [{"metric": n, **{k: p[k] for k in ("step", "epoch", "value")}} for n, points in self.series().items() for p in points]
        frame = pd.DataFrame(rows, columns=["metric", "step", "epoch", "value"])
        return frame[frame["metric"] == name].reset_index(drop=True) if name is not None else frame

    def evaluations(self) -> list[dict[str, Any]]:
        """Every evaluation (training, ``coldlab eval``, guidance sweep), oldest first, with its values."""
        with self.store._read() as conn:
            return evaluations(conn, self.id)

    def artifacts(self, kind: str | None = None) -> list[Path]:
        """The files the run recorded (``grid``, ``samples``, ``weights``, ...), oldest first."""
        with self.store._read() as conn:
            return [self.store.home.file(a["path"]) for a in artifacts(conn, self.id, kind)]

    def samples(self, epoch: int | None = None) -> Any:
        """The generated samples of an evaluation (the newest, or that of ``epoch``) as a uint8 tensor
        (N, C, H, W) in [0, 255], loaded with ``weights_only=True``."""
        from coldlab.files import load_tensors

        with self.store._read() as conn:
            rows = [a for a in artifacts(conn, self.id, "samples") if epoch is None or a["epoch"] == epoch]
        if not rows:
            hint = "metrics that use generated samples save them (eval.metrics)"
            raise ColdlabError(f"run {self.id} has no samples" + (f" of epoch {epoch}" if epoch is not None else ""), hint=hint)
        rows.sort(key=lambda a: (a["epoch"] or 0, a["created"]))
        return load_tensors(self.store.home.file(rows[-1]["path"]))


class Store:
    """A coldlab store (``HOME/coldlab.db``, or the store ``coldlab.open(home, store=URL)`` names), read-only."""

    def __init__(self, home: str | os.PathLike[str] | Home) -> None:
        self.home = as_home(home)
        if not self.home.store_exists():
            raise ColdlabError(
                f"no store at {self.home.store_label}", hint="give the HOME folder of a study (coldlab run --home), default ./coldlab-runs"
            )

    def __repr__(self) -> str:
        return f"coldlab.open({str(self.home.root)!r})"

    @contextlib.contextmanager
    def _read(self) -> Iterator[Any]:
        """A read-only connection for one call."""
        conn = self.home.connect(readonly=True)
        try:
            yield conn
        finally:
            conn.close()

    def _records(self, where: tuple[str, ...], sort: str | None, limit: int | None, archived: bool) -> list[dict[str, Any]]:
        conditions = parse_all(list(where))
        with self._read() as conn:
            records = run_records(conn, archived=archived)
        found = sort_records(select(records, conditions), sort)
        return found[:limit] if limit is not None else found

    def runs(self, *where: str, sort: str | None = None, limit: int | None = None, archived: bool = False) -> list[Run]:
        """The runs every ``where`` expression holds for (``"metric.fid < 40"``, ``"tag = baseline"``; see
        :mod:`coldlab.search`), oldest first or by ``sort`` (``"-metric.fid"``: descending)."""
        return [self._run(r) for r in self._records(where, sort, limit, archived)]

    def claimable(self) -> int:
        """How many queued runs a worker could take now, or once the run they wait for has finished."""
        from coldlab.store.queries import claimable

        with self._read() as conn:
            return claimable(conn)

    def run(self, run_id: int) -> Run:
        """One run by id (archived or not)."""
        with self._read() as conn:
            found = run_records(conn, ids=[run_id])
        if not found:
            raise ColdlabError(f"no run with id {run_id}", hint="store.runs() lists them")
        return self._run(found[0])

    def _run(self, record: dict[str, Any]) -> Run:
        fields = {f.name for f in dataclasses.fields(Run)} - {"store"}
        return Run(store=self, **{k: v for k, v in record.items() if k in fields})

    def frame(self, *where: str, sort: str | None = None, limit: int | None = None, archived: bool = False) -> Any:
        """A pandas DataFrame, one row per run: id, study, experiment, name, seed, status, tags, note, epoch,
        seconds, then ``param.KEY`` (swept values), ``metric.NAME`` (latest values) and ``config.KEY``
        (the flattened spec) columns."""
        from coldlab.dotted import flatten

        pd = _pandas()
        rows = []
        for r in self._records(where, sort, limit, archived):
            row = {k: r[k] for k in ("id", "study", "experiment", "name", "seed", "status", "note", "epoch", "seconds")}
            row["tags"] = " ".join(r["tags"])
            row.update({f"param.{k}": v for k, v in r["params"].items()})
            row.update({f"metric.{k}": v for k, v in r["metrics"].items()})
            row.update({f"config.{k}": v for k, v in flatten(r["config"]).items()})
            rows.append(row)
        return pd.DataFrame(rows)


def open(home: str | os.PathLike[str] | Home | None = None, store: str | None = None) -> Store:  # noqa: A001 - coldlab.open, as in the issue
    """The store of a HOME folder (``coldlab.open("coldlab-runs")``; default ``$COLDLAB_HOME``, else ``./coldlab-runs``);
    ``store``: its store's path or URL (``postgresql://...``; default ``$COLDLAB_STORE``, else ``HOME/coldlab.db``)."""
    if isinstance(home, Home):
        return Store(home if store is None else Home(home.root, store))
    if home is None:
        return Store(Home.default(store))
    return Store(Home(home, store or os.environ.get("COLDLAB_STORE") or None))
