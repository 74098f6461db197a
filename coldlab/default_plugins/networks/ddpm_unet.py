"""Ho et al.'s DDPM UNet (report 003 on CIFAR-10)."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from coldlab import Network, param
from coldlab.default_plugins.networks.embeddings import SinusoidalEmbedding, group_norm


class ResBlock(nn.Module):
    """GroupNorm -> SiLU -> conv, + time embedding, GroupNorm -> SiLU -> dropout -> conv, plus skip."""

    def __init__(self, dim: int, dim_out: int, tdim: int, dropout: float, groups: int):
        super().__init__()
        self.in_layers = nn.Sequential(group_norm(dim, groups), nn.SiLU(), nn.Conv2d(dim, dim_out, 3, padding=1))
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(tdim, dim_out))
        self.out_layers = nn.Sequential(group_norm(dim_out, groups), nn.SiLU(), nn.Dropout(dropout), nn.Conv2d(dim_out, dim_out, 3, padding=1))
        self.skip = nn.Conv2d(dim, dim_out, 1) if dim != dim_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x) + self.emb(emb)[:, :, None, None]
        return cast("torch.Tensor", self.skip(x) + self.out_layers(h))


class SelfAttention(nn.Module):
    """Single-head self-attention over pixels with a residual."""

    def __init__(self, dim: int, groups: int):
        super().__init__()
        self.norm = group_norm(dim, groups)
        self.qkv = nn.Conv2d(dim, dim * 3, 1)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, C, H * W).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(1, 2)[:, None], k.transpose(1, 2)[:, None], v.transpose(1, 2)[:, None])
        return cast("torch.Tensor", x + self.proj(out[:, 0].transpose(1, 2).reshape(B, C, H, W)))


class DDPMUNet(Network):
    """Ho et al.'s UNet: ``res_blocks`` ResBlocks per level at ``base_channels`` x
    ``channel_mults``, self-attention at the levels in ``attention_levels`` (0 = full
    resolution), dropout, downsampling by strided convolution and upsampling by nearest
    + conv. Report 003: base 64 (128 for larger), mults [1, 2, 4, 4], 3 res blocks."""

    @dataclasses.dataclass
    class Params:
        base_channels: int = param(64, "channels of the first level", min=1)
        channel_mults: list[int] = param([1, 2, 4, 4], "channel multiplier of each level", min=1)
        res_blocks: int = param(3, "ResBlocks per level", min=1)
        attention_levels: list[int] = param([1], "levels (0 = full resolution) with self-attention", min=0)
        dropout: float = param(0.1, "dropout inside the ResBlocks", min=0, lt=1)
        norm_groups: int = param(32, "GroupNorm groups (reduced to a divisor of the channels)", min=1)
        conditional: bool = param(False, "take a class label (with a null label for guidance)")

    def __init__(self, params: Any, shape: tuple[int, int, int] = (1, 28, 28), num_classes: int = 0) -> None:
        super().__init__(params, shape, num_classes)
        C = self.shape[0]
        ch, g = params.base_channels, params.norm_groups
        tdim = ch * 4
        self.time_mlp = nn.Sequential(SinusoidalEmbedding(ch), nn.Linear(ch, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        self.labels = self.label_embedding(tdim)
        self.conv_in = nn.Conv2d(C, ch, 3, padding=1)
        levels = len(params.channel_mults)
        self.down_blocks = nn.ModuleList()
        self.down_attn = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skip_channels, cur = [ch], ch
        for i, mult in enumerate(params.channel_mults):
            out = ch * mult
            for _ in range(params.res_blocks):
                self.down_blocks.append(ResBlock(cur, out, tdim, params.dropout, g))
                self.down_attn.append(SelfAttention(out, g) if i in params.attention_levels else nn.Identity())
                cur = out
                skip_channels.append(cur)
            if i != levels - 1:
                self.downsample.append(nn.Conv2d(cur, cur, 3, stride=2, padding=1))
                skip_channels.append(cur)
        self.mid = nn.ModuleList([ResBlock(cur, cur, tdim, params.dropout, g), SelfAttention(cur, g), ResBlock(cur, cur, tdim, params.dropout, g)])
        self.up_blocks = nn.ModuleList()
        self.up_attn = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i, mult in reversed(list(enumerate(params.channel_mults))):
            out = ch * mult
            for _ in range(params.res_blocks + 1):
                self.up_blocks.append(ResBlock(cur + skip_channels.pop(), out, tdim, params.dropout, g))
                self.up_attn.append(SelfAttention(out, g) if i in params.attention_levels else nn.Identity())
                cur = out
            if i != 0:
                self.upsample.append(nn.Conv2d(cur, cur, 3, padding=1))
        self.out = nn.Sequential(group_norm(cur, g), nn.SiLU(), nn.Conv2d(cur, C, 3, padding=1))

    def forward(self, z: torch.Tensor, t_frac: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.time_mlp(t_frac)
        label = self.embed_labels(self.labels, y, z.shape[0], z.device)
        if label is not None:
            emb = emb + label
        p = self.params
        h = self.conv_in(z)
        skips = [h]
        k = 0
        for i in range(len(p.channel_mults)):
            for _ in range(p.res_blocks):
                h = self.down_attn[k](self.down_blocks[k](h, emb))
                skips.append(h)
                k += 1
            if i != len(p.channel_mults) - 1:
                h = self.downsample[i](h)
                skips.append(h)
        h = self.mid[2](self.mid[1](self.mid[0](h, emb)), emb)
        k = 0
        for j, i in enumerate(reversed(range(len(p.channel_mults)))):
            for _ in range(p.res_blocks + 1):
                skip = skips.pop()
                if h.shape[-2:] != skip.shape[-2:]:
                    h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
                h = self.up_attn[k](self.up_blocks[k](torch.cat([h, skip], 1), emb))
                k += 1
            if i != 0:
                h = self.upsample[j](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return cast("torch.Tensor", self.out(h))
