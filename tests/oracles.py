"""Networks with known answers, for sampler tests."""

from __future__ import annotations

import torch
from torch import nn


class OracleNetwork(nn.Module):
    """Returns exactly what a perfect network would: the degradation's target for the true x.

    For noise degradations the 'true noise' of any z is the one that explains it given x
    (z = sqrt(ab_t) x + sqrt(1 - ab_t) eps), so the oracle is perfect from any start point.
    """

    def __init__(self, x: torch.Tensor, degradation) -> None:
        super().__init__()
        self.x, self.degradation = x, degradation
        self.calls: list[int] = []

    def forward(self, z, t_frac, y=None):
        deg = self.degradation
        t = int(round(float(t_frac[0]) * deg.T))
        self.calls.append(t)
        x = self.x.to(z.dtype)
        if deg.target == "x0":
            return x
        eps = deg.estimate_noise(z, x, t)
        if deg.target == "eps":
            return eps
        a, b = deg.coefficients(t, z)
        return a * eps - b * x


class ConstantNetwork(nn.Module):
    """Always predicts the same image."""

    def __init__(self, image: torch.Tensor) -> None:
        super().__init__()
        self.image = image

    def forward(self, z, t_frac, y=None):
        return self.image.expand_as(z).clone()
