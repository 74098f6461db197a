"""The built-in ``vae``: a small convolutional VAE (stride-2 downsamplings, a latent of
``latent_channels`` x H/2^k x W/2^k), for latent diffusion on MNIST-sized images."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import torch
from torch import nn

from coldlab import Autoencoder, hookimpl, param
from coldlab.hookspecs import Register


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(min(8, c_out), c_out), nn.SiLU())


class ConvVAE(Autoencoder):
    """Encoder: per entry of ``channels`` a conv block and a stride-2 conv; decoder: the mirror with
    nearest upsampling. Odd sizes are handled by cropping the decoder's output to the image size."""

    @dataclasses.dataclass
    class Params:
        channels: list[int] = param([32, 64], "channels per resolution (each halves the size)", min=1)
        latent_channels: int = param(4, "channels of the latent", min=1)
        kl_weight: float = param(1e-3, "weight of the KL term (small: an almost deterministic autoencoder)", min=0)

        def __post_init__(self) -> None:
            if not self.channels or any(c < 1 for c in self.channels) or self.latent_channels < 1:
                raise ValueError("channels must be a non-empty list of positive sizes and latent_channels >= 1")

    def __init__(self, params: Any, shape: tuple[int, int, int] = (1, 28, 28)) -> None:
        super().__init__(params, shape)
        c, h, w = self.shape
        layers: list[nn.Module] = []
        prev = c
        for ch in params.channels:
            layers += [_block(prev, ch), nn.Conv2d(ch, ch, 3, stride=2, padding=1)]
            prev = ch
        self.encoder = nn.Sequential(*layers, nn.SiLU(), nn.Conv2d(prev, 2 * params.latent_channels, 1))
        k = len(params.channels)
        self._latent = (params.latent_channels, -(-h // 2**k), -(-w // 2**k))
        up: list[nn.Module] = [nn.Conv2d(params.latent_channels, prev, 3, padding=1)]
        for ch in reversed(params.channels):
            up += [nn.Upsample(scale_factor=2, mode="nearest"), _block(prev, ch)]
            prev = ch
        self.decoder = nn.Sequential(*up, nn.Conv2d(prev, c, 3, padding=1))

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return self._latent

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, logvar.clamp(-30, 20)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        _, h, w = self.shape
        return cast("torch.Tensor", self.decoder(z)[..., :h, :w])


@hookimpl
def register_autoencoders(register: Register) -> None:
    register("vae", ConvVAE)
