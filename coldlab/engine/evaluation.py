"""Evaluation: run a run's metric plugins against one set of weights.

The :class:`RunEvaluation` (the engine's :class:`coldlab.EvalContext`) generates what metrics consume once per evaluation and shares it:
``eval.samples`` unconditional samples from the prior's fixed start points (seed
``eval.seed``, so two evaluations of the same weights give the same numbers), and
conditional reconstructions of the test set for each requested step t. Samples are drawn in lockstep
and the network called on chunks (:mod:`coldlab.engine.batching`), so the numbers do not depend on
``eval.batch_size`` (``"auto"``: sized to the device's free memory). It also keeps a
disk cache (``HOME/cache``) for statistics of real images and for trained classifiers, so
a second run never recomputes them.

A metric that raises :class:`MetricUnavailable` is recorded with ``value = None`` and
``detail = {"unavailable": reason}``; every other error propagates (nothing is hidden).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import torch

from coldlab.components.metric import Metric, MetricUnavailable, ReconstructionBatch, SampleBatch
from coldlab.engine.batching import GROUP, HOST_CHUNK, ChunkedNetwork, auto_chunk
from coldlab.engine.data import load_dataset
from coldlab.errors import ColdlabError
from coldlab.files import load_tensors, save_atomic
from coldlab.imaging import to_unit
from coldlab.plugins import Registry


def spec_key(data: Any) -> str:
    """A short stable hash of JSON-able data (cache keys)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:20]


@dataclasses.dataclass
class MetricResult:
    """What an evaluation records for one metric."""

    name: str
    spec: dict[str, Any]
    value: float | None
    detail: dict[str, Any]
    unavailable: str | None
    seconds: float

    def row_detail(self) -> dict[str, Any]:
        detail = dict(self.detail)
        if self.unavailable is not None:
            detail["unavailable"] = self.unavailable
        detail["params"] = {k: v for k, v in self.spec.items() if k != "name"}
        return detail


