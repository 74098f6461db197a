"""Sweeps: one experiment, several settings.

::

    [[experiment]]
    name = "ddpm"
    sweep = { "degradation.schedule.max_beta" = [0.02, 0.1, 0.999], "train.lr" = [1e-4, 2e-4] }
    sweep_mode = "product"     # the default: every combination (6 here); "zip": the i-th values together
    seeds = [0, 1]             # each combination at each seed

Keys are dotted paths into the experiment (after ``[defaults]`` are merged): a component given by its name
(``sampler = "ddim"``) becomes a table when a sweep sets one of its parameters (``"sampler.steps"``), and a
whole component may be swept (``sampler = ["ddpm", "ddim"]``). Each combination is an experiment of its own
name, ``NAME-max_beta=0.1-lr=0.0001`` (the last part of each key, the whole key where two share it), and is
validated as one; its runs keep the experiment's name (``runs.experiment``) and the swept values
(``runs.params``), which the report groups and plots by.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from coldlab.dotted import assign
from coldlab.errors import ColdlabError

NOT_SWEPT = ("study", "name", "kind", "seeds", "sweep", "sweep_mode", "trackers", "train.seed")
MODES = ("product", "zip")
HINT = 'e.g. sweep = { "train.lr" = [1e-4, 2e-4] }'


def _check(sweep: Any, mode: Any) -> dict[str, list[Any]]:
    if not isinstance(sweep, dict) or not sweep:
        raise ColdlabError("'sweep' must be a table of dotted keys and lists of values", hint=HINT, where=("sweep",))
    if mode not in MODES:
        raise ColdlabError(
            f"sweep_mode must be one of {', '.join(MODES)}, got {mode!r}", hint="product: every combination; zip: in step", where=("sweep_mode",)
        )
    for key, values in sweep.items():
        if key in NOT_SWEPT or key.split(".")[0] in NOT_SWEPT[:6]:
            hint = "use seeds = [...] for seeds" if "seed" in key else f"keys of a sweep are settings and components; not {', '.join(NOT_SWEPT)}"
            raise ColdlabError(f"{key!r} cannot be swept", hint=hint, where=("sweep", key))
        if not key or any(not part for part in key.split(".")):
            raise ColdlabError(f"bad key {key!r}", hint=HINT, where=("sweep", key))
        if not isinstance(values, list) or not values:
            raise ColdlabError("must be a non-empty list of values", hint=HINT, where=("sweep", key))
        seen = [json.dumps(v, sort_keys=True) for v in values]
        if len(set(seen)) != len(seen):
            raise ColdlabError("repeats a value", hint="list each value once", where=("sweep", key))
    if mode == "zip" and len({len(v) for v in sweep.values()}) > 1:
        lengths = ", ".join(f"{k}: {len(v)}" for k, v in sweep.items())
        raise ColdlabError(f"sweep_mode = 'zip' needs lists of one length ({lengths})", hint="or use sweep_mode = 'product'", where=("sweep",))
    return sweep


def value_label(value: Any) -> str:
    """A swept value as it appears in a run name."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return format(value, "g")
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        rest = {k: v for k, v in value.items() if k != "name"}
        return str(value["name"]) + ("(" + ",".join(f"{k}={value_label(v)}" for k, v in sorted(rest.items())) + ")" if rest else "")
    if isinstance(value, list):
        return "x".join(value_label(v) for v in value)
    return str(value)


def short_keys(keys: list[str]) -> dict[str, str]:
    """Each key's label in run names: its last part, or the whole key where two keys share the last part."""
    last = [k.split(".")[-1] for k in keys]
    return {k: (tail if last.count(tail) == 1 else k) for k, tail in zip(keys, last, strict=True)}


def expand(raw: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """An experiment (defaults merged) as (experiment of one combination, swept values) pairs: itself with
    no values when it has no sweep. Raises located errors for a bad ``sweep`` table."""
    if "sweep" not in raw:
        if "sweep_mode" in raw:
            raise ColdlabError("sweep_mode without a sweep", hint=HINT, where=("sweep_mode",))
        return [(raw, {})]
    sweep = _check(raw["sweep"], raw.get("sweep_mode", "product"))
    keys = list(sweep)
    combos = zip(*sweep.values(), strict=True) if raw.get("sweep_mode") == "zip" else itertools.product(*sweep.values())
    labels = short_keys(keys)
    base = {k: v for k, v in raw.items() if k not in ("sweep", "sweep_mode")}
    out = []
    for combo in combos:
        values = dict(zip(keys, combo, strict=True))
        one = base
        for key, value in values.items():
            try:
                one = assign(one, key, value)
            except KeyError as err:
                raise ColdlabError(f"{err.args[0]!r} is neither a table nor a component name", hint=HINT, where=("sweep", key)) from None
        one["name"] = f"{raw['name']}-" + "-".join(f"{labels[k]}={value_label(v)}" for k, v in values.items())
        out.append((one, values))
    return out


def locate(err: ColdlabError, values: dict[str, Any]) -> ColdlabError:
    """An error in one combination, located at the sweep entry that caused it (the key whose path the error's
    location starts with), else at the combination's values."""
    where = ".".join(err.where)
    for key in values:
        if where and (where == key or where.startswith(key + ".") or key.startswith(where + ".")):
            shown = json.dumps(values[key]) if not isinstance(values[key], str) else repr(values[key])
            return ColdlabError(f"{key} = {shown}: {err.message}", hint=err.hint, where=("sweep", key))
    combo = ", ".join(f"{k} = {json.dumps(v)}" for k, v in values.items())
    return ColdlabError(f"{err.message} (with sweep values {combo})", hint=err.hint, where=err.where)
