"""Runs as records for listing, searching and comparing (``ls``, ``diff``, the Python API, the dashboard):
the run's fields with its stored spec, swept values, tags, note, provenance and latest metric values."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from coldlab.store.queries import latest_metrics, running_seconds
from coldlab.store.records import tags_of


def _json(text: str | None) -> Any:
    return json.loads(text) if text else None


def run_record(row: sqlite3.Row, metrics: dict[str, float | None], tags: list[str]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "study": row["study"],
        "name": row["name"],
        "experiment": row["experiment"] or row["name"],
        "seed": row["seed"],
        "status": row["status"],
        "epoch": row["epoch"],
        "epochs": row["epochs"],
        "device": row["device"],
        "error": row["error"],
        "seconds": running_seconds(row),
        "created": row["created"],
        "archived": bool(row["archived"]),
        "attempts": row["attempts"],
        "deaths": row["deaths"],
        "worker": row["worker"],
        "tags": tags,
        "note": row["note"],
        "params": _json(row["params"]) or {},
        "config": _json(row["config"]) or {},
        "provenance": _json(row["provenance"]) or {},
        "metrics": metrics,
    }


def run_records(conn: sqlite3.Connection, *, archived: bool = False, ids: Iterable[int] | None = None) -> list[dict[str, Any]]:
    """Every run (``archived``: archived ones too; ``ids``: these runs, archived or not), oldest first."""
    sql, args = "SELECT * FROM runs", []
    if ids is not None:
        wanted = list(ids)
        sql += f" WHERE id IN ({','.join('?' * len(wanted))})"
        args = wanted
    elif not archived:
        sql += " WHERE archived = 0"
    rows = conn.execute(sql + " ORDER BY id", args).fetchall()
    run_ids = [int(r["id"]) for r in rows]
    latest = latest_metrics(conn, run_ids) if run_ids else {}
    tags = tags_of(conn, run_ids) if run_ids else {}
    return [run_record(r, latest.get(int(r["id"]), {}), tags.get(int(r["id"]), [])) for r in rows]
