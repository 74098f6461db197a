"""Putting a file's runs in the queue: one rule for ``coldlab run`` and the dashboard's "add".

Everything is checked before anything is written: a run already in the store under the same study
and name must have exactly the same settings (a changed experiment under an existing name is an
error naming the file and the experiment), so a rejected file leaves nothing queued.
"""

from __future__ import annotations

import copy
import json
import sqlite3
from typing import Any, Callable, Iterator

from coldlab.errors import ColdlabError
from coldlab.store import enqueue
from coldlab.store.queries import stored_configs
from coldlab.store.status import DEFAULT_MAX_ATTEMPTS


def _stored_specs(conn: sqlite3.Connection, runs: list[Any], prepare: Callable[[dict[str, Any]], dict[str, Any]] | None,
                  ids: dict[tuple[str, str], int]) -> list[tuple[Any, dict[str, Any], int | None]]:
    """(run, spec as it would be stored, id of the autoencoder run it depends on), autoencoder runs
    first; ``ids`` holds the ids of autoencoder runs (known or just queued)."""
    out = []
    for run in sorted(runs, key=lambda r: r.kind != "autoencoder"):
        spec = run.to_dict()
        depends_on = None
        if spec.get("latent") and "run" in spec["latent"]:
            depends_on = ids.get((spec["latent"]["study"], spec["latent"]["run"]))
            spec["latent"]["run_id"] = depends_on
        if prepare is not None:
            spec = prepare(copy.deepcopy(spec))
        out.append((run, spec, depends_on))
    return out


def check_queue(conn: sqlite3.Connection, runs: list[Any], prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                where: str = "") -> None:
    """Raise a located ColdlabError if a run of ``runs`` is in the store with other settings."""
    existing = stored_configs(conn)
    ids: dict[tuple[str, str], int] = {}  # (study, experiment run name) -> id of the autoencoder run in the store
    for run, spec, _ in _stored_specs(conn, [r for r in runs if r.kind == "autoencoder"], prepare, ids):
        if (spec["study"], spec["name"]) in existing:  # stored under its prepared name (e.g. NAME-smoke)
            ids[(run.study, run.name)] = existing[(spec["study"], spec["name"])][0]
    for run, spec, _ in _stored_specs(conn, runs, prepare, ids):
        found = existing.get((spec["study"], spec["name"]))
        if found is not None and found[1] != json.loads(json.dumps(spec, sort_keys=True)):
            located = (where, run.experiment) if where else (run.experiment,)
            raise ColdlabError(f"experiment {run.experiment!r} changed since it was queued as run {found[0]} "
                               f"({spec['study']}/{spec['name']})",
                               hint="rename the experiment, or use another --home for the new settings", where=located)


def queue_runs(conn: sqlite3.Connection, runs: list[Any], prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
               where: str = "", max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Iterator[tuple[Any, dict[str, Any], int, bool]]:
    """Check, then enqueue resolved runs, autoencoder runs first, so that each latent diffusion run
    records the id of the autoencoder run it loads and waits for; yields (run, stored spec, id,
    created). ``prepare`` turns a spec into the one stored (``--smoke``, ``--epochs``); a new run fails once
    its worker process died ``max_attempts`` times."""
    check_queue(conn, runs, prepare, where)
    ids: dict[tuple[str, str], int] = {}
    for run in sorted(runs, key=lambda r: r.kind != "autoencoder"):
        (_, spec, depends_on), = _stored_specs(conn, [run], prepare, ids)
        run_id, created = enqueue(conn, spec["study"], spec["name"], spec, epochs=spec["train"]["epochs"], depends_on=depends_on,
                                  max_attempts=max_attempts)
        if run.kind == "autoencoder":
            ids[(run.study, run.name)] = run_id
        yield run, spec, run_id, created
