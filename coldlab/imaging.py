"""Image arithmetic shared by the engine, the metrics and the report: the one mapping from a dataset's
value range to [0, 1], per-image PSNR, and PNG grids."""

from __future__ import annotations

import math
from pathlib import Path

import torch


def to_unit(images: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
    """Images mapped from ``value_range`` (the dataset's) to [0, 1], clamped: what is saved and shown."""
    lo, hi = value_range
    return ((images - lo) / (hi - lo)).clamp(0, 1)


def psnr(reconstructions: torch.Tensor, originals: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio (dB) of each image, both in [0, 1] (data range 1): a tensor of N values."""
    from torchmetrics.functional.image import peak_signal_noise_ratio  # slow to import: only when used

    out: torch.Tensor = peak_signal_noise_ratio(reconstructions, originals, data_range=1.0, reduction="none", dim=(1, 2, 3))
    return out


def save_grid(images: torch.Tensor, path: Path, value_range: tuple[float, float], nrow: int | None = None) -> Path:
    """Images (in ``value_range``) as a PNG grid, ``nrow`` per row (default: a square)."""
    nrow = nrow or max(1, int(math.sqrt(images.shape[0])))
    from torchvision.utils import save_image

    save_image(to_unit(images.float().cpu(), value_range), path, nrow=nrow)
    return path
