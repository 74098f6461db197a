"""Fréchet distances between generated samples and the test set: ``fid`` (Inception features)
and ``classifier-fid`` (features of the dataset's small classifier).

Both use torchmetrics' ``FrechetInceptionDistance`` with a feature module. The statistics of
the real images (feature sum, sum of outer products, count over the whole test split) are
computed once per dataset and extractor (keyed by the SHA-256 of its weights) and cached in
``HOME/cache/real-stats``; later evaluations load them into the metric instead of running the
extractor on real images again.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, cast

import torch
from torch import nn

from coldlab import param
from coldlab.components.metric import Metric, MetricValue, SampleBatch
from coldlab.default_plugins.metrics.classifier import FeatureView, classifier_for
from coldlab.default_plugins.metrics.inception import load_inception

_REAL_STATES = ("real_features_sum", "real_features_cov_sum", "real_features_num_samples")


@dataclasses.dataclass
class Extractor:
    """A feature module and what identifies it in the records."""

    module: nn.Module
    name: str
    sha256: str
    info: dict[str, Any] = dataclasses.field(default_factory=dict)


def real_statistics(ctx: Any, extractor: Extractor, batch_size: int) -> dict[str, torch.Tensor]:
    """The real-image states of a Fréchet metric for the test split, from the cache if possible."""

    def compute() -> dict[str, torch.Tensor]:
        from torchmetrics.image.fid import FrechetInceptionDistance  # torchmetrics takes seconds to import: only when used

        metric = FrechetInceptionDistance(feature=extractor.module, reset_real_features=False).to(ctx.device)
        images, _ = ctx.test_set()
        with torch.no_grad():
            for i in range(0, images.shape[0], batch_size):
                ctx.on_batch()  # a cancel reaches the reference pass between batches
                metric.update(images[i : i + batch_size].to(ctx.device), real=True)
        return {k: getattr(metric, k) for k in _REAL_STATES}

    key = {"dataset": ctx.dataset_spec, "split": "test", "extractor": extractor.name, "sha256": extractor.sha256}
    return cast("dict[str, torch.Tensor]", ctx.cached("real-stats", key, compute))


class FrechetDistance(Metric):
    """Shared by ``fid`` and ``classifier-fid``: subclasses say which extractor to use."""

    higher_is_better = False

    source = "samples"

    def extractor(self, ctx: Any) -> Extractor:
        raise NotImplementedError

    def reset(self, ctx: Any) -> None:
        self.ext = self.extractor(ctx)
        from torchmetrics.image.fid import FrechetInceptionDistance

        self.metric = FrechetInceptionDistance(feature=self.ext.module, reset_real_features=False).to(ctx.device)
        stats = real_statistics(ctx, self.ext, ctx.batch_size)
        for name in _REAL_STATES:
            setattr(self.metric, name, stats[name].to(ctx.device))
        self.n_real = int(stats["real_features_num_samples"])
        self.n_fake = 0

    @torch.no_grad()
    def update(self, batch: SampleBatch) -> None:
        self.metric.update(batch.images, real=False)
        self.n_fake += batch.images.shape[0]

    def compute(self) -> MetricValue:
        value = float(self.metric.compute())
        return MetricValue(
            value,
            {
                "extractor": self.ext.name,
                "extractor_sha256": self.ext.sha256,
                "samples": self.n_fake,
                "real_images": self.n_real,
                "real_split": "test",
                **self.ext.info,
            },
        )


class ClassifierFID(FrechetDistance):
    """Fréchet distance on the 128 penultimate features of the dataset's small classifier (offline)."""

    @dataclasses.dataclass
    class Params:
        epochs: int = param(5, "epochs to train a classifier for datasets without bundled weights", min=1, smoke=1)

    def extractor(self, ctx: Any) -> Extractor:
        model, info = classifier_for(ctx, epochs=self.params.epochs)
        return Extractor(
            FeatureView(model),
            "small-classifier",
            info["sha256"],
            {"classifier_source": info["source"], "classifier_test_accuracy": info.get("test_accuracy")},
        )


class InceptionFID(FrechetDistance):
    """FID on Inception-v3 pool features (torchmetrics / torch-fidelity weights from a local file)."""

    @dataclasses.dataclass
    class Params:
        weights: str = param("", "Inception weights file (default: $COLDLAB_INCEPTION_WEIGHTS, then the torch hub cache)")
        download: bool = param(False, "allow torch-fidelity to download the weights when none are found locally")
        feature: Literal[64, 192, 768, 2048] = param(2048, "Inception feature layer")

    def extractor(self, ctx: Any) -> Extractor:
        module, path, sha = load_inception(ctx, str(self.params.feature), self.params.weights, self.params.download)
        return Extractor(module, f"inception-v3-{self.params.feature}", sha, {"weights": path})
