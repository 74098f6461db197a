"""``class-histogram``: which classes the generated samples look like (report 000's digit bias).

The dataset's small classifier (see ``classifier.py``) labels every generated sample. The value
is the entropy, in bits, of the predicted-class histogram (log2(classes) when every class is
equally frequent, 0 when all samples look alike). ``detail`` has the counts, the share of
samples classified with confidence >= ``threshold``, and per sample the predicted class, its
confidence (max softmax probability) and its distance to the nearest of ``reference`` real test images
in the classifier's feature space (``nearest_real_distance``). ``best`` and ``worst`` are the indices
of the samples nearest to and farthest from any real image, so reports can show best and worst
samples: confidence cannot rank them (the classifier calls saturated noise a confident "8"), distance to
real images can (noise is far from every digit). With classifier-free guidance
(``eval.guidance_scale``) it also has the class asked of each sample (``requested``), the share the
classifier agrees with (``agreement``) and that share per requested class (``agreement_per_class``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from coldlab import param
from coldlab.components.metric import Metric, MetricValue, SampleBatch
from coldlab.default_plugins.metrics.classifier import classifier_for


class ClassHistogram(Metric):
    """Histogram, entropy and confidence of the classifier's predictions on generated samples."""

    higher_is_better = True

    source = "samples"

    @dataclasses.dataclass
    class Params:
        threshold: float = param(0.9, "confidence above which a sample counts as confidently classified", min=0, max=1)
        keep: int = param(16, "how many best and worst sample indices to keep", min=0)
        reference: int = param(1000, "real test images the samples' nearest-neighbour distances are measured to (0: all)", min=0, smoke=64)
        epochs: int = param(5, "epochs to train a classifier for datasets without bundled weights", min=1, smoke=1)

    def reset(self, ctx: Any) -> None:
        self.model, self.info = classifier_for(ctx, epochs=self.params.epochs)
        self.num_classes = ctx.num_classes
        self.requested = ctx.requested_labels()  # guided samples: the class asked of each
        self.predicted: list[torch.Tensor] = []
        self.confidence: list[torch.Tensor] = []
        self.nearest: list[torch.Tensor] = []
        images, _ = ctx.test_set()
        n = images.shape[0] if self.params.reference == 0 else min(self.params.reference, images.shape[0])
        device = next(self.model.parameters()).device
        with torch.no_grad():
            chunks = []
            for i in range(0, n, 1000):
                ctx.on_batch()
                chunks.append(self.model.features(images[i : min(n, i + 1000)].to(device).float()))
            self.real = torch.cat(chunks)

    @torch.no_grad()
    def update(self, batch: SampleBatch) -> None:
        features = self.model.features(batch.images.float())
        conf, pred = self.model.head(features).softmax(1).max(1)
        self.predicted.append(pred.cpu())
        self.confidence.append(conf.cpu())
        self.nearest.append(
            torch.cdist(features, self.real, compute_mode="donot_use_mm_for_euclid_dist").min(1).values.cpu()
        )  # exact: 0 for a real image

    def compute(self) -> MetricValue:
        pred, conf, nearest = torch.cat(self.predicted), torch.cat(self.confidence), torch.cat(self.nearest)
        counts = torch.bincount(pred, minlength=self.num_classes)
        share = counts.double() / counts.sum()
        entropy = 0.0 - sum(float(p) * math.log2(float(p)) for p in share if p > 0)
        order = torch.argsort(nearest)  # nearest to a real image first
        keep = min(self.params.keep, len(order))
        agreement = {}
        if self.requested is not None and len(self.requested) == len(pred):
            asked = self.requested.cpu()
            hits = pred == asked
            agreement = {
                "requested": asked.tolist(),
                "agreement": float(hits.double().mean()),
                "agreement_per_class": {str(c): float(hits[asked == c].double().mean()) for c in asked.unique().tolist()},
            }
        return MetricValue(
            entropy,
            {
                **agreement,
                "counts": counts.tolist(),
                "entropy_bits": entropy,
                "max_entropy_bits": math.log2(self.num_classes),
                "confident_share": float((conf >= self.params.threshold).double().mean()),
                "threshold": self.params.threshold,
                "predicted": pred.tolist(),
                "confidence": [round(float(c), 5) for c in conf],
                "nearest_real_distance": [round(float(d), 4) for d in nearest],
                "reference_images": int(self.real.shape[0]),
                "ranking": "distance to the nearest real test image in the classifier's feature space",
                "best": order[:keep].tolist(),
                "worst": order.flip(0)[:keep].tolist(),
                "classifier_sha256": self.info["sha256"],
                "classifier_source": self.info["source"],
            },
        )
