"""Evaluation metrics: what a metric plugin subclasses.

A metric reads from an :class:`EvalContext` (the run's network, degradation, sampler, test data and
caches): the read API below, which the engine implements (``coldlab.engine.evaluation.RunEvaluation``)
and a test may fake. Metrics that consume generated samples
or conditional reconstructions declare ``source`` and implement the torchmetrics-style
``reset`` / ``update`` / ``compute`` triple; the context generates those inputs once per
evaluation and shares them between every metric that asks. A metric with ``source = None``
overrides :meth:`Metric.evaluate` and does its own work (K-S normality, sampling cost).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch

from coldlab.params import NoParams

if TYPE_CHECKING:
    from coldlab.components.degradation import Degradation
    from coldlab.components.sampler import Sampler


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


@runtime_checkable
class EvalContext(Protocol):
    """What a metric may read during one evaluation of one set of weights.

    Images are in the dataset's ``value_range`` with ``shape`` (C, H, W); every tensor a method
    returns is on ``device`` unless it says otherwise. Generated samples and reconstructions come to
    a metric through :meth:`batches` (shared by every metric of the evaluation).
    """

    @property
    def device(self) -> torch.device: ...
    @property
    def shape(self) -> tuple[int, ...]:
        """The image shape (C, H, W) (a latent run's network works on another shape; metrics see images)."""

    @property
    def num_classes(self) -> int: ...
    @property
    def value_range(self) -> tuple[float, float]: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def seed(self) -> int:
        """``eval.seed``: seed every random draw of a metric from it (:meth:`generator`)."""

    @property
    def dataset_spec(self) -> dict[str, Any]:
        """The run's resolved dataset table (cache keys)."""

    @property
    def train_loss(self) -> str:
        """The run's training loss (``"mse"`` or ``"l1"``)."""

    @property
    def conditional(self) -> bool:
        """Whether the network takes class labels."""

    @property
    def net(self) -> torch.nn.Module:
        """The sampling weights (in eval mode when sampling)."""

    @property
    def degradation(self) -> Degradation: ...
    @property
    def sampler(self) -> Sampler: ...
    @property
    def shared(self) -> dict[str, Any]:
        """Objects metrics of one evaluation share (a classifier), by key."""

    def test_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The dataset's test images and labels (CPU)."""

    def train_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The run's training images and labels (CPU)."""

    def to_unit(self, images: torch.Tensor) -> torch.Tensor:
        """Images mapped from ``value_range`` to [0, 1], clamped."""

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images as the network sees them (latents in a latent diffusion run)."""

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """What the network works on, back as images."""

    def generator(self, offset: int = 0) -> torch.Generator:
        """A generator on ``device`` seeded with ``seed + offset``."""

    def generate(self, n: int, batch_size: int | None = None) -> Iterator[torch.Tensor]:
        """``n`` new samples in batches, from fixed start points (timing metrics); ``batch_size`` is also the
        network's chunk (default :meth:`chunk_size`)."""

    def chunk_size(self) -> int:
        """Samples per network call when sampling: ``eval.batch_size``, or what the device holds with ``"auto"``."""

    def network_output(self, z: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The network's output for z_t at integer steps ``t``."""

    def requested_labels(self) -> torch.Tensor | None:
        """The class asked of each generated sample (classifier-free guidance), or None when samples are
        drawn without labels."""

    def cached(self, kind: str, key: dict[str, Any], compute: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """``compute()`` once per (kind, key) on this machine, then read from the cache."""

    def batches(self, source: str, metric: Metric) -> Iterator[SampleBatch | ReconstructionBatch]:
        """The inputs of a metric with ``source`` ``"samples"`` or ``"reconstructions"``."""


class Metric:
    """Base of the metric plugins.

    ``source``: ``"samples"`` (unconditional samples of the run), ``"reconstructions"``
    (conditional reconstructions of the test set) or ``None`` (override :meth:`evaluate`).
    """

    Params: type = NoParams
    #: the name and kind it was registered and built under: declared here, filled in by the registry that builds
    #: it (the constructor contract stays ``cls(params, **context)``); "" for one constructed directly
    component_name: str = ""
    component_kind: str = ""
    source: str | None = None
    #: True if a larger value is better, False if smaller is, None if neither (reports mark the best)
    higher_is_better: bool | None = None

    def __init__(self, params: Any) -> None:
        self.params = params

    def evaluate(self, ctx: EvalContext) -> MetricValue:
        """Reset, feed every batch of the metric's source, compute."""
        if self.source is None:
            raise NotImplementedError(f"{type(self).__name__} has no source: it must override evaluate()")
        self.reset(ctx)
        for batch in ctx.batches(self.source, self):
            self.update(batch)
        return self.compute()

    def reset(self, ctx: EvalContext) -> None:
        """Prepare for a new evaluation (build torchmetrics objects, load cached statistics)."""

    def update(self, batch: Any) -> None:
        """Feed one batch of the metric's source: a :class:`SampleBatch` or a :class:`ReconstructionBatch`."""
        raise NotImplementedError

    def compute(self) -> MetricValue:
        raise NotImplementedError

    # reconstruction metrics override these to say which steps and how many test images
    def reconstruction_steps(self, T: int) -> list[int]:
        return []

    def reconstruction_images(self) -> int:
        return 0
