"""Degradations that mix x with noise by a schedule: z_t = sqrt(ab_t) x + sqrt(1 - ab_t) n.

``gaussian``: n ~ N(0, I) (DDPM). ``morph``: n is a random image of another dataset
(report 004: MNIST morphs into FashionMNIST). Both are closed form, without a loop over t.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import torch

from coldlab import ColdlabError, DataContext, Degradation, as_steps, generator_device, hookimpl, param
from coldlab.components.degradation import DeviceCache
from coldlab.components.schedule import Schedule
from coldlab.hookspecs import Register


class InterpolationDegradation(Degradation):
    """Shared closed form of ``gaussian`` and ``morph``."""

    schedule: Schedule

    def __init__(self, params: Any) -> None:
        super().__init__(params)
        self.schedule = params.schedule
        if (self.schedule.beta >= 1).any():
            raise ValueError("a noise schedule needs every beta_t < 1 (alpha_bar must stay positive); lower C, beta_max or max_beta")
        self._sqrt_ab = DeviceCache(self.schedule.alpha_bar.sqrt())
        self._sqrt_1m_ab = DeviceCache((1 - self.schedule.alpha_bar).sqrt())

    def coefficients(self, t: int | torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(sqrt(alpha_bar_t), sqrt(1 - alpha_bar_t)) shaped to broadcast against ``like``."""
        steps = as_steps(t, like.shape[0], like.device)
        shape = (-1,) + (1,) * (like.dim() - 1)
        return self._sqrt_ab.like(like)[steps].view(shape), self._sqrt_1m_ab.like(like)[steps].view(shape)

    def degrade(self, x: torch.Tensor, t: int | torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            raise ValueError(f"{type(self).__name__}.degrade needs noise; draw it with sample_noise(x)")
        a, b = self.coefficients(t, x)
        return a * x + b * noise

    def estimate_noise(self, z: torch.Tensor, x0: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        a, b = self.coefficients(t, z)
        return (z - a * x0) / b.clamp(min=1e-12)


class GaussianDegradation(InterpolationDegradation):
    """DDPM's forward process with N(0, I) noise; the network predicts eps, x0 or v."""

    noise_kind = "gaussian"

    @dataclasses.dataclass
    class Params:
        schedule: Schedule = param({"name": "linear"}, "the noise schedule", kind="schedule")
        target: Literal["eps", "x0", "v"] = param("eps", "what the network predicts")

    def __init__(self, params: Any) -> None:
        super().__init__(params)
        self.target = params.target

    @classmethod
    def describe(cls, spec: dict[str, Any]) -> str:
        """``gaussian (eps)``: the name and what the network predicts."""
        return f"{spec['name']} ({spec['target']})"

    def sample_noise(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)

    def training_target(self, x: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        if noise is None:
            raise ValueError("the gaussian degradation's training target needs its noise")
        if self.target == "eps":
            return noise
        if self.target == "x0":
            return x
        a, b = self.coefficients(t, x)
        return a * noise - b * x

    def x0_from_output(self, z: torch.Tensor, t: int | torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        if self.target == "x0":
            return output
        a, b = self.coefficients(t, z)
        if self.target == "eps":
            return (z - b * output) / a
        return a * z - b * output

    def eps_from_output(self, z: torch.Tensor, t: int | torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """The noise estimate from the network's output."""
        if self.target == "eps":
            return output
        a, b = self.coefficients(t, z)
        if self.target == "v":
            return a * output + b * z
        return (z - a * output) / b.clamp(min=1e-12)


class MorphDegradation(InterpolationDegradation):
    """Morph towards a random image m of another dataset: z_t = sqrt(ab_t) x + sqrt(1-ab_t) m.

    The target images come from :meth:`prepare` (dataset ``target_dataset``, split
    ``target_split``) or :meth:`set_targets`. The network predicts x0.
    """

    noise_kind = "images"
    target = "x0"
    images_only = True

    @dataclasses.dataclass
    class Params:
        schedule: Schedule = param({"name": "linear"}, "how fast x is mixed into the target", kind="schedule")
        target_dataset: str = param("fashion-mnist", "dataset whose images x morphs into")
        target_split: Literal["train", "test"] = param("train", "split of the target dataset to draw from")

    def __init__(self, params: Any) -> None:
        super().__init__(params)
        self.targets: torch.Tensor | None = None

    def prepare(self, data: DataContext) -> None:
        images, _ = data.load(self.params.target_dataset, self.params.target_split)
        if tuple(images.shape[1:]) != tuple(data.shape):
            raise ColdlabError(
                f"morph target dataset {self.params.target_dataset!r} has images of shape {tuple(images.shape[1:])}, "
                f"but the data has {tuple(data.shape)}",
                hint="choose a target dataset with the same size and channels",
                where=("degradation", "target_dataset"),
            )
        self.set_targets(images)

    def datasets(self) -> list[str | dict[str, Any]]:
        return [self.params.target_dataset]

    def set_targets(self, images: torch.Tensor) -> None:
        """Use these images (N, C, H, W) as the pool that x morphs into."""
        if images.dim() != 4 or images.shape[0] == 0:
            raise ValueError("morph targets must be a non-empty (N, C, H, W) tensor")
        self.targets = images

    def sample_noise(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.targets is None:
            raise ColdlabError("morph has no target images", hint="call prepare() or set_targets() before use")
        idx = torch.randint(0, self.targets.shape[0], (x.shape[0],), generator=generator, device=generator_device(generator))
        return self.targets[idx.to(self.targets.device)].to(device=x.device, dtype=x.dtype)


@hookimpl
def register_degradations(register: Register) -> None:
    register("gaussian", GaussianDegradation)
    register("morph", MorphDegradation)
