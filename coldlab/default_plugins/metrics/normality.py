"""``ks-normality``: how soon the forward process turns images into N(0, 1) noise (report 004).

For the first ``images`` test images and fixed noise (seed ``eval.seed``), z_t is flattened at
every ``every``-th step t (and at T) and compared with N(0, 1) by the Kolmogorov-Smirnov test
(scipy.stats.kstest). The value is the first t whose p-value exceeds ``alpha``; it is None when
no step does (cold degradations never become Gaussian). The whole p-value curve is in
``detail``. The metric depends on the degradation only, not on the network.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from coldlab import param
from coldlab.components.metric import Metric, MetricValue


class KSNormality(Metric):
    """Kolmogorov-Smirnov p-value of flattened z_t against N(0, 1), per step."""

    @dataclasses.dataclass
    class Params:
        images: int = param(4, "test images whose pixels are pooled into one sample per step", min=1, smoke=64)
        every: int = param(1, "test every k-th step (T is always tested)", min=1)
        alpha: float = param(0.05, "p-value above which z_t counts as Gaussian", gt=0, lt=1)

        def __post_init__(self) -> None:
            if self.images < 1 or self.every < 1 or not 0 < self.alpha < 1:
                raise ValueError("images and every must be >= 1 and alpha in (0, 1)")

    @torch.no_grad()
    def evaluate(self, ctx: Any) -> MetricValue:
        from scipy import stats  # slow to import: only when used

        images, _ = ctx.test_set()
        x = ctx.encode(images[: self.params.images].to(ctx.device))  # latents in a latent diffusion run
        deg = ctx.degradation
        noise = deg.sample_noise(x, ctx.generator(5))
        steps = sorted(set(range(0, deg.T + 1, self.params.every)) | {deg.T})
        p_values = []
        for t in steps:
            flat = deg.degrade(x, t, noise).flatten().double().cpu().numpy()
            p_values.append(float(stats.kstest(flat, "norm").pvalue))
        first = next((t for t, p in zip(steps, p_values, strict=True) if p > self.params.alpha), None)
        return MetricValue(
            first,
            {
                "t": steps,
                "p": p_values,
                "first_t": first,
                "alpha": self.params.alpha,
                "images": int(x.shape[0]),
                "points_per_test": int(x[0].numel() * x.shape[0]),
            },
        )
