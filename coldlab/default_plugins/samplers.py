"""Built-in samplers (SPEC.md section 5).

Each moves z from step t to t_next < t with the network's output at t:

- ``ddpm``: z <- (z - beta_t / sqrt(1 - ab_t) * eps) / sqrt(1 - beta_t) + sigma_t * noise (t > 1).
- ``ddim``: z <- sqrt(ab_next) x0 + sqrt(1 - ab_next - sigma^2) eps + sigma * noise on S steps.
- ``cold-naive``: z <- D(x0, t_next).
- ``cold-improved``: z <- z - D(x0, t) + D(x0, t_next) (Bansal et al., Algorithm 2).
- ``direct``: x0 = g(z_t, t/T) in one shot.

For degradations that mix in noise (gaussian, morph), the cold samplers re-apply D with the
noise that explains z given the estimate x0 (``degradation.estimate_noise``), so with a perfect
network they, like ``ddim`` with eta = 0 and ``ddpm`` without noise, return the image exactly.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, cast

import torch

from coldlab import ColdlabError, Degradation, Sampler, generator_device, hookimpl, param
from coldlab.components.naming import name_of
from coldlab.components.sampler import predict
from coldlab.hookspecs import Register


def _randn(z: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(z.shape, generator=generator, device=generator_device(generator, z.device), dtype=z.dtype).to(z.device)


def _schedule(degradation: Degradation) -> Any:
    """The degradation's schedule (``check`` made sure there is one)."""
    if degradation.schedule is None:
        raise ColdlabError(f"degradation {name_of(degradation)!r} has no schedule", hint="use a cold sampler")
    return degradation.schedule


def _check_steps(steps: int | None) -> None:
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be at least 1 (or unset for every step), got {steps}")


class DDPMSampler(Sampler):
    """Ancestral sampling (Ho et al.); sigma_t^2 = beta_t or the posterior variance.

    By default every step is visited. ``steps = S`` respaces the chain on S evenly spaced steps
    (Nichol & Dhariwal): a move from t to t' uses beta' = 1 - alpha_bar_t / alpha_bar_t', which is
    beta_t itself when t' = t - 1."""

    requires = ("gaussian",)

    @dataclasses.dataclass
    class Params:
        variance: Literal["beta", "posterior"] = param("beta", "sigma_t^2: beta_t, or beta_t (1 - ab_{t-1}) / (1 - ab_t)")
        noise: bool = param(True, "add sigma_t * N(0, I) before the last move (false: the deterministic mean path)")
        steps: int | None = param(None, "respace on this many steps (None: every step)", min=1, smoke=10)

        def __post_init__(self) -> None:
            _check_steps(self.steps)

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
        schedule = _schedule(degradation)
        ab, ab_next = float(schedule.alpha_bar[t]), float(schedule.alpha_bar[t_next])
        beta = 1 - ab / ab_next if t_next != t - 1 else float(schedule.beta[t])
        eps = degradation.eps_from_output(z, t, predict(net, degradation, z, t, y))
        z = (z - beta / (1 - ab) ** 0.5 * eps) / (1 - beta) ** 0.5
        if t_next > 0 and self.params.noise:
            var = beta
            if self.params.variance == "posterior":
                var = beta * (1 - ab_next) / (1 - ab)
            z = z + var**0.5 * _randn(z, generator)
        return z


