"""What a researcher writes about runs: tags, notes, the archived flag, removal, and the provenance a
worker adds when it takes a run. Every change is one transaction; an unknown id is a one-line error."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterable
from typing import Any

from coldlab.errors import ColdlabError
from coldlab.store.connection import transaction
from coldlab.store.postgres import Connection
from coldlab.store.retry import retrying

TAG = re.compile(r"^[^\s,+\-][^\s,]*$")
TAG_HINT = "a tag is one word without spaces or commas, not starting with + or - (e.g. +baseline)"


def check_tag(tag: str) -> str:
    """A tag as stored; a bad one is a one-line error."""
    if not TAG.match(tag) or len(tag) > 100:
        raise ColdlabError(f"bad tag {tag!r}", hint=TAG_HINT, where=("tag",))
    return tag


def _existing(conn: Connection, ids: Iterable[int]) -> list[int]:
    wanted = list(dict.fromkeys(int(i) for i in ids))
    if not wanted:
        raise ColdlabError("no run ids given", hint="`coldlab ls` lists the runs")
    found = {int(r[0]) for r in conn.execute(f"SELECT id FROM runs WHERE id IN ({','.join('?' * len(wanted))})", wanted)}
    missing = [i for i in wanted if i not in found]
    if missing:
        raise ColdlabError(f"no run with id {', '.join(map(str, missing))}", hint="`coldlab ls --all` lists the runs")
    return wanted


@retrying
def tag_runs(conn: Connection, ids: Iterable[int], add: Iterable[str] = (), remove: Iterable[str] = ()) -> dict[int, list[str]]:
    """Add and remove tags of runs; returns run id -> its tags after the change."""
    add, remove = [check_tag(t) for t in add], [check_tag(t) for t in remove]
    both = sorted(set(add) & set(remove))
    if both:
        raise ColdlabError(f"tag {both[0]!r} is both added and removed", hint="give +TAG or -TAG, not both", where=("tag",))
    with transaction(conn):
        runs = _existing(conn, ids)
        for run_id in runs:
            conn.executemany("INSERT INTO tags (run_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING", [(run_id, t) for t in add])
            conn.executemany("DELETE FROM tags WHERE run_id = ? AND tag = ?", [(run_id, t) for t in remove])
        return tags_of(conn, runs)


@retrying
def tags_of(conn: Connection, ids: Iterable[int] | None = None) -> dict[int, list[str]]:
    """run id -> sorted tags (every run asked for is a key; ``None``: every run with a tag)."""
    if ids is None:
        rows = conn.execute("SELECT run_id, tag FROM tags ORDER BY run_id, tag").fetchall()
        out: dict[int, list[str]] = {}
    else:
        wanted = list(ids)
        out = {int(i): [] for i in wanted}
        rows = conn.execute(f"SELECT run_id, tag FROM tags WHERE run_id IN ({','.join('?' * len(wanted))}) ORDER BY run_id, tag", wanted).fetchall()
    for run_id, tag in rows:
        out.setdefault(int(run_id), []).append(tag)
    return out


@retrying
def set_note(conn: Connection, run_id: int, text: str) -> None:
    """Set (replace) a run's note; an empty text removes it."""
    with transaction(conn):
        _existing(conn, [run_id])
        conn.execute("UPDATE runs SET note = ? WHERE id = ?", (text.strip() or None, run_id))


@retrying
def set_archived(conn: Connection, ids: Iterable[int], archived: bool = True) -> list[int]:
    """Hide runs from the default views (``ls``, ``export``, the dashboard), or show them again."""
    with transaction(conn):
        runs = _existing(conn, ids)
        conn.executemany("UPDATE runs SET archived = ? WHERE id = ?", [(int(archived), i) for i in runs])
        return runs


@retrying
def remove_runs(conn: Connection, ids: Iterable[int]) -> list[sqlite3.Row]:
    """Delete runs and everything the store holds of them (metrics, evaluations, artifacts, tags); returns
    the removed rows (their folders are the caller's to delete). Refused, with nothing removed, for a run
    that is running, or that a run not being removed depends on (a latent run's autoencoder). A removed
    run's id is recorded and never given to a new run."""
    with transaction(conn, exclusive=True):
        runs = _existing(conn, ids)
        marks = ",".join("?" * len(runs))
        rows: list[sqlite3.Row] = conn.execute(f"SELECT * FROM runs WHERE id IN ({marks}) ORDER BY id", runs).fetchall()
        running = [r for r in rows if r["status"] == "running"]
        if running:
            r = running[0]
            raise ColdlabError(
                f"run {r['id']} ({r['name']}) is running", hint="cancel it first (`coldlab tui`, key c) and remove it once it stopped", where=("rm",)
            )
        users = conn.execute(f"SELECT id, name, depends_on FROM runs WHERE depends_on IN ({marks}) AND id NOT IN ({marks})", runs + runs).fetchall()
        if users:
            u = users[0]
            raise ColdlabError(
                f"run {u['id']} ({u['name']}) uses run {u['depends_on']}", hint=f"remove both: coldlab rm {u['depends_on']} {u['id']}", where=("rm",)
            )
        now = time.time()
        conn.executemany(
            "INSERT INTO removed_runs (id, study, name, removed) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET study = excluded.study, name = excluded.name, removed = excluded.removed",
            [(r["id"], r["study"], r["name"], now) for r in rows],
        )
        conn.execute(f"UPDATE runs SET depends_on = NULL WHERE id IN ({marks})", runs)
        conn.execute(f"DELETE FROM runs WHERE id IN ({marks})", runs)
        return rows


@retrying
def add_provenance(conn: Connection, run_id: int, key: str, value: dict[str, Any]) -> None:
    """Set one part of a run's provenance (``"ran"``: the host, device and versions of the attempt under way)."""
    with transaction(conn):
        row = conn.execute("SELECT provenance FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            return
        current = json.loads(row[0]) if row[0] else {}
        current[key] = value
        conn.execute("UPDATE runs SET provenance = ? WHERE id = ?", (json.dumps(current, sort_keys=True), run_id))
