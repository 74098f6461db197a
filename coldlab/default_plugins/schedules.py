"""Built-in noise schedules (SPEC.md section 1).

Convention: ``beta`` and ``alpha_bar`` are indexed by t in 0..T with ``beta_0 = 0`` and
``alpha_bar_0 = 1``; ``alpha_bar_t`` is always ``prod_{s<=t}(1 - beta_s)`` (so a sampler
sees one consistent pair). ``linear`` puts ``beta_1 = beta_min`` and ``beta_T = beta_max``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import cast

import torch

from coldlab import Schedule, hookimpl, param
from coldlab.hookspecs import Register


def _steps(T: int) -> torch.Tensor:
    if T < 1:
        raise ValueError(f"T must be at least 1, got {T}")
    return torch.arange(1, T + 1, dtype=torch.float64)


def _linear(T: int, beta_min: float, beta_max: float) -> torch.Tensor:
    if T == 1:
        return torch.tensor([beta_min], dtype=torch.float64)
    return beta_min + (beta_max - beta_min) * (_steps(T) - 1) / (T - 1)


class LinearSchedule(Schedule):
    """beta_t linearly from beta_min (t = 1) to beta_max (t = T) — Ho et al."""

    @dataclasses.dataclass
    class Params:
        T: int = param(1000, "number of steps", min=1)
        beta_min: float = param(1e-4, "beta_1", min=0)
        beta_max: float = param(0.02, "beta_T", gt=0)

    def compute_beta(self) -> torch.Tensor:
        return _linear(self.params.T, self.params.beta_min, self.params.beta_max)


class InverseLinearSchedule(Schedule):
    """The linear schedule reversed in t: beta_t = linear_{T+1-t} (report 004)."""

    Params = LinearSchedule.Params

    def compute_beta(self) -> torch.Tensor:
        return _linear(self.params.T, self.params.beta_min, self.params.beta_max).flip(0)


class ConstantSchedule(Schedule):
    """beta_t = C for every t (reports 002 and 004)."""

    @dataclasses.dataclass
    class Params:
        T: int = param(1000, "number of steps", min=1)
        C: float = param(0.01, "the constant beta", min=0)

    def compute_beta(self) -> torch.Tensor:
        return torch.full((self.params.T,), self.params.C, dtype=torch.float64)


def cosine_f(t: torch.Tensor, T: int, s: float) -> torch.Tensor:
    """Nichol & Dhariwal's f(t) = cos(((t/T + s) / (1 + s)) * pi/2)^2."""
    return torch.cos(((t / T + s) / (1 + s)) * math.pi / 2) ** 2


class CosineSchedule(Schedule):
    """alpha_bar_t = f(t)/f(0); beta_t = 1 - alpha_bar_t/alpha_bar_{t-1}, clipped at max_beta.

    After clipping, ``alpha_bar`` is recomputed from the clipped betas (as Nichol & Dhariwal do),
    so a small ``max_beta`` (report 000: 0.02) leaves alpha_bar_T well above 0.
    """

    @dataclasses.dataclass
    class Params:
        T: int = param(1000, "number of steps", min=1)
        s: float = param(0.008, "offset that keeps beta_1 from being too small", min=0)
        max_beta: float = param(0.999, "betas are clipped at this value (000: 0.02, 004: 0.1)", gt=0, max=1)

    def compute_beta(self) -> torch.Tensor:
        T, s = self.params.T, self.params.s
        t = torch.arange(0, T + 1, dtype=torch.float64)
        alpha_bar = cosine_f(t, T, s) / cosine_f(torch.zeros(1, dtype=torch.float64), T, s)
        beta = 1 - alpha_bar[1:] / alpha_bar[:-1]
        return beta.clamp(max=self.params.max_beta)


class CosinePlainSchedule(Schedule):
    """alpha_bar_t = cos^2(pi/2 * t/T); beta_t = 1 - alpha_bar_t / (alpha_bar_{t-1} + eps) (report 003).

    beta is clipped at ``max_beta`` so that the last step (where alpha_bar_T = 0) stays finite
    for samplers; alpha_bar then follows from the betas as for every schedule.
    """

    @dataclasses.dataclass
    class Params:
        T: int = param(1000, "number of steps", min=1)
        eps: float = param(1e-8, "added to the denominator of the ratio", min=0)
        max_beta: float = param(0.999, "betas are clipped at this value", gt=0, max=1)

    def compute_beta(self) -> torch.Tensor:
        T = self.params.T
        t = torch.arange(0, T + 1, dtype=torch.float64)
        alpha_bar = torch.cos(math.pi / 2 * t / T) ** 2
        beta = 1 - alpha_bar[1:] / (alpha_bar[:-1] + self.params.eps)
        return cast("torch.Tensor", beta.clamp(min=0.0, max=self.params.max_beta))


@hookimpl
def register_schedules(register: Register) -> None:
    register("linear", LinearSchedule)
    register("cosine", CosineSchedule)
    register("cosine-plain", CosinePlainSchedule)
    register("constant", ConstantSchedule)
    register("inverse-linear", InverseLinearSchedule)
