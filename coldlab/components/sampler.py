"""Reverse processes: from z_t back to an image, with a network's help."""

from __future__ import annotations

import dataclasses
import itertools
from typing import TYPE_CHECKING, Any

import torch

from coldlab.components.naming import name_of
from coldlab.errors import ColdlabError
from coldlab.params import NoParams

if TYPE_CHECKING:
    from coldlab.components.dataset import DataContext
    from coldlab.components.degradation import Degradation


@dataclasses.dataclass
class SampleResult:
    """The final images and, if asked for, the trajectory as (t, z_t) pairs (t descending)."""

    images: torch.Tensor
    trajectory: list[tuple[int, torch.Tensor]] = dataclasses.field(default_factory=list)


def step_sequence(t_start: int, steps: int | None) -> list[int]:
    """Steps ``t_start > ... > 0`` visited by a sampler: all of them, or ``steps`` evenly spaced."""
    if t_start < 1:
        raise ValueError("sampling must start from t >= 1")
    if steps is None or steps >= t_start:
        return list(range(t_start, -1, -1))
    if steps < 1:
        raise ValueError("steps must be at least 1")
    seq = torch.linspace(t_start, 0, steps + 1, dtype=torch.float64).round().long().tolist()
    return sorted(set(seq), reverse=True)


class Sampler:
    """Base of the samplers.

    :meth:`sample` runs the reverse process from ``z`` at step ``t_start`` (default T: start
    from a prior sample; smaller: conditional reconstruction of a degraded image) to t = 0.
    ``trajectory_every = k`` keeps z every k visited steps (and the first and last).
    ``requires`` lists what the degradation must offer: ``"gaussian"`` (Gaussian noise) or
    ``"schedule"`` (alpha_bar).
    """

    Params: type = NoParams
    #: the name and kind it was registered and built under: declared here, filled in by the registry that builds
    #: it (the constructor contract stays ``cls(params, **context)``); "" for one constructed directly
    component_name: str = ""
    component_kind: str = ""
    requires: tuple[str, ...] = ()
    #: the value range of the data sampled (set by :meth:`prepare`; None: unknown or unbounded, as latents)
    value_range: tuple[float, float] | None = None

    def __init__(self, params: Any) -> None:
        self.params = params

    def prepare(self, data: DataContext) -> None:
        """Learn what the sampler may assume about the data; the engine calls it before sampling. The
        base keeps ``data.value_range`` (samplers that clip x0 clip to it unless told a bound)."""
        self.value_range = data.value_range

    @classmethod
    def describe(cls, spec: dict[str, Any]) -> str:
        """How tables name a sampler of this resolved table (default: its name; ddim adds ``eta``)."""
        return str(spec["name"])

    def check(self, degradation: Degradation) -> None:
        """Raise a :class:`ColdlabError` if this sampler cannot run with ``degradation``."""
        me = name_of(self)
        deg = name_of(degradation)
        if "gaussian" in self.requires and degradation.noise_kind != "gaussian":
            raise ColdlabError(
                f"sampler {me!r} needs a Gaussian-noise degradation, not {deg!r}",
                hint="use 'cold-improved' or 'cold-naive' for cold degradations",
            )
        if "schedule" in self.requires and (degradation.schedule is None or degradation.noise_kind is None):
            raise ColdlabError(
                f"sampler {me!r} needs a degradation that mixes noise in by a schedule, not {deg!r}",
                hint="use 'cold-improved' or 'cold-naive' for deterministic degradations",
            )

    def sample(
        self,
        net: torch.nn.Module,
        degradation: Degradation,
        z: torch.Tensor,
        *,
        t_start: int | None = None,
        y: torch.Tensor | None = None,
        trajectory_every: int | None = None,
        generator: torch.Generator | None = None,
    ) -> SampleResult:
        """Run the reverse process under ``torch.inference_mode`` (no autograd bookkeeping at all); what it
        returns are ordinary tensors, copied out of inference mode, so callers may use them anywhere."""
        self.check(degradation)
        t_start = degradation.T if t_start is None else int(t_start)
        if not 1 <= t_start <= degradation.T:
            raise ValueError(f"t_start must lie in 1..{degradation.T}, got {t_start}")
        seq = self.steps(t_start)
        trajectory: list[tuple[int, torch.Tensor]] = []
        keep = trajectory_every
        if keep:
            trajectory.append((seq[0], z.clone()))
        with torch.inference_mode():
            for i, (t, t_next) in enumerate(itertools.pairwise(seq)):
                z = self.step(net, degradation, z, t, t_next, y=y, generator=generator)
                if keep and ((i + 1) % keep == 0 or t_next == seq[-1]):
                    trajectory.append((t_next, z.clone()))
        return SampleResult(images=z.clone(), trajectory=[(t, x.clone()) for t, x in trajectory])

    def steps(self, t_start: int) -> list[int]:
        """The visited steps, from ``t_start`` down to 0."""
        return step_sequence(t_start, getattr(self.params, "steps", None))

    def step(
        self,
        net: torch.nn.Module,
        degradation: Degradation,
        z: torch.Tensor,
        t: int,
        t_next: int,
        *,
        y: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """One move from step ``t`` to ``t_next < t``."""
        raise NotImplementedError


def predict(net: torch.nn.Module, degradation: Degradation, z: torch.Tensor, t: int, y: torch.Tensor | None) -> torch.Tensor:
    """The network's output at step t for the batch z."""
    t_frac = torch.full((z.shape[0],), t / degradation.T, device=z.device, dtype=z.dtype)
    out: torch.Tensor = net(z, t_frac, y)
    return out
