"""coldlab-sigmoid: a sigmoid noise schedule and a per-pixel Gaussian prior (public API only)."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from coldlab import Prior, Schedule, hookimpl, param

__version__ = "0.1.0"
__all__ = ["PixelGaussianPrior", "SigmoidSchedule"]


class SigmoidSchedule(Schedule):
    """beta_t = beta_min + (beta_max - beta_min) * sigmoid(start + (end - start) (t - 1) / (T - 1))."""

    @dataclasses.dataclass
    class Params:
        T: int = param(1000, "number of steps", min=1)
        beta_min: float = param(1e-4, "the betas' lower asymptote", min=0)
        beta_max: float = param(0.02, "the betas' upper asymptote", gt=0)
        start: float = param(-6.0, "sigmoid input at t = 1")
        end: float = param(6.0, "sigmoid input at t = T")

        def __post_init__(self) -> None:
            if not 0 <= self.beta_min <= self.beta_max < 1:
                raise ValueError(f"need 0 <= beta_min <= beta_max < 1, got {self.beta_min}, {self.beta_max}")

    def compute_beta(self) -> torch.Tensor:
        p = self.params
        x = torch.linspace(p.start, p.end, p.T, dtype=torch.float64) if p.T > 1 else torch.tensor([p.start], dtype=torch.float64)
        return p.beta_min + (p.beta_max - p.beta_min) * torch.sigmoid(x)


class PixelGaussianPrior(Prior):
    """z_T pixel by pixel from N(mean, std^2) of the fully degraded training images."""

    needs_fit = True

    @dataclasses.dataclass
    class Params:
        max_images: int = param(10000, "fit on at most this many training images", min=1, smoke=256)
        min_std: float = param(1e-3, "floor of every pixel's std (a pixel constant in the data still varies)", gt=0)
        seed: int = param(0, "seed of the degradation noise drawn while fitting", min=0)

        def __post_init__(self) -> None:
            if self.max_images < 2:
                raise ValueError(f"max_images must be at least 2, got {self.max_images}")

    def fit(self, train_images: torch.Tensor, degradation: Any) -> None:
        x = train_images[: self.params.max_images].double()
        g = torch.Generator(device=x.device).manual_seed(self.params.seed)
        z = torch.cat([degradation.degrade(b, degradation.T, degradation.sample_noise(b, g)) for b in x.split(1024)])
        self.state = {"mean": z.mean(0).float(), "std": z.std(0).clamp(min=self.params.min_std).float()}

    def sample(self, n: int, shape: tuple[int, ...], *, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> torch.Tensor:
        if "mean" not in self.state:
            raise RuntimeError("pixel-gaussian is not fitted: call fit() or load_state_dict() first")
        mean, std = self.state["mean"], self.state["std"]
        if tuple(mean.shape) != tuple(shape):
            raise ValueError(f"pixel-gaussian was fitted on images of shape {tuple(mean.shape)}, not {tuple(shape)}")
        gen_device = generator.device if generator is not None else torch.device("cpu")
        noise = torch.randn((n, *shape), generator=generator, device=gen_device)
        return (mean.to(gen_device) + std.to(gen_device) * noise).to(device)


@hookimpl
def register_schedules(register):
    register("sigmoid", SigmoidSchedule)


@hookimpl
def register_priors(register):
    register("pixel-gaussian", PixelGaussianPrior)
