"""Metrics of conditional reconstructions and of the loss on the test set (report 002).

``rmse``, ``ssim`` and ``psnr`` degrade the first ``images`` test images to each step t (fixed
noise), sample them back from t with the run's sampler, and compare with the originals.
Both are mapped to [0, 1] first (clamped, as they would be shown), so PSNR uses a data range
of 1 and RMSE is in units of the full pixel range. Each is averaged per image, then over the
steps; the value at every step is kept in ``detail["per_t"]``. The steps are ``t`` when given,
else ``levels`` (fractions of T). ``test-loss`` is the training objective (the run's
``train.loss`` between network output and target) averaged over the test set.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import torch
import torch.nn.functional as F

from coldlab import param
from coldlab.components.metric import Metric, MetricValue, ReconstructionBatch
from coldlab.imaging import psnr


@dataclasses.dataclass
class ReconstructionParams:
    t: list[int] = param([], "steps to degrade to and reconstruct from (empty: use levels)", min=1)
    levels: list[float] = param([0.5], "steps as fractions of T, used when t is empty", gt=0, max=1)
    images: int = param(1000, "test images to reconstruct (0: the whole test set; 002 used all 10000)", min=0, smoke=64)

    def __post_init__(self) -> None:
        if not self.t and not self.levels:
            raise ValueError("give t or levels")


class ReconstructionMetric(Metric):
    """Per-step torchmetrics objects fed with reconstructions mapped to [0, 1]."""

    Params = ReconstructionParams
    source = "reconstructions"

    def reconstruction_steps(self, T: int) -> list[int]:
        if self.params.t:
            return sorted(set(self.params.t))
        return sorted({max(1, round(level * T)) for level in self.params.levels})

    def reconstruction_images(self) -> int:
        return cast("int", self.params.images)

    def make(self) -> Any:
        raise NotImplementedError

    def feed(self, metric: Any, recon: torch.Tensor, original: torch.Tensor) -> None:
        metric.update(recon, original)

    def reset(self, ctx: Any) -> None:
        self.ctx = ctx
        self.per_t: dict[int, Any] = {}
        self.count: dict[int, int] = {}

    @torch.no_grad()
    def update(self, batch: ReconstructionBatch) -> None:
        if batch.t not in self.per_t:
            self.per_t[batch.t] = self.make().to(batch.originals.device)
            self.count[batch.t] = 0
        self.feed(self.per_t[batch.t], self.ctx.to_unit(batch.reconstructions.float()), self.ctx.to_unit(batch.originals.float()))
        self.count[batch.t] += batch.originals.shape[0]

    def compute(self) -> MetricValue:
        per_t = {t: float(m.compute()) for t, m in sorted(self.per_t.items())}
        return MetricValue(
            sum(per_t.values()) / len(per_t),
            {"per_t": {str(t): v for t, v in per_t.items()}, "images": next(iter(self.count.values())), "space": "[0, 1], clamped"},
        )


class RMSE(ReconstructionMetric):
    """Root-mean-square error per image, averaged."""

    higher_is_better = False

    def make(self) -> Any:
        from torchmetrics.aggregation import MeanMetric  # torchmetrics takes seconds to import: only when used

        return MeanMetric()

    def feed(self, metric: Any, recon: torch.Tensor, original: torch.Tensor) -> None:
        metric.update(((recon - original) ** 2).flatten(1).mean(1).sqrt())


class SSIM(ReconstructionMetric):
    """Structural similarity (torchmetrics, Gaussian window 11, sigma 1.5), averaged over images."""

    higher_is_better = True

    def make(self) -> Any:
        from torchmetrics.image import StructuralSimilarityIndexMeasure

        return StructuralSimilarityIndexMeasure(data_range=1.0)


class PSNR(ReconstructionMetric):
    """Peak signal-to-noise ratio per image (torchmetrics, data range 1), averaged."""

    higher_is_better = True

    def make(self) -> Any:
        from torchmetrics.aggregation import MeanMetric  # torchmetrics takes seconds to import: only when used

        return MeanMetric()

    def feed(self, metric: Any, recon: torch.Tensor, original: torch.Tensor) -> None:
        metric.update(psnr(recon, original))


class TestLoss(Metric):
    """The training objective on the test set, with fixed t and noise (seed ``eval.seed``)."""

    higher_is_better = False

    @dataclasses.dataclass
    class Params:
        images: int = param(0, "test images (0: the whole test set)", min=0, smoke=64)

    @torch.no_grad()
    def evaluate(self, ctx: Any) -> MetricValue:
        images, labels = ctx.test_set()
        n = images.shape[0] if self.params.images <= 0 else min(self.params.images, images.shape[0])
        loss_fn = F.mse_loss if ctx.train_loss == "mse" else F.l1_loss
        gen = ctx.generator(4)
        ctx.net.eval()
        total = 0.0
        for i in range(0, n, ctx.batch_size):
            ctx.on_batch()
            x = ctx.encode(images[i : min(n, i + ctx.batch_size)].to(ctx.device))  # latents in a latent run
            z, t, target = ctx.degradation.training_batch(x, gen)
            y = labels[i : i + x.shape[0]].to(ctx.device) if ctx.conditional else None
            out = ctx.network_output(z, t, y)
            total += float(loss_fn(out, target)) * x.shape[0]
        return MetricValue(total / n, {"images": n, "loss": ctx.train_loss, "target": ctx.degradation.target})
