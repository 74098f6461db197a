"""Every read query of the store: ``ls``, ``show``, the dashboard, ``coldlab run``'s progress and
the export read through these, so "the latest value of a metric" or "how long a run ran" mean
one thing everywhere.

- A metric's latest value is the one at its highest step (``latest_metrics``).
- An evaluation metric's latest value is the one of the newest evaluation that computed it
  (``latest_evaluation_value``).
- A run's wall time is the time it spent running, summed over its attempts (queued, waiting and
  cancelled time do not count): ``run_seconds`` plus the attempt under way (``running_seconds``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from typing import Any, cast

from coldlab.errors import ColdlabError
from coldlab.store.postgres import Connection
from coldlab.store.retry import retrying


@retrying
def get_run(conn: Connection, run_id: int) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise ColdlabError(f"no run with id {run_id}", hint="`coldlab ls` lists the runs")
    return cast("sqlite3.Row", row)


@retrying
def list_runs(conn: Connection, *, study: str | None = None, status: str | None = None, ids: Iterable[int] | None = None) -> list[sqlite3.Row]:
    sql = "SELECT * FROM runs WHERE 1 = 1"
    args: list[Any] = []
    if study:
        sql += " AND study = ?"
        args.append(study)
    if status:
        sql += " AND status = ?"
        args.append(status)
    if ids is not None:
        wanted = list(ids)
        sql += f" AND id IN ({','.join('?' * len(wanted))})"
        args += wanted
    return cast("list[sqlite3.Row]", conn.execute(sql + " ORDER BY id", args).fetchall())


def running_seconds(row: sqlite3.Row | dict[str, Any], now: float | None = None) -> float | None:
    """Time the run spent running, over all its attempts (None if it never started)."""
    if row["started"] is None:
        return None
    total = float(row["run_seconds"] or 0.0)
    if row["status"] == "running" and row["attempt_started"] is not None:
        total += max(0.0, (time.time() if now is None else now) - row["attempt_started"])
    return total


def eta_seconds(row: sqlite3.Row | dict[str, Any], now: float | None = None) -> float | None:
    """Time left for a running run, from its running time per step so far."""
    if row["status"] != "running" or not row["step"] or not row["total_steps"]:
        return None
    ran = running_seconds(row, now)
    if not ran:
        return None
    return cast("float | None", ran / row["step"] * max(row["total_steps"] - row["step"], 0))


@retrying
def latest_metrics(conn: Connection, run_ids: Iterable[int] | None = None, names: Iterable[str] | None = None) -> dict[int, dict[str, float | None]]:
    """run id -> {metric name -> value at the metric's highest step}."""
    sql = (
        "SELECT m.run_id, m.name, m.value FROM metrics m JOIN (SELECT run_id, name, MAX(step) AS step FROM metrics "
        "GROUP BY run_id, name) last ON last.run_id = m.run_id AND last.name = m.name AND last.step = m.step WHERE 1 = 1"
    )
    args: list[Any] = []
    for column, values in (("m.run_id", run_ids), ("m.name", names)):
        if values is not None:
            listed = list(values)
            sql += f" AND {column} IN ({','.join('?' * len(listed))})"
            args += listed
    out: dict[int, dict[str, float | None]] = {}
    for r in conn.execute(sql, args):
        out.setdefault(int(r[0]), {})[r[1]] = r[2]
    return out


@retrying
def latest_evaluation_value(conn: Connection, run_id: int, names: Iterable[str]) -> tuple[float | None, str]:
    """(value, name) of the first of ``names`` that an evaluation of the run computed, from the newest
    such evaluation; (None, "") when none did."""
    for name in names:
        row = conn.execute(
            "SELECT v.value FROM evaluations e JOIN evaluation_values v ON v.evaluation_id = e.id "
            "WHERE e.run_id = ? AND v.name = ? AND v.value IS NOT NULL ORDER BY e.id DESC LIMIT 1",
            (run_id, name),
        ).fetchone()
        if row is not None:
            return float(row[0]), name
    return None, ""


@retrying
def metric_series(conn: Connection, run_id: int, name: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every metric of a run as name -> [{step, epoch, value, detail}] ordered by step."""
    sql = "SELECT name, step, epoch, value, detail FROM metrics WHERE run_id = ?"
    args: list[Any] = [run_id]
    if name:
        sql += " AND name = ?"
        args.append(name)
    out: dict[str, list[dict[str, Any]]] = {}
    for r in conn.execute(sql + " ORDER BY name, step", args):
        out.setdefault(r["name"], []).append(
            {"step": r["step"], "epoch": r["epoch"], "value": r["value"], "detail": json.loads(r["detail"]) if r["detail"] else None}
        )
    return out


@retrying
def recent_values(conn: Connection, run_id: int, name: str, limit: int) -> list[float]:
    """The last ``limit`` non-missing values of a metric series, oldest first."""
    rows = conn.execute(
        "SELECT value FROM metrics WHERE run_id = ? AND name = ? AND value IS NOT NULL ORDER BY step DESC LIMIT ?", (run_id, name, limit)
    ).fetchall()
    return [float(v[0]) for v in reversed(rows)]


@retrying
def training_evaluation_values(conn: Connection, run_id: int, name: str) -> list[float]:
    """A metric's values over the run's training evaluations, by epoch."""
    return [
        float(v[0])
        for v in conn.execute(
            "SELECT v.value FROM evaluations e JOIN evaluation_values v ON v.evaluation_id = e.id "
            "WHERE e.run_id = ? AND v.name = ? AND v.value IS NOT NULL AND e.origin = 'training' ORDER BY e.epoch",
            (run_id, name),
        )
    ]


@retrying
def artifacts(conn: Connection, run_id: int, kind: str | None = None) -> list[sqlite3.Row]:
    """A run's artifacts, oldest first; ``path`` is relative to HOME (see :meth:`coldlab.home.Home.file`)."""
    sql = "SELECT * FROM artifacts WHERE run_id = ?"
    args: list[Any] = [run_id]
    if kind:
        sql += " AND kind = ?"
        args.append(kind)
    return cast("list[sqlite3.Row]", conn.execute(sql + " ORDER BY created, path", args).fetchall())


@retrying
def latest_artifact(conn: Connection, run_id: int, kind: str) -> str | None:
    """The stored path of a run's newest artifact of a kind (highest epoch, then newest)."""
    row = conn.execute(
        "SELECT path FROM artifacts WHERE run_id = ? AND kind = ? ORDER BY COALESCE(epoch, -1) DESC, created DESC LIMIT 1", (run_id, kind)
    ).fetchone()
    return row[0] if row else None


@retrying
def has_evaluation(conn: Connection, key: str) -> bool:
    return conn.execute("SELECT 1 FROM evaluations WHERE key = ?", (key,)).fetchone() is not None


@retrying
def evaluations(conn: Connection, run_id: int) -> list[dict[str, Any]]:
    """Every evaluation of a run, oldest first, each with its values as name -> {value, detail}."""
    out = []
    for e in conn.execute("SELECT * FROM evaluations WHERE run_id = ? ORDER BY id", (run_id,)).fetchall():
        values = {
            v["name"]: {"value": v["value"], "detail": json.loads(v["detail"]) if v["detail"] else {}}
            for v in conn.execute("SELECT * FROM evaluation_values WHERE evaluation_id = ? ORDER BY name", (e["id"],))
        }
        out.append(
            {
                "id": e["id"],
                "origin": e["origin"],
                "epoch": e["epoch"],
                "step": e["step"],
                "sampler": json.loads(e["sampler"]),
                "settings": json.loads(e["settings"]),
                "seconds": e["seconds"],
                "created": e["created"],
                "values": values,
            }
        )
    return out


@retrying
def waiting(conn: Connection) -> int:
    """How many queued runs wait for a run that is still queued or running (a worker should wait too)."""
    return int(
        conn.execute(
            "SELECT COUNT(*) FROM runs r JOIN runs d ON d.id = r.depends_on WHERE r.status = 'queued' AND d.status IN ('queued', 'running')"
        ).fetchone()[0]
    )


@retrying
def claimable(conn: Connection, ids: Iterable[int] | None = None) -> int:
    """How many queued runs (of ``ids``) a worker could take or will once their dependency finishes."""
    sql, args = (
        (
            "SELECT COUNT(*) FROM runs r WHERE r.status = 'queued' AND (r.depends_on IS NULL OR "
            "(SELECT d.status FROM runs d WHERE d.id = r.depends_on) IN ('queued', 'running', 'finished'))"
        ),
        [],
    )
    if ids is not None:
        ids = list(ids)
        sql += f" AND r.id IN ({','.join('?' * len(ids))})"
        args = ids
    return int(conn.execute(sql, args).fetchone()[0])


@retrying
def progress_rows(conn: Connection, ids: list[int]) -> list[dict[str, Any]]:
    """What ``coldlab run`` shows of each run: the row, its latest step loss (``loss``), the last
    finished epoch with its ``train_loss`` and ``val_loss``."""
    rows = list_runs(conn, ids=ids)
    latest = latest_metrics(conn, ids, ("train_loss_step", "train_loss", "val_loss"))
    epochs = dict(
        conn.execute(
            f"SELECT run_id, MAX(step) FROM metrics WHERE name = 'train_loss' AND run_id IN ({','.join('?' * len(ids))}) GROUP BY run_id", ids
        ).fetchall()
    )
    out = []
    for r in rows:
        values = latest.get(r["id"], {})
        last_epoch = epochs.get(r["id"])
        loss = values.get("train_loss_step")
        out.append(
            {
                **dict(r),
                "loss": loss if loss is not None else values.get("train_loss"),
                "finished_epoch": last_epoch,
                "train_loss": values.get("train_loss"),
                "val_loss": values.get("val_loss"),
            }
        )
    return out


@retrying
def run_events(conn: Connection, ids: list[int], after: int = 0) -> list[dict[str, Any]]:
    """Evaluations of the runs ``ids`` newer than evaluation id ``after``, oldest first, each with
    the run's name and its values as name -> value."""
    marks = ",".join("?" * len(ids))
    out = []
    for e in conn.execute(
        f"SELECT e.id, e.run_id, e.epoch, e.origin, r.name FROM evaluations e JOIN runs r ON r.id = e.run_id "
        f"WHERE e.run_id IN ({marks}) AND e.id > ? ORDER BY e.id",
        (*ids, after),
    ).fetchall():
        values = {v[0]: v[1] for v in conn.execute("SELECT name, value FROM evaluation_values WHERE evaluation_id = ? ORDER BY name", (e["id"],))}
        out.append({"id": e["id"], "run_id": e["run_id"], "epoch": e["epoch"], "origin": e["origin"], "name": e["name"], "values": values})
    return out


@retrying
def find_run(conn: Connection, run_id: int) -> sqlite3.Row | None:
    """The run, or None (``get_run`` raises instead)."""
    return cast("sqlite3.Row | None", conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone())


@retrying
def running_workers(conn: Connection) -> list[str]:
    """The workers that hold a running run."""
    return [r[0] for r in conn.execute("SELECT DISTINCT worker FROM runs WHERE status = 'running' AND worker IS NOT NULL")]


@retrying
def stale_runs(conn: Connection, before: float) -> int:
    """How many running runs have had no heartbeat since ``before`` (their worker may be dead)."""
    return int(conn.execute("SELECT COUNT(*) FROM runs WHERE status = 'running' AND COALESCE(heartbeat, 0) < ?", (before,)).fetchone()[0])


@retrying
def count_runs(conn: Connection, status: str | None = None) -> int:
    if status is None:
        return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    return int(conn.execute("SELECT COUNT(*) FROM runs WHERE status = ?", (status,)).fetchone()[0])


@retrying
def stored_configs(conn: Connection) -> dict[tuple[str, str], tuple[int, dict[str, Any]]]:
    """(study, name) -> (run id, stored spec) of every run."""
    return {(r["study"], r["name"]): (int(r["id"]), json.loads(r["config"])) for r in conn.execute("SELECT id, study, name, config FROM runs")}
