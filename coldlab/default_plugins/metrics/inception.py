"""Inception-v3 for ``fid`` and ``inception-score``, loaded only from local weights.

Where the weights come from, in order: the metric's ``weights`` parameter, the environment
variable ``COLDLAB_INCEPTION_WEIGHTS``, then torch hub's cache
(``<torch hub dir>/checkpoints/weights-inception-2015-12-05-6726825d.pth``, which torchmetrics /
torch-fidelity fill when they run online). When none is there the metric is *unavailable*
(recorded with that reason; the run goes on) unless the metric's ``download = true`` lets
torch-fidelity fetch the file. torch-fidelity itself is a dependency of coldlab; if it is
missing the metric is unavailable too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from coldlab import param
from coldlab.components.metric import Metric, MetricUnavailable, MetricValue, SampleBatch
from coldlab.imaging import to_unit

WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
_HASHES: dict[tuple[str, int, float], str] = {}


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime) within the process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def find_weights(explicit: str = "") -> Path | None:
    """The local Inception weights file, or None. A path that is named but missing is unavailable."""
    named = explicit or os.environ.get("COLDLAB_INCEPTION_WEIGHTS", "")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            source = "weights" if explicit else "COLDLAB_INCEPTION_WEIGHTS"
            raise MetricUnavailable(f"Inception weights not found at {path} (from {source})")
        return path
    cached = Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE
    return cached if cached.is_file() else None


def build_inception_network(features: str, weights: Path | None) -> nn.Module:
    """torchmetrics' Inception-v3 (torch-fidelity's port) returning the ``features`` output.

    Takes uint8 images of shape (N, 3, H, W); resizes to 299 itself. Tests replace this
    function with a tiny stand-in network.
    """
    try:
        import torch_fidelity  # noqa: F401
        from torchmetrics.image.fid import NoTrainInceptionV3
    except ImportError as err:
        raise MetricUnavailable(f"torch-fidelity is not installed ({err}); pip install torch-fidelity") from None
    return NoTrainInceptionV3(name="inception-v3-compat", features_list=[features], feature_extractor_weights_path=str(weights) if weights else None)


class InceptionInput(nn.Module):
    """Maps images in the dataset's value range to what Inception takes (uint8, 3 channels)."""

    def __init__(self, network: nn.Module, value_range: tuple[float, float], num_features: int | None) -> None:
        super().__init__()
        self.network, self.value_range = network, value_range
        num_features = getattr(network, "num_features", num_features)
        if num_features is not None:
            self.num_features = int(num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = to_unit(x.float(), self.value_range).mul(255).round().to(torch.uint8)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return cast("torch.Tensor", self.network(x).reshape(x.shape[0], -1))


def load_inception(ctx: Any, features: str, explicit: str = "", download: bool = False) -> tuple[nn.Module, str, str]:
    """(module, weights path, weights sha256) for Inception ``features`` ("2048", "logits_unbiased", ...)."""
    weights = find_weights(explicit)
    if weights is None and not download:
        raise MetricUnavailable(
            f"no Inception weights offline: set COLDLAB_INCEPTION_WEIGHTS to a local {WEIGHTS_FILE} "
            f"(or put it in {Path(torch.hub.get_dir()) / 'checkpoints'}), or use classifier-fid"
        )
    network = build_inception_network(features, weights)
    if weights is None:  # downloaded by torch-fidelity into the hub cache just now
        weights = Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE
    key = ("inception", features, str(weights))
    if key not in ctx.shared:
        num = int(features) if features.isdigit() else None
        ctx.shared[key] = InceptionInput(network, ctx.value_range, num).to(ctx.device).eval()
    return ctx.shared[key], str(weights), file_sha256(weights) if weights.is_file() else "unknown"


class InceptionScoreMetric(Metric):
    """Inception Score of the generated samples (torchmetrics), mean over splits; std in detail."""

    higher_is_better = True

    source = "samples"

    @dataclasses.dataclass
    class Params:
        splits: int = param(10, "number of splits the samples are scored in", min=1)
        weights: str = param("", "Inception weights file (default: $COLDLAB_INCEPTION_WEIGHTS, then the torch hub cache)")
        download: bool = param(False, "allow torch-fidelity to download the weights when none are found locally")

    def reset(self, ctx: Any) -> None:
        from torchmetrics.image.inception import InceptionScore

        module, self.path, self.sha = load_inception(ctx, "logits_unbiased", self.params.weights, self.params.download)
        with warnings.catch_warnings():  # "will save all extracted features": that is what it is for
            warnings.simplefilter("ignore", UserWarning)
            self.metric = InceptionScore(feature=module, splits=self.params.splits).to(ctx.device)
        self.seed, self.n = ctx.seed, 0

    @torch.no_grad()
    def update(self, batch: SampleBatch) -> None:
        self.metric.update(batch.images)
        self.n += batch.images.shape[0]

    def compute(self) -> MetricValue:
        if self.n < self.params.splits:
            raise MetricUnavailable(f"inception-score needs at least {self.params.splits} samples (splits), got {self.n}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)  # torchmetrics shuffles before splitting
            with warnings.catch_warnings():  # the std of a single split is undefined (None below)
                warnings.simplefilter("ignore", UserWarning)
                mean, std = self.metric.compute()
        return MetricValue(
            float(mean),
            {
                "std": float(std) if self.params.splits > 1 else None,
                "splits": self.params.splits,
                "samples": self.n,
                "extractor": "inception-v3-logits_unbiased",
                "weights": self.path,
                "extractor_sha256": self.sha,
            },
        )
