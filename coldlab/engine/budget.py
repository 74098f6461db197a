"""Overrides of a run spec: ``--smoke`` (a tiny budget to check a study end to end) and ``--epochs``."""

from __future__ import annotations

import copy
from typing import Any

from coldlab.engine.kinds import kind_of

SMOKE_IMAGES = 256
SMOKE_STEPS = 10
SMOKE_SAMPLES = 16
SMOKE_METRIC_IMAGES = 64


def smoke(spec: dict[str, Any]) -> dict[str, Any]:
    """The same run at a tiny budget: one epoch on 256 images, batch 64, a 4-image grid, 16 samples
    for metrics, metrics on at most 64 test images, and at most 10 sampling steps for samplers
    that take a step count."""
    spec = copy.deepcopy(spec)
    spec["name"] = f"{spec['name']}-smoke"
    train = spec["train"]
    train.update(epochs=1, max_train_images=SMOKE_IMAGES, batch_size=min(train["batch_size"], 64), log_every=1)
    spec["eval"].update(every=1, grid=4)
    kind = kind_of(spec)
    if kind.smoke is not None:
        kind.smoke(spec)
    if not kind.samples:
        return spec
    spec["eval"]["samples"] = min(spec["eval"]["samples"], SMOKE_SAMPLES)
    for key in ("metrics", "final_metrics"):
        spec["eval"][key] = [smoke_metric(m) for m in spec["eval"].get(key, [])]
    if "steps" in spec["sampler"]:
        steps = spec["sampler"]["steps"]
        spec["sampler"]["steps"] = SMOKE_STEPS if steps is None else min(steps, SMOKE_STEPS)
    if spec["prior"]["name"] == "gmm":
        spec["prior"]["max_images"] = min(spec["prior"].get("max_images", SMOKE_IMAGES), SMOKE_IMAGES)
    return spec


def smoke_metric(metric: dict[str, Any]) -> dict[str, Any]:
    """A metric at a smoke budget: at most 64 test images, 16 timed samples, 1 classifier epoch."""
    metric = dict(metric)
    if "images" in metric:
        metric["images"] = SMOKE_METRIC_IMAGES if metric["images"] <= 0 else min(metric["images"], SMOKE_METRIC_IMAGES)
    if "samples" in metric:
        metric["samples"] = min(metric["samples"], SMOKE_SAMPLES)
    if "epochs" in metric:
        metric["epochs"] = 1
    return metric


def with_epochs(spec: dict[str, Any], epochs: int) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    spec["train"]["epochs"] = epochs
    return spec
