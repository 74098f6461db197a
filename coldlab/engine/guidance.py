"""Classifier-free guidance (Ho & Salimans): one network trained with some labels replaced by a
null label (``train.label_dropout``) is sampled with

    out = out_uncond + w * (out_cond - out_uncond)

where ``out`` is whatever the network predicts: the noise for eps-prediction (DDPM, DDIM — the
usual CFG), v, or the clean image x0. For x0-predicting cold degradations (zoom, blur, morph) the
same combination extrapolates the clean-image estimate away from the unconditional one towards the
requested class; the cold samplers then re-degrade that estimate as usual. w = 0 is unconditional
sampling, w = 1 plain conditional sampling, w > 1 stronger guidance.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn


class GuidedNetwork(nn.Module):
    """Wraps a class-conditional network: ``forward(z, t_frac, y)`` returns the guided output for labels ``y``."""

    def __init__(self, net: nn.Module, scale: float) -> None:
        super().__init__()
        if not getattr(getattr(net, "params", None), "conditional", False):
            raise ValueError("classifier-free guidance needs a class-conditional network (network.conditional = true)")
        self.net, self.scale = net, float(scale)

    def forward(self, z: torch.Tensor, t_frac: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        null_label = int(cast(Any, self.net).null_label)
        null = torch.full((z.shape[0],), null_label, dtype=torch.long, device=z.device)
        if y is None or self.scale == 0:
            return cast("torch.Tensor", self.net(z, t_frac, null))
        cond = self.net(z, t_frac, y)
        if self.scale == 1:
            return cast("torch.Tensor", cond)
        uncond = self.net(z, t_frac, null)
        return cast("torch.Tensor", uncond + self.scale * (cond - uncond))


def sample_labels(n: int, num_classes: int, which: int | str) -> torch.Tensor:
    """Labels of ``n`` samples: all of class ``which``, or balanced over the classes (``"all"``: 0, 1, ..., K-1, 0, ...)."""
    if which == "all":
        return torch.arange(n) % num_classes
    if not isinstance(which, int) or not 0 <= which < num_classes:
        raise ValueError(f"class must be 'all' or an integer in 0..{num_classes - 1}, got {which!r}")
    return torch.full((n,), which, dtype=torch.long)