class RunEvaluation:
    """The engine's :class:`coldlab.EvalContext`: one evaluation of a run's weights (its components,
    data and caches)."""

    def __init__(
        self,
        *,
        registry: Registry,
        dataset_spec: dict[str, Any],
        net: torch.nn.Module,
        degradation: Any,
        sampler: Any,
        prior: Any,
        shape: tuple[int, int, int],
        num_classes: int,
        value_range: tuple[float, float],
        device: torch.device | str,
        samples: int,
        batch_size: int | str,
        seed: int,
        cache_dir: Path,
        train_images: torch.Tensor | None = None,
        train_labels: torch.Tensor | None = None,
        train_loss: str = "mse",
        on_batch: Callable[[], None] | None = None,
        guidance_scale: float | None = None,
        sample_class: int | str = "all",
        codec: Any = None,
        cuda_graphs: bool = False,
    ) -> None:
        self.registry, self.dataset_spec = registry, dataset_spec
        self.net, self.degradation, self.sampler, self.prior = net, degradation, sampler, prior
        self.shape, self.num_classes = tuple(shape), num_classes
        self.value_range: tuple[float, float] = (float(value_range[0]), float(value_range[1]))
        self.device = torch.device(device)
        self.n_samples, self.seed = int(samples), int(seed)
        # the network's chunk when sampling ("auto": sized on first use); metrics batch their own work by
        # ``batch_size`` (the chunk when one is given, else HOST_CHUNK: a feature extractor's memory is its own)
        self.requested_batch: int | str = batch_size if batch_size == "auto" else max(1, int(batch_size))
        self.batch_size = HOST_CHUNK if batch_size == "auto" else max(1, int(batch_size))
        self.chunk: int | None = None
        self.cuda_graphs = cuda_graphs
        self.cache_dir = Path(cache_dir)
        self.train_images, self.train_labels = train_images, train_labels
        self.train_loss = train_loss
        self.conditional = bool(getattr(getattr(net, "params", None), "conditional", False))
        self.on_batch = on_batch or (lambda: None)
        self._samples: torch.Tensor | None = None
        self._requested: torch.Tensor | None = None
        self._reconstructions: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self.shared: dict[str, Any] = {}  # per-evaluation objects metrics share (the classifier)
        self.sampling_seconds = 0.0
        # classifier-free guidance: None samples without labels (a conditional network sees its null label)
        self.guidance_scale, self.sample_class = guidance_scale, sample_class
        # latent diffusion: the network works on codec.encode(images); samples and reconstructions are
        # decoded before any metric sees them (``shape`` stays the image shape)
        self.codec = codec
        self.sample_shape = tuple(codec.latent_shape) if codec is not None else self.shape

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images as the network sees them: their latents in a latent diffusion run, else themselves."""
        return self.codec.encode(images) if self.codec is not None else images

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """What the network works on, back as images (the identity outside latent diffusion)."""
        return self.codec.decode(z) if self.codec is not None else z

    # ---- data --------------------------------------------------------------------------
    def test_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The dataset's test split (CPU tensors, cached per process)."""
        return load_dataset(self.registry, self.dataset_spec, "test")

    def train_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.train_images is not None and self.train_labels is not None:
            return self.train_images, self.train_labels
        return load_dataset(self.registry, self.dataset_spec, "train")

    def network_output(self, z: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The network's output for z_t at steps t (``y``: labels; None, or ignored, for an unconditional network)."""
        t_frac = t.to(z.dtype) / self.degradation.T
        out: torch.Tensor = self.net(z, t_frac, y)
        return out

    def to_unit(self, images: torch.Tensor) -> torch.Tensor:
        """Images mapped from the dataset's value range to [0, 1], clamped."""
        return to_unit(images, self.value_range)

    def generator(self, offset: int = 0) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(self.seed + offset)

    # ---- generation --------------------------------------------------------------------
    def chunk_size(self) -> int:
        """Samples per network call when sampling: ``eval.batch_size``, or for ``"auto"`` what the device's
        free memory holds (measured once per evaluation; see :func:`coldlab.engine.batching.auto_chunk`)."""
        if self.chunk is None:
            if self.requested_batch == "auto":
                guided = self.guidance_scale is not None and self.guidance_scale not in (0, 1)
                per_call = 2 if guided else 1  # guidance runs the network twice on each chunk
                chunk = auto_chunk(self.net, self.sample_shape, self.device, labels=self.conditional, cap=max(self.n_samples, 1))
                self.chunk = max(1, chunk // per_call)
            else:
                self.chunk = int(self.requested_batch)
        return self.chunk

    def chunked(self, net: torch.nn.Module, size: int | None = None) -> torch.nn.Module:
        """``net`` called on chunks of ``size`` (default :meth:`chunk_size`) samples, a step of progress after each."""
        return ChunkedNetwork(net, size or self.chunk_size(), self.on_batch, graphs=self.cuda_graphs)

    @torch.no_grad()
    def generate(self, n: int, batch_size: int | None = None) -> Iterator[torch.Tensor]:
        """``n`` unconditional samples from fixed start points (seed ``eval.seed``), yielded in batches of
        ``batch_size`` (default :meth:`chunk_size`, which is also the network's chunk). Up to
        :data:`~coldlab.engine.batching.GROUP` samples are drawn in lockstep, so the samples do not depend on
        the batch size."""
        chunk = batch_size or self.chunk_size()
        start_gen = torch.Generator().manual_seed(self.seed)
        step_gen = self.generator(1)
        self.net.eval()
        net, labels = self.net, None
        if self.guidance_scale is not None:
            from coldlab.engine.guidance import GuidedNetwork, sample_labels

            net, labels = GuidedNetwork(self.net, self.guidance_scale), sample_labels(n, self.num_classes, self.sample_class)
        for g in range(0, n, GROUP):
            b = min(GROUP, n - g)
            z = self.prior.sample(b, self.sample_shape, generator=start_gen).to(self.device)
            y = None if labels is None else labels[g : g + b].to(self.device)
            images = self.decode(self.sampler.sample(self.chunked(net, chunk), self.degradation, z, y=y, generator=step_gen).images)
            for i in range(0, b, chunk):
                yield images[i : i + chunk]

    def requested_labels(self) -> torch.Tensor | None:
        """The class asked of each of the ``eval.samples`` generated samples (on ``device``), or None
        without guidance (known before the samples are generated)."""
        if self._requested is not None:
            return self._requested
        if self.guidance_scale is None:
            return None
        from coldlab.engine.guidance import sample_labels

        return sample_labels(self.n_samples, self.num_classes, self.sample_class).to(self.device)

    @property
    def has_samples(self) -> bool:
        """Whether this evaluation generated its samples."""
        return self._samples is not None

    def clamp(self, images: torch.Tensor) -> torch.Tensor:
        """Images clamped to the dataset's value range, as they would be saved and shown."""
        lo, hi = self.value_range
        return images.clamp(lo, hi)

    def use_samples(self, images: torch.Tensor, requested: torch.Tensor | None = None) -> None:
        """Evaluate these images instead of generating samples (images made elsewhere; tests);
        ``requested``: the class each was asked to be, if any."""
        self._samples = self.clamp(images.to(self.device))
        self._requested = None if requested is None else requested.to(self.device)

    def samples(self) -> torch.Tensor:
        """The evaluation's ``eval.samples`` generated samples (made once, shared by every metric),
        clamped to the dataset's value range: metrics see what a saved image would show, so one
        diverged pixel of an undertrained network cannot blow a feature-space distance up."""
        if self._samples is None:
            start = time.perf_counter()
            self._samples = self.clamp(torch.cat(list(self.generate(self.n_samples))))
            self.sampling_seconds += time.perf_counter() - start
        return self._samples

    @torch.no_grad()
    def reconstructions(self, t: int, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(originals, reconstructions, labels) of the first ``n`` test images (0: all) degraded to
        step ``t`` with fixed noise and sampled back from ``t`` by the run's sampler (in a latent run:
        their latents degraded and sampled back, then decoded)."""
        if not 1 <= t <= self.degradation.T:
            raise ColdlabError(
                f"reconstruction step {t} is outside 1..{self.degradation.T}",
                hint="choose t (or levels) within the degradation's steps",
                where=("eval", "metrics"),
            )
        images, labels = self.test_set()
        n = images.shape[0] if n <= 0 else min(n, images.shape[0])
        key = (t, n)
        if key not in self._reconstructions:
            noise_gen, step_gen = self.generator(2), self.generator(3)
            outs = []
            self.net.eval()
            net = self.chunked(self.net)
            for g in range(0, n, GROUP):  # each group degraded and sampled back in lockstep
                x = images[g : min(n, g + GROUP)].to(self.device)
                y = labels[g : g + x.shape[0]].to(self.device) if self.conditional else None
                x0 = self.encode(x)
                z = self.degradation.degrade(x0, t, self.degradation.sample_noise(x0, noise_gen))
                outs.append(self.decode(self.sampler.sample(net, self.degradation, z, t_start=t, y=y, generator=step_gen).images))
            self._reconstructions[key] = (images[:n].to(self.device), torch.cat(outs), labels[:n].to(self.device))
        return self._reconstructions[key]

    def batches(self, source: str, metric: Metric) -> Iterator[SampleBatch | ReconstructionBatch]:
        """The inputs of a metric with ``source`` ``"samples"`` or ``"reconstructions"``, in batches; each batch
        is a step of progress (``on_batch``), so a cancel reaches a metric pass between batches."""
        if source == "samples":
            samples = self.samples()
            for i in range(0, samples.shape[0], self.batch_size):
                self.on_batch()
                yield SampleBatch(samples[i : i + self.batch_size])
        elif source == "reconstructions":
            for t in metric.reconstruction_steps(self.degradation.T):
                originals, recon, labels = self.reconstructions(t, metric.reconstruction_images())
                for i in range(0, originals.shape[0], self.batch_size):
                    self.on_batch()
                    sl = slice(i, i + self.batch_size)
                    yield ReconstructionBatch(t, originals[sl], recon[sl], labels[sl])
        else:
            raise ValueError(f"unknown metric source {source!r}")

    # ---- disk cache --------------------------------------------------------------------
    def cached(self, kind: str, key: dict[str, Any], compute: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """``compute()`` once per (kind, key) on this machine; later calls load it from ``HOME/cache``."""
        path = self.cache_dir / kind / f"{spec_key(key)}.pt"
        if path.exists():
            return cast("dict[str, torch.Tensor]", load_tensors(path))
        value = compute()
        save_atomic({k: v.detach().cpu() for k, v in value.items()}, path)
        return value


def evaluate(ctx: RunEvaluation, metrics: list[tuple[dict[str, Any], Metric]]) -> list[MetricResult]:
    """Evaluate each (resolved spec, metric) in order; unavailable metrics are recorded as such."""
    results = []
    for spec, metric in metrics:
        ctx.on_batch()  # a cancel between metrics stops here
        start = time.perf_counter()
        try:
            out = metric.evaluate(ctx)
            value = None if out.value is None else float(out.value)
            result = MetricResult(spec["name"], spec, value, out.detail, None, 0.0)
        except MetricUnavailable as why:
            result = MetricResult(spec["name"], spec, None, {}, str(why), 0.0)
        result.seconds = time.perf_counter() - start
        results.append(result)
    return results


def build_metrics(registry: Registry, specs: list[Any]) -> list[tuple[dict[str, Any], Metric]]:
    """Resolve and build the metric plugins named in ``eval.metrics``."""
    built = []
    for spec in specs:
        full = registry.resolve("metric", spec)
        built.append((full, registry.build("metric", full)))
    return built


def save_samples(samples: torch.Tensor, ctx: RunEvaluation, path: Path) -> Path:
    """Generated samples as uint8 in [0, 255] (what reports show as best and worst samples)."""
    return save_atomic((ctx.to_unit(samples.float()) * 255).round().to(torch.uint8).cpu(), path)


def eval_settings(metrics: list[dict[str, Any]], ctx: RunEvaluation, weights: str, **extra: Any) -> dict[str, Any]:
    """What an evaluation was computed from (stored with it)."""
    guidance = {} if ctx.guidance_scale is None else {"guidance_scale": ctx.guidance_scale, "class": ctx.sample_class}
    return {
        "samples": ctx.n_samples,
        "batch_size": ctx.requested_batch,
        "chunk": ctx.chunk,
        "seed": ctx.seed,
        "weights": weights,
        "metrics": list(metrics),
        "device": str(ctx.device),
        **guidance,
        **extra,
    }
