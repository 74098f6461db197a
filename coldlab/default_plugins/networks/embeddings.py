"""Time encodings shared by the networks."""

from __future__ import annotations

import math

import torch
from torch import nn


class CnnTimeEncoding(nn.Module):
    """The reports' CNN encoding of t/T: frequencies [0, 2pi*1.5^0, ..., 2pi*1.5^(n-2)],
    features sin(f t) and cos(f t) - 1 (2n values, all zero at t = 0)."""

    frequencies: torch.Tensor

    def __init__(self, frequencies: int = 16) -> None:
        super().__init__()
        freqs = torch.tensor([0.0] + [2 * math.pi * 1.5**i for i in range(frequencies - 1)])
        self.register_buffer("frequencies", freqs)

    @property
    def dim(self) -> int:
        return 2 * self.frequencies.numel()

    def forward(self, t_frac: torch.Tensor) -> torch.Tensor:
        phases = t_frac.reshape(-1, 1) * self.frequencies[None]
        return torch.cat([torch.sin(phases), torch.cos(phases) - 1], dim=1)


class SinusoidalEmbedding(nn.Module):
    """Vaswani et al.'s positional embedding of the step t = t_frac * scale (dim values)."""

    freqs: torch.Tensor

    def __init__(self, dim: int, scale: float = 1000.0) -> None:
        super().__init__()
        if dim < 4 or dim % 2:
            raise ValueError(f"time embedding size must be an even number >= 4, got {dim}")
        half = dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / (half - 1))
        self.register_buffer("freqs", freqs)
        self.scale = scale

    def forward(self, t_frac: torch.Tensor) -> torch.Tensor:
        args = (t_frac.reshape(-1, 1).float() * self.scale) * self.freqs[None]
        return torch.cat([args.sin(), args.cos()], dim=1)


def group_norm(channels: int, groups: int = 32) -> nn.GroupNorm:
    """GroupNorm with the largest group count that divides ``channels`` and is at most ``groups``."""
    return nn.GroupNorm(math.gcd(groups, channels), channels)
