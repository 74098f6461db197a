"""Overrides of a run spec: ``--smoke`` (a tiny budget to check a study end to end) and ``--epochs``."""

from __future__ import annotations

import copy
from typing import Any

SMOKE_IMAGES = 256
SMOKE_STEPS = 10
SMOKE_SAMPLES = 16


def smoke(spec: dict[str, Any]) -> dict[str, Any]:
    """The same run at a tiny budget: one epoch on 256 images, batch 64, a 4-image grid, 16 samples
    for metrics, and at most 10 sampling steps for samplers that take a step count."""
    spec = copy.deepcopy(spec)
    spec["name"] = f"{spec['name']}-smoke"
    train = spec["train"]
    train.update(epochs=1, max_train_images=SMOKE_IMAGES, batch_size=min(train["batch_size"], 64), log_every=1)
    spec["eval"].update(every=1, grid=4, samples=min(spec["eval"]["samples"], SMOKE_SAMPLES))
    if "steps" in spec["sampler"]:
        steps = spec["sampler"]["steps"]
        spec["sampler"]["steps"] = SMOKE_STEPS if steps is None else min(steps, SMOKE_STEPS)
    if spec["prior"]["name"] == "gmm":
        spec["prior"]["max_images"] = min(spec["prior"].get("max_images", SMOKE_IMAGES), SMOKE_IMAGES)
    return spec


def with_epochs(spec: dict[str, Any], epochs: int) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    spec["train"]["epochs"] = epochs
    return spec
