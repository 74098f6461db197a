"""The Gaussian-mask (inpainting) degradation of cold diffusion.

z_t = fill + (x - fill) * M_t with M_t = prod_{i=1..t} (1 - exp(-r^2 / (2 beta_i))), r the distance
(in pixels) of a pixel from the mask centre and beta_i = beta_start + (i - 1) * beta_step the
variance of step i's Gaussian. M_0 = 1, so D(x, 0) = x; the hole grows from the centre.
The centre is fixed (a parameter), which keeps D deterministic, as the cold samplers need.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from coldlab import Degradation, DeviceCache, as_steps, param


def mask_table(T: int, height: int, width: int, centre: tuple[float, float], beta_start: float, beta_step: float) -> torch.Tensor:
    """M_t for t = 0..T as a float64 tensor of shape (T + 1, height, width)."""
    cy, cx = centre[0] * (height - 1), centre[1] * (width - 1)
    yy, xx = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij")
    r2 = (yy - cy) ** 2 + (xx - cx) ** 2
    beta = beta_start + beta_step * torch.arange(T, dtype=torch.float64)
    factors = 1 - torch.exp(-r2[None] / (2 * beta[:, None, None]))
    return torch.cat([torch.ones(1, height, width, dtype=torch.float64), torch.cumprod(factors, 0)])


class GaussianMaskDegradation(Degradation):
    """A growing Gaussian hole fading pixels to ``fill``; the network predicts x0."""

    target = "x0"

    @dataclasses.dataclass
    class Params:
        T: int = param(50, "number of steps", min=1)
        beta_start: float = param(1.0, "variance (pixels^2) of the first step's Gaussian", gt=0)
        beta_step: float = param(0.1, "how much the variance grows per step", min=0)
        centre_y: float = param(0.5, "mask centre, as a fraction of the height (0 top, 1 bottom)", min=0, max=1)
        centre_x: float = param(0.5, "mask centre, as a fraction of the width (0 left, 1 right)", min=0, max=1)
        fill: float = param(0.0, "the value masked pixels fade to (0: mid-grey for coldlab's value ranges)")

    def __init__(self, params: Any) -> None:
        super().__init__(params)
        self._tables: dict[tuple[int, int], DeviceCache] = {}

    @property
    def T(self) -> int:
        return self.params.T

    def masks(self, height: int, width: int) -> DeviceCache:
        """M_0..M_T for this image size (computed once, copied once per device and dtype)."""
        key = (height, width)
        if key not in self._tables:
            p = self.params
            self._tables[key] = DeviceCache(mask_table(p.T, height, width, (p.centre_y, p.centre_x), p.beta_start, p.beta_step))
        return self._tables[key]

    def degrade(self, x: torch.Tensor, t: int | torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        B, _, H, W = x.shape
        steps = as_steps(t, B, x.device)
        if (steps < 0).any() or (steps > self.T).any():
            raise ValueError(f"gaussian-mask steps must lie in 0..{self.T}")
        m = self.masks(H, W).like(x)[steps][:, None]
        return x - (x - self.params.fill) * (1 - m)  # = fill + (x - fill) M_t, and exactly x where M_t = 1
