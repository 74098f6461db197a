"""The resolution ("pixelate") degradation of cold diffusion.

z_t = upsample_nearest(downsample_area(x, (H - d t, W - d t)), (H, W)), t = 0..T with
T = (min(H, W) - final_size) // d. Like coldlab's zoom, T follows from the image size
(:class:`coldlab.SizedDegradation`): the engine calls ``prepare`` with the data's shape before training.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
import torch.nn.functional as F

from coldlab import SizedDegradation, param


class PixelateDegradation(SizedDegradation):
    """Coarser and coarser blocks; the network predicts x0."""

    target = "x0"

    @dataclasses.dataclass
    class Params:
        pixels_per_step: int = param(1, "d: pixels taken off each side length per step", min=1)
        final_size: int = param(4, "the smallest side length, reached at t = T", min=1)
        downsample: Literal["area", "nearest"] = param("area", "how the image is shrunk: block averages or nearest pixels")

        def __post_init__(self) -> None:  # runs when coldlab validates a config, before any training
            if self.pixels_per_step < 1:
                raise ValueError(f"pixels_per_step must be at least 1, got {self.pixels_per_step}")
            if self.final_size < 1:
                raise ValueError(f"final_size must be at least 1, got {self.final_size}")

    def steps_for(self, height: int, width: int) -> int:
        """T = (min(H, W) - final_size) // pixels_per_step."""
        return (min(height, width) - self.params.final_size) // self.params.pixels_per_step

    def size_at(self, t: int, height: int, width: int) -> tuple[int, int]:
        """The resolution of z_t."""
        d = self.params.pixels_per_step
        return height - d * t, width - d * t

    def degrade(self, x: torch.Tensor, t: int | torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        H, W = x.shape[-2:]
        steps = self.steps_of(x, t)
        out = x.clone()
        for step in steps.unique().tolist():
            if step == 0:
                continue
            rows = steps == step
            small = F.interpolate(x[rows], size=self.size_at(step, H, W), mode=self.params.downsample)
            out[rows] = F.interpolate(small, size=(H, W), mode="nearest")
        return out
