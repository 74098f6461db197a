"""The cold-diffusion ConvNeXt UNet (Bansal et al.; reports 002 and 004)."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from coldlab import Network, param
from coldlab.default_plugins.networks.embeddings import SinusoidalEmbedding


class ConvNextBlock(nn.Module):
    """Depthwise 7x7 (+ time MLP) -> GroupNorm(1) -> conv expand -> GELU -> conv back, plus a residual."""

    def __init__(self, dim: int, dim_out: int, time_dim: int, expansion: int, pointwise_kernel: int, norm: bool = True):
        super().__init__()
        self.mlp = nn.Sequential(nn.GELU(), nn.Linear(time_dim, dim))
        self.depthwise = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        pad = pointwise_kernel // 2
        self.net = nn.Sequential(
            nn.GroupNorm(1, dim) if norm else nn.Identity(),
            nn.Conv2d(dim, dim_out * expansion, pointwise_kernel, padding=pad),
            nn.GELU(),
            nn.Conv2d(dim_out * expansion, dim_out, pointwise_kernel, padding=pad),
        )
        self.residual = nn.Conv2d(dim, dim_out, 1) if dim != dim_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.depthwise(x) + self.mlp(emb)[:, :, None, None]
        return cast("torch.Tensor", self.net(h) + self.residual(x))


class LinearAttention(nn.Module):
    """Pre-normed linear attention with a residual (as in Bansal et al.'s UNet)."""

    def __init__(self, dim: int, heads: int = 4, head_dim: int = 32):
        super().__init__()
        self.heads, self.scale = heads, head_dim**-0.5
        hidden = heads * head_dim
        self.norm = nn.GroupNorm(1, dim)
        self.qkv = nn.Conv2d(dim, hidden * 3, 1, bias=False)
        self.out = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, H, W = x.shape
        q, k, v = (t.reshape(B, self.heads, -1, H * W) for t in self.qkv(self.norm(x)).chunk(3, dim=1))
        q = q.softmax(dim=-2) * self.scale
        k = k.softmax(dim=-1)
        context = torch.einsum("bhdn,bhen->bhde", k, v)
        out = torch.einsum("bhde,bhdn->bhen", context, q).reshape(B, -1, H, W)
        return cast("torch.Tensor", x + self.out(out))


class ConvNextUNet(Network):
    """UNet of ConvNeXt blocks: ``base_channels`` times ``channel_mults`` per level, a
    downsampling between levels (2 for the default [1, 2, 4]: 28 -> 14 -> 7), skip
    connections, a sinusoidal time embedding through an MLP into every block.
    Report 004 uses ``pointwise_kernel = 3`` instead of ConvNeXt's 1."""

    @dataclasses.dataclass
    class Params:
        base_channels: int = param(32, "channels of the first level", min=1)
        channel_mults: list[int] = param([1, 2, 4], "channel multiplier of each level", min=1)
        expansion: int = param(4, "ConvNeXt expansion factor of the pointwise convolutions", min=1)
        pointwise_kernel: int = param(1, "kernel of the 'pointwise' convolutions (004: 3)", min=1)
        attention: bool = param(True, "linear attention in every level")
        conditional: bool = param(False, "take a class label (with a null label for guidance)")

    def __init__(self, params: Any, shape: tuple[int, int, int] = (1, 28, 28), num_classes: int = 0) -> None:
        super().__init__(params, shape, num_classes)
        C = self.shape[0]
        dim = params.base_channels
        dims = [C] + [dim * m for m in params.channel_mults]
        pairs = list(itertools.pairwise(dims))
        tdim = dim
        self.time_mlp = nn.Sequential(SinusoidalEmbedding(dim), nn.Linear(dim, dim * 4), nn.GELU(), nn.Linear(dim * 4, tdim))
        self.labels = self.label_embedding(tdim)

        def block(a: int, b: int, norm: bool = True) -> nn.Module:
            return ConvNextBlock(a, b, tdim, params.expansion, params.pointwise_kernel, norm)

        def attn(d: int) -> nn.Module:
            return LinearAttention(d) if params.attention else nn.Identity()

        self.downs = nn.ModuleList()
        for i, (a, b) in enumerate(pairs):
            last = i == len(pairs) - 1
            self.downs.append(
                nn.ModuleList([block(a, b, norm=i != 0), block(b, b), attn(b), nn.Conv2d(b, b, 4, 2, 1) if not last else nn.Identity()])
            )
        mid = dims[-1]
        self.mid1, self.mid_attn, self.mid2 = block(mid, mid), attn(mid), block(mid, mid)
        self.ups = nn.ModuleList()
        for a, b in reversed(pairs[1:]):
            self.ups.append(nn.ModuleList([block(b * 2, a), block(a, a), attn(a), nn.ConvTranspose2d(a, a, 4, 2, 1)]))
        self.final = block(dim, dim)
        self.out = nn.Conv2d(dim, C, 1)

    def forward(self, z: torch.Tensor, t_frac: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.time_mlp(t_frac)
        label = self.embed_labels(self.labels, y, z.shape[0], z.device)
        if label is not None:
            emb = emb + label
        h, skips = z, []
        for level in self.downs:
            block1, block2, attn, down = list(cast(nn.ModuleList, level))
            h = attn(block2(block1(h, emb), emb))
            skips.append(h)
            h = down(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        # As in Bansal et al.: the deepest skip meets the middle, the first level's is unused.
        for level in self.ups:
            block1, block2, attn, up = list(cast(nn.ModuleList, level))
            skip = skips.pop()
            if h.shape[-2:] != skip.shape[-2:]:
                h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = attn(block2(block1(torch.cat([h, skip], 1), emb), emb))
            h = up(h)
        if h.shape[-2:] != z.shape[-2:]:
            h = F.interpolate(h, size=z.shape[-2:], mode="nearest")
        return cast("torch.Tensor", self.out(self.final(h, emb)))
