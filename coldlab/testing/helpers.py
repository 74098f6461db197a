"""Small building blocks for plugin tests: a hermetic registry, synthetic images, devices."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import torch

from coldlab.components.dataset import DataContext
from coldlab.plugins import PluginHost, Registry, get_registry


def registry_with(*plugins: ModuleType | Any) -> Registry:
    """A registry of the built-ins plus ``plugins`` (modules or objects with hook functions),
    without entry points, so a plugin's tests do not depend on what else is installed.

    Raises ``AssertionError`` with the host's message if one of ``plugins`` failed to load.
    With no ``plugins``: the process-wide registry (built-ins and installed packages).
    """
    if not plugins:
        return get_registry()
    host = PluginHost(plugins, entry_points=False)
    names = {getattr(p, "__name__", None) for p in plugins}
    broken = [f"{p.name}: {p.error}" for p in host.registry.plugins if p.error and p.name in names]
    if broken:
        raise AssertionError("plugin failed to load: " + "; ".join(broken))
    return host.registry


def synthetic_images(
    n: int = 4,
    shape: tuple[int, int, int] = (1, 16, 16),
    *,
    seed: int = 0,
    value_range: tuple[float, float] = (-0.5, 0.5),
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """``n`` smooth, structured images (random low-frequency waves plus a bright blob) in ``value_range``.

    Not constant and not white noise, so blurs, zooms and masks visibly act on them.
    """
    g = torch.Generator().manual_seed(seed)
    c, h, w = shape
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h, dtype=torch.float64), torch.linspace(0, 1, w, dtype=torch.float64), indexing="ij")
    out = torch.empty((n, c, h, w), dtype=torch.float64)
    for i in range(n):
        for ch in range(c):
            fx, fy, phase = (torch.rand(3, generator=g, dtype=torch.float64) * torch.tensor([3.0, 3.0, 2 * math.pi])).tolist()
            cx, cy = torch.rand(2, generator=g, dtype=torch.float64).tolist()
            wave = torch.sin(2 * math.pi * (fx * xx + fy * yy) + phase)
            blob = torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.02)
            out[i, ch] = 0.5 * wave + blob
    lo, hi = value_range
    flat = out.view(n, -1)
    unit = (flat - flat.min(1, keepdim=True).values) / (flat.max(1, keepdim=True).values - flat.min(1, keepdim=True).values)
    return (lo + (hi - lo) * unit).view(n, c, h, w).to(dtype)


def data_context(shape: tuple[int, int, int] = (1, 16, 16), *, n: int = 32, seed: int = 1) -> DataContext:
    """A :class:`coldlab.DataContext` whose every dataset is :func:`synthetic_images` of ``shape``
    (what ``prepare`` of a degradation may load, e.g. morph's target images)."""

    def load(name: Any, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        images = synthetic_images(n, shape, seed=seed + (split == "test"), dtype=torch.float32)
        return images, torch.arange(n) % 2

    return DataContext(shape=tuple(shape), load=load, value_range=(-0.5, 0.5))


def accelerators() -> list[str]:
    """The non-CPU devices of this machine that a device-move check can use (CUDA, MPS)."""
    found = [f"cuda:{i}" for i in range(torch.cuda.device_count())][:1]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found
