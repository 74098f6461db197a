"""Forward processes D(x, t) for t in 0..T, with D(x, 0) = x."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from coldlab.components.naming import name_of
from coldlab.params import NoParams

if TYPE_CHECKING:
    from coldlab.components.dataset import DataContext
    from coldlab.components.schedule import Schedule


def as_steps(t: int | torch.Tensor, batch: int, device: torch.device | str) -> torch.Tensor:
    """``t`` as a long tensor of shape ``(batch,)`` on ``device`` (an int is broadcast)."""
    if isinstance(t, torch.Tensor):
        t = t.to(device=device, dtype=torch.long).flatten()
        if t.numel() == 1 and batch != 1:
            t = t.expand(batch)
        if t.numel() != batch:
            raise ValueError(f"got {t.numel()} steps for a batch of {batch}")
        return t
    return torch.full((batch,), int(t), dtype=torch.long, device=device)


class DeviceCache:
    """Holds a (float64) tensor and hands out copies on each device/dtype it is used with, made once."""

    def __init__(self, values: torch.Tensor) -> None:
        self.values = values
        self._copies: dict[tuple[Any, Any], torch.Tensor] = {}

    def like(self, other: torch.Tensor) -> torch.Tensor:
        key = (other.device, other.dtype)
        if key not in self._copies:
            with torch.inference_mode(False):  # made while sampling, still usable when training resumes
                self._copies[key] = self.values.to(device=other.device, dtype=other.dtype)
        return self._copies[key]


class Degradation:
    """A forward process.

    - ``T``: the number of steps; training draws t ~ Uniform{1..T}.
    - ``target``: what the network predicts, ``"eps"``, ``"x0"`` or ``"v"``.
    - ``noise_kind``: ``"gaussian"`` when z_t mixes in N(0, I) noise, ``"images"`` when it
      mixes in images of another dataset, ``None`` when D is deterministic in x.
    - ``schedule``: the :class:`Schedule` it uses, if any.

    Stochastic degradations take their randomness as an explicit ``noise`` tensor
    (from :meth:`sample_noise`), so that samplers can re-apply D with the same noise.
    """

    Params: type = NoParams
    #: the name and kind it was registered and built under: declared here, filled in by the registry that builds
    #: it (the constructor contract stays ``cls(params, **context)``); "" for one constructed directly
    component_name: str = ""
    component_kind: str = ""
    target: str = "x0"
    noise_kind: str | None = None
    schedule: Schedule | None = None
    #: True for a degradation that only makes sense on images (morph mixes in images of a dataset), so a
    #: latent diffusion run refuses it
    images_only: bool = False

    def __init__(self, params: Any) -> None:
        self.params = params

    @property
    def T(self) -> int:
        if self.schedule is None:
            raise NotImplementedError("a degradation without a schedule must define T")
        return self.schedule.T

    def prepare(self, data: DataContext) -> None:
        """Load whatever the degradation needs from data (morph: its target images)."""

    def datasets(self) -> list[str | dict[str, Any]]:
        """Datasets :meth:`prepare` loads besides the run's own (morph: its target dataset), so that they
        are checked and downloaded before a run starts."""
        return []

    @classmethod
    def describe(cls, spec: dict[str, Any]) -> str:
        """How tables name a degradation of this resolved table (default: its name; a degradation whose
        table says more worth a column, as gaussian's ``target``, overrides this)."""
        return str(spec["name"])

    def sample_noise(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor | None:
        """The randomness of one forward pass for the batch ``x`` (None if deterministic)."""
        return None

    def degrade(self, x: torch.Tensor, t: int | torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """z_t = D(x, t) for a batch, t an int or one step per image."""
        raise NotImplementedError

    def estimate_noise(self, z: torch.Tensor, x0: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor | None:
        """The noise that makes ``degrade(x0, t, noise) == z`` (None if deterministic)."""
        return None

    def eps_from_output(self, z: torch.Tensor, t: int | torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """The Gaussian noise estimate of the network's output (degradations that mix in N(0, I) noise)."""
        raise NotImplementedError(f"{type(self).__name__} mixes in no Gaussian noise")

    def x0_from_output(self, z: torch.Tensor, t: int | torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """The clean-image estimate from the network's output (its target)."""
        return output

    def training_target(self, x: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        """What the network must output for z_t = D(x, t, noise)."""
        return x

    def training_batch(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One training example per image: (z_t, t, target) with t ~ Uniform{1..T}."""
        t = torch.randint(1, self.T + 1, (x.shape[0],), device=x.device, generator=generator)
        noise = self.sample_noise(x, generator)
        return self.degrade(x, t, noise), t, self.training_target(x, t, noise)


class SizedDegradation(Degradation):
    """A degradation whose number of steps follows from the image size (zoom, pixelate).

    Subclasses implement :meth:`steps_for`; ``T`` is known once :meth:`prepare` (which the engine
    calls with the data's shape) or :meth:`steps_of` (at the top of ``degrade``) has seen an image size.
    """

    _T: int | None = None

    def steps_for(self, height: int, width: int) -> int:
        """T for images of ``height`` x ``width`` (less than 1: the images are too small)."""
        raise NotImplementedError

    @property
    def T(self) -> int:
        if self._T is None:
            name = name_of(self)
            raise AttributeError(f"{name}'s T depends on the image size: call prepare() or degrade() first")
        return self._T

    def set_image_size(self, height: int, width: int) -> None:
        T = self.steps_for(height, width)
        if T < 1:
            name = name_of(self)
            raise ValueError(f"images of {height}x{width} are too small for {name} with {self.params}")
        self._T = T

    def prepare(self, data: DataContext) -> None:
        self.set_image_size(data.shape[1], data.shape[2])

    def steps_of(self, x: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        """``t`` as one step per image of ``x`` (fixing T from x's size if not known yet), checked to lie in 0..T."""
        if self._T is None:
            self.set_image_size(x.shape[-2], x.shape[-1])
        steps = as_steps(t, x.shape[0], x.device)
        if (steps < 0).any() or (steps > self.T).any():
            name = name_of(self)
            raise ValueError(f"{name} steps must lie in 0..{self._T}")
        return steps
