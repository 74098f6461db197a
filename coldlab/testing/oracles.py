"""Networks with known answers: what a sampler must turn back into the original image."""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn


class OracleNetwork(nn.Module):
    """Returns exactly what a perfect network would: the degradation's target for the true ``x``.

    For noise degradations the 'true noise' of any z is the one that explains it given x
    (z = sqrt(ab_t) x + sqrt(1 - ab_t) eps), so the oracle is perfect from any start point.
    ``calls`` records the step t of every call.
    """

    def __init__(self, x: torch.Tensor, degradation: Any) -> None:
        super().__init__()
        self.x, self.degradation = x, degradation
        self.calls: list[int] = []

    def forward(self, z: torch.Tensor, t_frac: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        deg = self.degradation
        t = int(round(float(t_frac[0]) * deg.T))
        self.calls.append(t)
        x = self.x.to(device=z.device, dtype=z.dtype)
        if deg.target == "x0":
            return x
        eps = deg.estimate_noise(z, x, t)
        if deg.target == "eps":
            return cast("torch.Tensor", eps)
        a, b = deg.coefficients(t, z)
        return cast("torch.Tensor", a * eps - b * x)


class ConstantNetwork(nn.Module):
    """Always predicts the same image."""

    def __init__(self, image: torch.Tensor) -> None:
        super().__init__()
        self.image = image

    def forward(self, z: torch.Tensor, t_frac: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.image.to(device=z.device, dtype=z.dtype).expand_as(z).clone()
