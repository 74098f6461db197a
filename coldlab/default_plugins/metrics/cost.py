"""``sampling-cost``: seconds per sample and peak memory of the run's sampler (report 003).

Generates ``samples`` samples in batches of ``batch_size`` after one untimed warm-up batch.
Peak memory is the CUDA allocator's peak (``torch.cuda.max_memory_allocated``) on a GPU, and
on the CPU the process's peak resident set size above its level at the start, polled every
2 ms from /proc (``detail["memory"]`` says which). Compare costs across runs of one machine.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from typing import Any

import torch

from coldlab import param
from coldlab.components.metric import Metric, MetricUnavailable, MetricValue
from coldlab.components.naming import name_of


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _RSSPeak:
    """Polls the resident set size in a thread; ``peak`` is the largest value seen."""

    def __enter__(self) -> _RSSPeak:
        self.start = self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss_bytes())

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


class SamplingCost(Metric):
    """Wall-clock seconds per generated sample and peak memory while sampling."""

    higher_is_better = False

    @dataclasses.dataclass
    class Params:
        samples: int = param(64, "samples to time", min=1, smoke=16)
        batch_size: int = param(0, "batch size (0: the evaluation's chunk, eval.batch_size)", min=0)

    def evaluate(self, ctx: Any) -> MetricValue:
        n = self.params.samples
        batch = self.params.batch_size or ctx.chunk_size()
        cuda = ctx.device.type == "cuda"
        if not cuda and not os.path.exists("/proc/self/statm"):
            raise MetricUnavailable("peak memory on the CPU is measured from /proc, which this system lacks")
        next(iter(ctx.generate(min(batch, n), batch)))  # warm-up (kernels, caches), not timed
        if cuda:
            torch.cuda.synchronize(ctx.device)
            torch.cuda.reset_peak_memory_stats(ctx.device)
            base = torch.cuda.memory_allocated(ctx.device)
        with _RSSPeak() as rss:
            start = time.perf_counter()
            done = sum(images.shape[0] for images in ctx.generate(n, batch))
            if cuda:
                torch.cuda.synchronize(ctx.device)
            seconds = time.perf_counter() - start
        if cuda:
            peak, memory = torch.cuda.max_memory_allocated(ctx.device), "cuda max_memory_allocated"
        else:
            peak, base, memory = rss.peak, rss.start, "process RSS"
        steps = len(ctx.sampler.steps(ctx.degradation.T)) - 1
        return MetricValue(
            seconds / done,
            {
                "seconds": seconds,
                "samples": done,
                "batch_size": batch,
                "steps": steps,
                "peak_memory_bytes": int(peak),
                "peak_memory_above_start_bytes": int(peak - base),
                "memory": memory,
                "device": str(ctx.device),
                "sampler": name_of(ctx.sampler),
            },
        )
