"""The contract kit (coldlab.testing) applied to the built-ins, and shown to catch broken components."""

from __future__ import annotations

import dataclasses
import math
import types

import pytest
import torch

from coldlab import Degradation, PluginLoadWarning, Schedule, hookimpl, param
from coldlab.testing import (
    DegradationContract,
    NetworkContract,
    PriorContract,
    SamplerContract,
    ScheduleContract,
    registry_with,
    synthetic_images,
)


# ---- built-in schedules against formulas written out independently -------------------------
class TestLinear(ScheduleContract):
    spec = {"name": "linear", "T": 30, "beta_min": 1e-4, "beta_max": 0.02}

    def expected_beta(self, p):
        return torch.tensor([p.beta_min + (p.beta_max - p.beta_min) * (t - 1) / (p.T - 1) for t in range(1, p.T + 1)], dtype=torch.float64)


class TestInverseLinear(TestLinear):
    spec = {"name": "inverse-linear", "T": 30}

    def expected_beta(self, p):
        return super().expected_beta(p).flip(0)


class TestConstant(ScheduleContract):
    spec = {"name": "constant", "T": 12, "C": 0.05}

    def expected_beta(self, p):
        return torch.full((p.T,), p.C, dtype=torch.float64)


class TestCosine(ScheduleContract):
    spec = {"name": "cosine", "T": 40, "max_beta": 0.3}

    def expected_beta(self, p):
        f = [math.cos((t / p.T + p.s) / (1 + p.s) * math.pi / 2) ** 2 for t in range(p.T + 1)]
        return torch.tensor([min(1 - f[t] / f[t - 1], p.max_beta) for t in range(1, p.T + 1)], dtype=torch.float64)


class TestCosinePlain(ScheduleContract):
    spec = {"name": "cosine-plain", "T": 40}

    def expected_beta(self, p):
        ab = [math.cos(math.pi / 2 * t / p.T) ** 2 for t in range(p.T + 1)]
        return torch.tensor([min(max(1 - ab[t] / (ab[t - 1] + p.eps), 0.0), p.max_beta) for t in range(1, p.T + 1)],
                            dtype=torch.float64)


# ---- built-in degradations --------------------------------------------------------------------
class TestGaussianEps(DegradationContract):
    spec = {"name": "gaussian", "schedule": {"name": "linear", "T": 40}}


class TestGaussianV(DegradationContract):
    spec = {"name": "gaussian", "target": "v", "schedule": {"name": "cosine", "T": 40}}


class TestZoom(DegradationContract):
    spec = {"name": "zoom", "final_size": 4}


class TestBlur(DegradationContract):
    spec = {"name": "blur", "schedule": {"name": "constant", "C": 1.0, "T": 20}}


class TestMorph(DegradationContract):
    spec = {"name": "morph", "target_dataset": "synthetic", "schedule": {"name": "cosine", "T": 30, "max_beta": 0.999}}


# ---- priors, networks, samplers --------------------------------------------------------------
class TestGaussianPrior(PriorContract):
    spec = "gaussian"


class TestFlatGaussianPrior(PriorContract):
    spec = "flat-gaussian"
    degradation = {"name": "blur", "schedule": {"name": "constant", "C": 1.0, "T": 20}}


class TestGmmPrior(PriorContract):
    spec = {"name": "gmm", "components": 2}
    degradation = {"name": "blur", "schedule": {"name": "constant", "C": 1.0, "T": 20}}


class TestCnn(NetworkContract):
    spec = {"name": "cnn", "channels": [8, 8]}


class TestConditionalCnn(NetworkContract):
    spec = {"name": "cnn", "channels": [8, 8], "conditional": True}
    num_classes = 3


class TestDdim(SamplerContract):
    spec = {"name": "ddim", "steps": 10}


class TestDdpm(SamplerContract):
    spec = "ddpm"
    oracle_spec = {"name": "ddpm", "noise": False}


class TestColdImprovedOnZoom(SamplerContract):
    spec = "cold-improved"
    degradation = "zoom"


# ---- the kit catches what it claims to catch --------------------------------------------------
class OffByOne(Degradation):
    """Broken on purpose: D(x, 0) != x."""

    @dataclasses.dataclass
    class Params:
        T: int = param(5, "steps")

    @property
    def T(self):
        return self.params.T

    def degrade(self, x, t, noise=None):
        return x * 0.5 ** (torch.as_tensor(t, dtype=x.dtype).view(-1, *[1] * (x.dim() - 1)) + 1)


class WrongSchedule(Schedule):
    @dataclasses.dataclass
    class Params:
        T: int = param(10, "steps")

    def compute_beta(self):
        return torch.full((self.params.T,), 0.01, dtype=torch.float64)


broken_plugin = types.ModuleType("broken_plugin")
broken_plugin.register_degradations = hookimpl(lambda register: register("off-by-one", OffByOne))
broken_plugin.register_schedules = hookimpl(lambda register: register("wrong", WrongSchedule))


def test_the_degradation_contract_fails_a_broken_degradation():
    class Check(DegradationContract):
        plugins = (broken_plugin,)
        spec = "off-by-one"

    check, registry = Check(), registry_with(broken_plugin)
    x = synthetic_images(4, Check.shape)
    with pytest.raises(AssertionError):
        check.test_identity_at_step_zero(registry, x)
    with pytest.raises(AssertionError):
        check.test_a_perfect_network_makes_the_sampler_return_the_image(registry, x)


def test_the_schedule_contract_fails_a_schedule_off_its_formula():
    class Check(ScheduleContract):
        plugins = (broken_plugin,)
        spec = "wrong"

        def expected_beta(self, p):
            return torch.full((p.T,), 0.02, dtype=torch.float64)

    with pytest.raises(AssertionError):
        Check().test_matches_its_formula(registry_with(broken_plugin))
    with pytest.raises(NotImplementedError, match="expected_beta"):
        ScheduleContract().expected_beta(None)


def test_registry_with_reports_a_plugin_that_fails_to_load():
    bad = types.ModuleType("bad_plugin")
    bad.register_schedules = hookimpl(lambda register: register("linear", WrongSchedule))  # name taken
    with pytest.warns(PluginLoadWarning), pytest.raises(AssertionError, match="bad_plugin.*already registered"):
        registry_with(bad)
