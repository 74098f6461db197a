"""Cumulative Gaussian blur (report 002, Bansal et al.): z_t = G_t * z_{t-1}.

G_t is a normalised ``kernel_size`` x ``kernel_size`` Gaussian of variance beta_t taken from
a schedule (report 002: constant beta = 1, T = 100, kernel 11). The blur is applied
step by step (as equation 5 of report 002 defines it), which on an unbounded image equals
one kernel of variance sum_{s<=t} beta_s; ``padding = "circular"`` (Bansal et al.'s choice)
keeps each image's mean exactly, which the ``flat-gaussian`` prior relies on.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import torch
import torch.nn.functional as F

from coldlab import ColdlabError, Degradation, DeviceCache, as_steps, hookimpl, param
from coldlab.components.schedule import Schedule
from coldlab.hookspecs import Register


def gaussian_kernel(size: int, variance: float) -> torch.Tensor:
    """A normalised 2-D Gaussian kernel (size x size) of the given variance, float64."""
    half = (size - 1) / 2
    offsets = torch.arange(size, dtype=torch.float64) - half
    g = torch.exp(-(offsets**2) / (2 * variance))
    g = g / g.sum()
    return torch.outer(g, g)


class BlurDegradation(Degradation):
    """Deterministic cumulative blur; the network predicts x0."""

    target = "x0"

    @dataclasses.dataclass
    class Params:
        schedule: Schedule = param({"name": "constant", "C": 1.0, "T": 100}, "beta_t is the variance of step t's kernel", kind="schedule")
        kernel_size: int = param(11, "side of each Gaussian kernel (odd)", min=1)
        padding: Literal["circular", "reflect", "zeros"] = param("circular", "how borders are padded")

    def __init__(self, params: Any) -> None:
        super().__init__(params)
        if params.kernel_size < 1 or params.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd number, got {params.kernel_size}")
        self.schedule = params.schedule
        if (self.schedule.beta[1:] <= 0).any():
            raise ValueError("blur needs beta_t > 0 at every step (beta_t is a kernel variance)")
        k = params.kernel_size
        self.kernels = DeviceCache(
            torch.stack([torch.zeros(k, k, dtype=torch.float64)] + [gaussian_kernel(k, float(v)) for v in self.schedule.beta[1:]])
        )

    def prepare(self, data: Any) -> None:
        """Circular and reflect padding cannot wrap around more than once: refuse a kernel wider than
        the images allow (small images are usually latents: a 4x7x7 latent takes kernel_size <= 13
        circular, <= 11 reflect)."""
        pad, side = self.params.kernel_size // 2, min(data.shape[1], data.shape[2])
        limit = {"circular": side, "reflect": side - 1}.get(self.params.padding)
        if limit is not None and pad > limit:
            raise ColdlabError(
                f"kernel_size {self.params.kernel_size} is too wide for {self.params.padding} padding of {data.shape[1]}x{data.shape[2]} images",
                where=("degradation", "kernel_size"),
                hint=f'use kernel_size <= {2 * limit + 1}, or padding = "zeros"',
            )

    def blur_once(self, x: torch.Tensor, step: int) -> torch.Tensor:
        """Apply G_step to every image of the batch."""
        C = x.shape[1]
        kernel = self.kernels.like(x)[step].expand(C, 1, -1, -1)
        pad = self.params.kernel_size // 2
        if self.params.padding == "zeros":
            return F.conv2d(x, kernel, padding=pad, groups=C)
        return F.conv2d(F.pad(x, (pad, pad, pad, pad), mode=self.params.padding), kernel, groups=C)

    def degrade(self, x: torch.Tensor, t: int | torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        steps = as_steps(t, x.shape[0], x.device)
        if (steps < 0).any() or (steps > self.T).any():
            raise ValueError(f"blur steps must lie in 0..{self.T}")
        z = x
        last = int(steps.max()) if steps.numel() else 0
        mask_shape = (-1,) + (1,) * (x.dim() - 1)
        for s in range(1, last + 1):
            active = (steps >= s).view(mask_shape)
            z = torch.where(active, self.blur_once(z, s), z)
        return z


@hookimpl
def register_degradations(register: Register) -> None:
    register("blur", BlurDegradation)
