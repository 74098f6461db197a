"""Evaluation metrics: what a metric plugin subclasses.

A metric reads from an :class:`coldlab.engine.evaluation.EvalContext` (the run's network,
degradation, sampler, prior, test data and caches). Metrics that consume generated samples
or conditional reconstructions declare ``source`` and implement the torchmetrics-style
``reset`` / ``update`` / ``compute`` triple; the context generates those inputs once per
evaluation and shares them between every metric that asks. A metric with ``source = None``
overrides :meth:`Metric.evaluate` and does its own work (K-S normality, sampling cost).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import torch

from coldlab.params import NoParams

if TYPE_CHECKING:
    from coldlab.engine.evaluation import EvalContext


class MetricUnavailable(Exception):
    """Raised by a metric that cannot be computed on this machine (for example: no Inception
    weights offline). The evaluation records the metric as unavailable with this reason and
    goes on; nothing is faked."""


@dataclasses.dataclass
class MetricValue:
    """One metric's result: a headline ``value`` (None when there is no number, e.g. a
    K-S curve that never reaches normality) and a JSON-able ``detail``."""

    value: float | None
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class SampleBatch:
    """Generated samples, clamped to the dataset's value range, on the evaluation device."""

    images: torch.Tensor


@dataclasses.dataclass
class ReconstructionBatch:
    """Test images degraded to step ``t`` and sampled back by the run's sampler."""

    t: int
    originals: torch.Tensor
    reconstructions: torch.Tensor
    labels: torch.Tensor


class Metric:
    """Base of the metric plugins.

    ``source``: ``"samples"`` (unconditional samples of the run), ``"reconstructions"``
    (conditional reconstructions of the test set) or ``None`` (override :meth:`evaluate`).
    """

    Params: type = NoParams
    source: str | None = None
    #: True if a larger value is better, False if smaller is, None if neither (reports mark the best)
    higher_is_better: bool | None = None

    def __init__(self, params: Any) -> None:
        self.params = params

    def evaluate(self, ctx: "EvalContext") -> MetricValue:
        """Reset, feed every batch of the metric's source, compute."""
        if self.source is None:
            raise NotImplementedError(f"{type(self).__name__} has no source: it must override evaluate()")
        self.reset(ctx)
        for batch in ctx.batches(self.source, self):
            self.update(batch)
        return self.compute()

    def reset(self, ctx: "EvalContext") -> None:
        """Prepare for a new evaluation (build torchmetrics objects, load cached statistics)."""

    def update(self, batch: SampleBatch | ReconstructionBatch) -> None:
        raise NotImplementedError

    def compute(self) -> MetricValue:
        raise NotImplementedError

    # reconstruction metrics override these to say which steps and how many test images
    def reconstruction_steps(self, T: int) -> list[int]:
        return []

    def reconstruction_images(self) -> int:
        return 0
