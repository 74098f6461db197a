"""Putting a file's runs in the queue: one rule for ``coldlab run`` and the dashboard's "add".

Everything is checked before anything is written: a run already in the store under the same study
and name must have exactly the same settings (a changed experiment under an existing name is an
error naming the file and the experiment), so a rejected file leaves nothing queued.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any, cast

from coldlab.engine.kinds import kind_of
from coldlab.errors import ColdlabError
from coldlab.store import enqueue
from coldlab.store.queries import stored_configs
from coldlab.store.status import DEFAULT_MAX_ATTEMPTS


def _plan(runs: list[Any], prepare: Callable[[dict[str, Any]], dict[str, Any]] | None) -> list[tuple[Any, dict[str, Any]]]:
    """(run, spec as it will be stored), runs other runs load first (autoencoders); ``prepare`` applied once per run."""
    return [
        (run, prepare(run.to_dict()) if prepare is not None else run.to_dict()) for run in sorted(runs, key=lambda r: not kind_of(r.kind).feeds_runs)
    ]


def _link(run: Any, spec: dict[str, Any], ids: dict[tuple[str, str], int]) -> int | None:
    """Point a latent run's spec at the id of the autoencoder run it loads (``ids``: (study, experiment
    run name) -> id); returns that id (the run waits for it), or None."""
    latent = spec.get("latent")
    if not latent or "run" not in latent:
        return None
    latent["run_id"] = ids.get((latent["study"], latent["run"]))
    return cast("int | None", latent["run_id"])


def stored_experiment(run: Any, spec: dict[str, Any]) -> str:
    """The experiment name stored with a run: the run's experiment, with whatever ``prepare`` added to the
    run's name (``--smoke``: ``-smoke``), so that smoke runs never pool with the experiment's full runs."""
    suffix = spec["name"][len(run.name) :] if spec["name"].startswith(run.name) else ""
    return str(run.experiment) + suffix


def without_new_defaults(old: dict[str, Any], new: dict[str, Any], kind: str) -> dict[str, Any]:
    """``new`` without the ``train``/``eval`` settings that ``old`` (a spec queued by an earlier coldlab) lacks
    and that hold their defaults: a setting added later, left at its default, does not change an experiment (a
    stored run reads it as its default, see :func:`coldlab.config.settings_of`)."""
    out = dict(new)
    classes = {"train": kind_of(kind).train_settings, "eval": kind_of(kind).eval_settings}
    for table, cls in classes.items():
        if not isinstance(old.get(table), dict) or not isinstance(new.get(table), dict):
            continue
        defaults = json.loads(json.dumps(dataclasses.asdict(cls())))
        out[table] = {k: v for k, v in new[table].items() if k in old[table] or k not in defaults or v != defaults[k]}
    return out


def identity(spec: dict[str, Any], kind: str) -> dict[str, Any]:
    """What makes an experiment the same one: its stored spec without the settings that change only how it
    runs (``EXECUTION_ONLY`` of the kind's settings, e.g. ``eval.batch_size``: results do not depend on it)."""
    out = dict(spec)
    for table, cls in (("train", kind_of(kind).train_settings), ("eval", kind_of(kind).eval_settings)):
        drop = getattr(cls, "EXECUTION_ONLY", ())
        if drop and isinstance(out.get(table), dict):
            out[table] = {k: v for k, v in out[table].items() if k not in drop}
    return out


def check_queue(conn: sqlite3.Connection, plan: list[tuple[Any, dict[str, Any]]], where: str = "") -> None:
    """Raise a located ColdlabError if a planned run is in the store with other settings."""
    existing = stored_configs(conn)
    ids = {
        (run.study, run.name): existing[(spec["study"], spec["name"])][0]
        for run, spec in plan
        if kind_of(run.kind).feeds_runs and (spec["study"], spec["name"]) in existing
    }  # stored under e.g. NAME-smoke
    for run, spec in plan:
        found = existing.get((spec["study"], spec["name"]))
        if found is None:
            continue
        stored = json.loads(json.dumps(spec, sort_keys=True))
        _link(run, stored, ids)
        if identity(found[1], run.kind) != identity(without_new_defaults(found[1], stored, run.kind), run.kind):
            located = (where, run.experiment) if where else (run.experiment,)
            raise ColdlabError(
                f"experiment {run.experiment!r} changed since it was queued as run {found[0]} ({spec['study']}/{spec['name']})",
                hint="rename the experiment, or use another --home for the new settings",
                where=located,
            )


def queue_runs(
    conn: sqlite3.Connection,
    runs: list[Any],
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    where: str = "",
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    provenance: dict[str, Any] | None = None,
) -> Iterator[tuple[Any, dict[str, Any], int, bool]]:
    """Check, then enqueue resolved runs, autoencoder runs first, so that each latent diffusion run
    records the id of the autoencoder run it loads and waits for; yields (run, stored spec, id,
    created). ``prepare`` turns a spec into the one stored (``--smoke``, ``--epochs``); a new run fails once
    its worker process died ``max_attempts`` times. Each new run records ``provenance`` (see
    :mod:`coldlab.provenance`), its swept values and its trackers (a run already queued takes the file's trackers)."""
    plan = _plan(runs, prepare)
    check_queue(conn, plan, where)
    ids: dict[tuple[str, str], int] = {}
    for run, spec in plan:
        depends_on = _link(run, spec, ids)
        run_id, created = enqueue(
            conn,
            spec["study"],
            spec["name"],
            spec,
            epochs=spec["train"]["epochs"],
            depends_on=depends_on,
            max_attempts=max_attempts,
            experiment=stored_experiment(run, spec),
            seed=run.seed,
            params=run.params,
            provenance=provenance,
            trackers=run.trackers,
        )
        if kind_of(run.kind).feeds_runs:
            ids[(run.study, run.name)] = run_id
        yield run, spec, run_id, created
