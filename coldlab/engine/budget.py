"""Overrides of a run spec: ``--smoke`` (a tiny budget to check a study end to end) and ``--epochs``."""

from __future__ import annotations

import copy
from typing import Any

from coldlab.engine.kinds import kind_of
from coldlab.params import smoke_capped


def smoke(spec: dict[str, Any], registry: Any = None) -> dict[str, Any]:
    """The same run at a tiny budget, renamed ``NAME-smoke``. Every parameter that declares a smoke cap
    (``param(..., smoke=N)``) is capped: in the run's ``train`` and ``eval`` settings (one epoch on 256
    images, batch 64, a 4-image grid, 16 samples for metrics), in each of its components (at most 10
    sampling steps, priors fitted on at most 256 images) and in each metric (at most 64 test images, 16
    timed samples, 1 classifier epoch). Built-in and third-party components alike: the cap is declared
    by the parameter, never looked up by a component's or parameter's name."""
    if registry is None:
        from coldlab.plugins import get_registry

        registry = get_registry()
    spec = copy.deepcopy(spec)
    spec["name"] = f"{spec['name']}-smoke"
    kind = kind_of(spec)
    spec["train"] = smoke_capped(kind.train_settings, spec["train"])
    spec["eval"] = smoke_capped(kind.eval_settings, spec["eval"])
    for key in kind.components:
        table = spec.get(key)
        if isinstance(table, dict) and "name" in table:
            spec[key] = smoke_capped(registry.get(key, table["name"]).cls.Params, table)
    for key in ("metrics", "final_metrics"):
        if key in spec["eval"]:
            spec["eval"][key] = [smoke_capped(registry.get("metric", m["name"]).cls.Params, m) for m in spec["eval"][key]]
    return spec


def with_epochs(spec: dict[str, Any], epochs: int) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    spec["train"]["epochs"] = epochs
    return spec


def for_flags(spec: dict[str, Any], smoke_run: bool, epochs: int | None) -> dict[str, Any]:
    """The spec ``coldlab run`` stores with ``--smoke`` and ``--epochs`` (the dry run plans the same one)."""
    spec = smoke(spec) if smoke_run else spec
    return with_epochs(spec, epochs) if epochs is not None else spec
