"""``coldlab tag``, ``note``, ``archive`` and ``rm``: what a researcher changes about runs after the fact.

- ``coldlab tag RUN... +name -name``: add and remove tags (shown by ``ls``, ``show``, the dashboard and the
  report; searched with ``ls --where "tag = name"``).
- ``coldlab note RUN "text"``: set the run's note (``""`` removes it).
- ``coldlab archive RUN...``: hide runs from ``ls``, ``export`` and the dashboard (``--all`` shows them);
  ``coldlab archive --undo RUN...`` shows them again. Nothing is deleted.
- ``coldlab rm RUN...``: delete runs: their rows (metrics, evaluations, artifacts, tags) and their folders.
  A running run is refused (cancel it first), and so is a run that a run not being removed depends on.
  Ids of removed runs are never given to new runs.
"""

from __future__ import annotations

import shutil
import sys

from coldlab.errors import ColdlabError
from coldlab.home import Home
from coldlab.store.records import remove_runs, set_archived, set_note, tag_runs


def split_tag_args(items: list[str]) -> tuple[list[int], list[str], list[str]]:
    """``3 4 +best -baseline`` -> ([3, 4], ["best"], ["baseline"]); a bare word is an error with a hint."""
    ids, add, remove = [], [], []
    for item in items:
        if item.isdigit():
            ids.append(int(item))
        elif item.startswith("+") and len(item) > 1:
            add.append(item[1:])
        elif item.startswith("-") and len(item) > 1 and not item.startswith("--"):
            remove.append(item[1:])
        else:
            raise ColdlabError(f"{item!r} is neither a run id nor +TAG / -TAG", hint="e.g. coldlab tag 3 4 +baseline -draft", where=("tag",))
    if not ids:
        raise ColdlabError("no run ids given", hint="e.g. coldlab tag 3 4 +baseline -draft", where=("tag",))
    if not add and not remove:
        raise ColdlabError("no tags given", hint="add with +TAG, remove with -TAG: coldlab tag 3 +baseline", where=("tag",))
    return ids, add, remove


def tag_command(home: Home, items: list[str]) -> int:
    ids, add, remove = split_tag_args(items)
    conn = home.connect()
    try:
        result = tag_runs(conn, ids, add, remove)
    finally:
        conn.close()
    for run_id, tags in result.items():
        print(f"run {run_id}: {' '.join(tags) if tags else '(no tags)'}")
    return 0


def note_command(home: Home, run_id: int, text: str) -> int:
    conn = home.connect()
    try:
        set_note(conn, run_id, text)
    finally:
        conn.close()
    print(f"run {run_id}: " + ("note set" if text.strip() else "note removed"), file=sys.stderr)
    return 0


def archive_command(home: Home, ids: list[int], undo: bool) -> int:
    conn = home.connect()
    try:
        done = set_archived(conn, ids, not undo)
    finally:
        conn.close()
    what = "shown again" if undo else "archived (coldlab ls --all shows them; coldlab archive --undo brings them back)"
    print(f"{'run' if len(done) == 1 else 'runs'} {', '.join(map(str, done))} {what}", file=sys.stderr)
    return 0


def remove_command(home: Home, ids: list[int]) -> int:
    """Delete the runs from the store, then their folders; a folder that cannot be deleted is named (exit 1)."""
    conn = home.connect()
    try:
        rows = remove_runs(conn, ids)
    finally:
        conn.close()
    failed = []
    for row in rows:
        folder = home.run_dir(row["id"])
        try:
            shutil.rmtree(folder)
        except FileNotFoundError:
            pass
        except OSError as err:
            failed.append(f"{folder}: {err.strerror or err}")
        print(f"removed run {row['id']} ({row['study']}/{row['name']})", file=sys.stderr)
    for line in failed:
        print(f"coldlab: warning: could not delete {line} (hint: delete the folder by hand)", file=sys.stderr)
    return 1 if failed else 0
