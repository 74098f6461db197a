"""The reports' provided CNN (000, 002, 004)."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import torch
from torch import nn

from coldlab import Network, param
from coldlab.default_plugins.networks.embeddings import CnnTimeEncoding


class CNN(Network):
    """Blocks of Conv k x k (padding k//2) -> LayerNorm over (C, H, W) -> GELU with channels
    ``channels``, then a last Conv back to the input channels. The time features of t/T
    (:class:`CnnTimeEncoding`) pass through an MLP (hidden sizes ``time_hidden``, GELU) to
    ``channels[0]`` values that are added to the first block's output, broadcast over space.
    With ``conditional = true`` a label embedding is added there too."""

    @dataclasses.dataclass
    class Params:
        channels: list[int] = param([16, 32, 32, 16], "output channels of each Conv-LayerNorm-GELU block", min=1)
        kernel_size: int = param(7, "kernel of the blocks' convolutions", min=1)
        last_kernel_size: int = param(3, "kernel of the last convolution", min=1)
        time_frequencies: int = param(16, "number of sinusoidal frequencies of t/T", min=1)
        time_hidden: list[int] = param([128, 128], "hidden layer sizes of the time MLP", min=1)
        conditional: bool = param(False, "take a class label (with a null label for guidance)")

    def __init__(self, params: Any, shape: tuple[int, int, int] = (1, 28, 28), num_classes: int = 0) -> None:
        super().__init__(params, shape, num_classes)
        C, H, W = self.shape
        if not params.channels:
            raise ValueError("cnn needs at least one block in 'channels'")
        self.blocks = nn.ModuleList()
        last = C
        for ch in params.channels:
            self.blocks.append(
                nn.Sequential(
                    nn.Conv2d(last, ch, params.kernel_size, padding=params.kernel_size // 2),
                    nn.LayerNorm((ch, H, W)),
                    nn.GELU(),
                )
            )
            last = ch
        self.out = nn.Conv2d(last, C, params.last_kernel_size, padding=params.last_kernel_size // 2)
        self.time_encoding = CnnTimeEncoding(params.time_frequencies)
        layers: list[nn.Module] = []
        width = self.time_encoding.dim
        for hidden in params.time_hidden:
            layers += [nn.Linear(width, hidden), nn.GELU()]
            width = hidden
        layers.append(nn.Linear(width, params.channels[0]))
        self.time_mlp = nn.Sequential(*layers)
        self.labels = self.label_embedding(params.channels[0])

    def forward(self, z: torch.Tensor, t_frac: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.blocks[0](z)
        cond = self.time_mlp(self.time_encoding(t_frac))
        label = self.embed_labels(self.labels, y, z.shape[0], z.device)
        if label is not None:
            cond = cond + label
        h = h + cond[:, :, None, None]
        for block in self.blocks[1:]:
            h = block(h)
        return cast("torch.Tensor", self.out(h))
