"""Cold zoom (report 000): crop the central (H-t)x(W-t) pixels and resize back with NEAREST.

Crops alternate corners: t = 1 drops the top row and left column, t = 2 also the bottom
row and right column, and so on, so the crop's top-left corner is at ceil(t/2).
T = min(H, W) - final_size (24 for 28x28 with the default final_size = 4). The resize
uses PyTorch's nearest rule (src = floor(dst * in/out) in float32), exactly what
``torchvision.transforms.functional.resized_crop(..., InterpolationMode.NEAREST)`` does,
as a batched gather so every image in a batch can have its own t.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import torch

from coldlab import SizedDegradation, as_steps, hookimpl, param
from coldlab.hookspecs import Register


def nearest_indices(out_size: int, crop: int, offset: int) -> torch.Tensor:
    """Source indices of a nearest resize of ``crop`` pixels starting at ``offset`` to ``out_size``."""
    if crop == out_size:
        return torch.arange(out_size) + offset
    scale = torch.tensor(crop, dtype=torch.float32) / out_size
    src = (torch.arange(out_size, dtype=torch.float32) * scale).floor().long().clamp(max=crop - 1)
    return src + offset


class ZoomDegradation(SizedDegradation):
    """Deterministic zoom into the centre; the network predicts x0."""

    target = "x0"

    @dataclasses.dataclass
    class Params:
        final_size: int = param(4, "side of the central block left at t = T", min=1)

    def __init__(self, params: Any) -> None:
        super().__init__(params)
        if params.final_size < 1:
            raise ValueError("final_size must be at least 1")
        self._tables: dict[tuple[int, int, Any], tuple[torch.Tensor, torch.Tensor, int]] = {}

    def steps_for(self, height: int, width: int) -> int:
        """T = min(H, W) - final_size."""
        return cast("int", min(height, width) - self.params.final_size)

    def _table(self, height: int, width: int, device: Any) -> tuple[torch.Tensor, torch.Tensor, int]:
        key = (height, width, device)
        if key not in self._tables:
            T = self.steps_for(height, width)
            rows = torch.stack([nearest_indices(height, height - t, (t + 1) // 2) for t in range(T + 1)])
            cols = torch.stack([nearest_indices(width, width - t, (t + 1) // 2) for t in range(T + 1)])
            with torch.inference_mode(False):  # made while sampling, still usable when training resumes
                self._tables[key] = (rows.to(device), cols.to(device), T)
        return self._tables[key]

    def degrade(self, x: torch.Tensor, t: int | torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        B, C, H, W = x.shape
        if self._T is None:
            self.set_image_size(H, W)
        rows, cols, T = self._table(H, W, x.device)
        steps = as_steps(t, B, x.device)
        if (steps < 0).any() or (steps > T).any():
            raise ValueError(f"zoom steps must lie in 0..{T}")
        r = rows[steps][:, None, :, None].expand(B, C, H, W)
        c = cols[steps][:, None, None, :].expand(B, C, H, W)
        return x.gather(2, r).gather(3, c)


@hookimpl
def register_degradations(register: Register) -> None:
    register("zoom", ZoomDegradation)