class DDIMSampler(Sampler):
    """Song et al.'s DDIM on ``steps`` evenly spaced steps; eta = 0 is deterministic.

    Works for any degradation that mixes noise in by a schedule (gaussian, morph); eta > 0
    adds Gaussian noise and so needs the gaussian degradation. Each x0 estimate is clipped to the
    data's value range by default (``prepare``; ``clip_value`` to give a bound): without it an imperfect eps network's x0 estimates at
    large t (divided by sqrt(alpha_bar_t) ~ 0.006 for the linear schedule) blow up to +-30 on MNIST."""

    requires = ("schedule",)

    @dataclasses.dataclass
    class Params:
        steps: int | None = param(None, "number of steps S (None: every step; 003 uses 10, 50, 250, 1000)", min=1, smoke=10)
        eta: float = param(0.0, "stochasticity: 0 deterministic, 1 DDPM-like", min=0)
        clip_x0: bool = param(
            True,
            "clamp each x0 estimate to the data's value range, or to [-clip_value, clip_value] "
            "(as diffusers does by default); latents have no range: not clipped unless clip_value is set",
        )
        clip_value: float | None = param(None, "bound used by clip_x0 (unset: the dataset's value range, e.g. [-0.5, 0.5] for MNIST)", gt=0)

        def __post_init__(self) -> None:
            _check_steps(self.steps)

    def check(self, degradation: Degradation) -> None:
        super().check(degradation)
        if self.params.eta > 0 and degradation.noise_kind != "gaussian":
            raise ColdlabError("sampler 'ddim' with eta > 0 needs the gaussian degradation", hint="set eta = 0", where=("eta",))

    @classmethod
    def describe(cls, spec: dict[str, Any]) -> str:
        """``ddim eta=0.0``: the name and its stochasticity."""
        return f"{spec['name']} eta={spec['eta']}"

    def clip_bounds(self) -> tuple[float, float] | None:
        """What x0 estimates are clamped to: None without clip_x0, or without a bound (latents)."""
        if not self.params.clip_x0:
            return None
        if self.params.clip_value is not None:
            return (-self.params.clip_value, self.params.clip_value)
        return self.value_range

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
        out = predict(net, degradation, z, t, y)
        x0 = degradation.x0_from_output(z, t, out)
        bounds = self.clip_bounds()
        if bounds is not None:
            x0 = x0.clamp(*bounds)
        noise = degradation.estimate_noise(z, x0, t)
        ab, ab_next = float(_schedule(degradation).alpha_bar[t]), float(_schedule(degradation).alpha_bar[t_next])
        sigma = self.params.eta * ((1 - ab_next) / (1 - ab) * (1 - ab / ab_next)) ** 0.5
        z_next = ab_next**0.5 * x0 + max(1 - ab_next - sigma**2, 0.0) ** 0.5 * noise
        if sigma > 0:
            z_next = z_next + sigma * _randn(z, generator)
        return cast("torch.Tensor", z_next)


class _ColdSampler(Sampler):
    @dataclasses.dataclass
    class Params:
        steps: int | None = param(None, "visit this many evenly spaced steps (None: every step)", min=1, smoke=10)

        def __post_init__(self) -> None:
            _check_steps(self.steps)

    def estimate(
        self, net: torch.nn.Module, degradation: Degradation, z: torch.Tensor, t: int, y: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        x0 = degradation.x0_from_output(z, t, predict(net, degradation, z, t, y))
        return x0, degradation.estimate_noise(z, x0, t)


class ColdNaiveSampler(_ColdSampler):
    """x0 = g(z_s, s/T); z_{s-1} = D(x0, s-1) (report 000)."""

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
        x0, noise = self.estimate(net, degradation, z, t, y)
        return degradation.degrade(x0, t_next, noise)


class ColdImprovedSampler(_ColdSampler):
    """x0 = g(z_s, s/T); z_{s-1} = z_s - D(x0, s) + D(x0, s-1) (Bansal et al., Algorithm 2)."""

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
        x0, noise = self.estimate(net, degradation, z, t, y)
        return z - degradation.degrade(x0, t, noise) + degradation.degrade(x0, t_next, noise)


class DirectSampler(Sampler):
    """One shot: x0 = g(z_t, t/T) (the reference every iterative sampler should beat)."""

    def steps(self, t_start: int) -> list[int]:
        return [t_start, 0]

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
        return degradation.x0_from_output(z, t, predict(net, degradation, z, t, y))


@hookimpl
def register_samplers(register: Register) -> None:
    register("ddpm", DDPMSampler)
    register("ddim", DDIMSampler)
    register("cold-naive", ColdNaiveSampler)
    register("cold-improved", ColdImprovedSampler)
    register("direct", DirectSampler)
