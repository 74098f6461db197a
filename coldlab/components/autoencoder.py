"""Autoencoders for latent diffusion: images <-> latents.

An autoencoder is an ``nn.Module`` built as ``cls(params, shape=(C, H, W))``. It declares
``latent_shape`` and implements :meth:`encode` (the posterior's mean and log-variance) and
:meth:`decode`; :meth:`loss` is what training it minimises (reconstruction + ``kl_weight`` x KL for a VAE).
Latent diffusion runs on ``scale_factor * encode(x).mean`` — the factor that gives the latents unit
variance, estimated on training images (:meth:`estimate_scale`) and stored with the weights, as
latent diffusion does.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from coldlab.params import NoParams


class Autoencoder(nn.Module):
    """Base of the autoencoder plugins."""

    Params: type = NoParams
    #: the name and kind it was registered and built under: declared here, filled in by the registry that builds
    #: it (the constructor contract stays ``cls(params, **context)``); "" for one constructed directly
    component_name: str = ""
    component_kind: str = ""
    scale_factor: torch.Tensor

    def __init__(self, params: Any, shape: tuple[int, int, int] = (1, 28, 28)) -> None:
        super().__init__()
        self.params, self.shape = params, tuple(shape)
        self.register_buffer("scale_factor", torch.ones(()))

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log-variance) of the latent posterior, each of shape (B, *latent_shape)."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction, mean, logvar) with a reparameterised latent sample."""
        mean, logvar = self.encode(x)
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return self.decode(mean + (0.5 * logvar).exp() * eps), mean, logvar

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean squared reconstruction error + ``kl_weight`` x KL(q(z|x) || N(0, I)) per latent element."""
        recon, mean, logvar = self(x, generator)
        rec = (recon - x).square().mean()
        kl = self.kl(mean, logvar)
        total = rec + getattr(self.params, "kl_weight", 0.0) * kl
        return total, {"reconstruction": float(rec.detach()), "kl": float(kl.detach())}

    @staticmethod
    def kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(N(mean, exp(logvar)) || N(0, I)), averaged over the latent elements."""
        return 0.5 * (mean.square() + logvar.exp() - 1 - logvar).mean()

    @torch.no_grad()
    def estimate_scale(self, images: torch.Tensor, batch_size: int = 256) -> float:
        """Set and return ``scale_factor = 1 / std(latent means)`` over ``images``."""
        means = torch.cat([self.encode(images[i : i + batch_size])[0] for i in range(0, images.shape[0], batch_size)])
        factor = 1.0 / float(means.std().clamp(min=1e-8))
        self.scale_factor.fill_(factor)
        return factor

    @torch.no_grad()
    def to_latent(self, x: torch.Tensor) -> torch.Tensor:
        """The scaled latent of ``x`` (posterior mean): what latent diffusion trains on."""
        return self.encode(x)[0] * self.scale_factor

    @torch.no_grad()
    def from_latent(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode(z / self.scale_factor)
