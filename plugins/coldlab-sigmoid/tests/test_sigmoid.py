"""coldlab-sigmoid: contract checks, the schedule's formula, what the prior learns."""

from __future__ import annotations

import importlib.metadata
import math
import types

import pytest
import torch

import coldlab_sigmoid
from coldlab.testing import PriorContract, ScheduleContract, registry_with, synthetic_images


class TestSigmoid(ScheduleContract):
    plugins = (coldlab_sigmoid,)
    spec = {"name": "sigmoid", "T": 50, "beta_min": 1e-4, "beta_max": 0.05}

    def expected_beta(self, p):
        def sigmoid(v):
            return 1 / (1 + math.exp(-v))

        return torch.tensor([p.beta_min + (p.beta_max - p.beta_min) * sigmoid(p.start + (p.end - p.start) * (t - 1) / (p.T - 1))
                             for t in range(1, p.T + 1)], dtype=torch.float64)


class TestPixelGaussianAfterBlur(PriorContract):
    plugins = (coldlab_sigmoid,)
    spec = {"name": "pixel-gaussian", "min_std": 0.01}
    degradation = {"name": "blur", "schedule": {"name": "constant", "C": 1.0, "T": 10}}


class TestPixelGaussianAfterNoise(PriorContract):
    plugins = (coldlab_sigmoid,)
    spec = "pixel-gaussian"


@pytest.fixture
def registry():
    return registry_with(coldlab_sigmoid)


def test_sigmoid_betas_rise_monotonically_between_the_asymptotes(registry):
    s = registry.build("schedule", {"name": "sigmoid", "T": 100})
    beta = s.beta[1:]
    assert (beta[1:] > beta[:-1]).all() and beta[0] > 1e-4 and beta[-1] < 0.02
    assert beta[49].item() == pytest.approx(1e-4 + (0.02 - 1e-4) * torch.sigmoid(torch.tensor(-6 + 12 * 49 / 99, dtype=torch.float64)).item())


def test_pixel_gaussian_learns_each_pixels_mean_and_spread(registry):
    prior = registry.build("prior", "pixel-gaussian")
    identity = types.SimpleNamespace(T=1, degrade=lambda x, t, noise: x, sample_noise=lambda x, g: None)
    images = synthetic_images(400, (1, 8, 8), seed=3, dtype=torch.float32)
    prior.fit(images, identity)  # D(x, T) = x, so the fit is of the images themselves
    assert torch.allclose(prior.state["mean"], images.mean(0), atol=1e-5)
    assert torch.allclose(prior.state["std"], images.std(0).clamp(min=1e-3), atol=1e-5)
    z = prior.sample(20000, (1, 8, 8), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(z.mean(0), images.mean(0), atol=0.01)
    assert torch.allclose(z.std(0), images.std(0), rtol=0.05)


def test_pixel_gaussian_refuses_to_sample_unfitted_or_for_another_shape(registry):
    prior = registry.build("prior", "pixel-gaussian")
    with pytest.raises(RuntimeError, match="not fitted"):
        prior.sample(1, (1, 8, 8))
    prior.load_state_dict({"mean": torch.zeros(1, 8, 8), "std": torch.ones(1, 8, 8)})
    with pytest.raises(ValueError, match="shape"):
        prior.sample(1, (1, 16, 16))


def test_the_package_declares_its_entry_point():
    eps = [ep for ep in importlib.metadata.entry_points(group="coldlab") if ep.name == "sigmoid"]
    assert eps and eps[0].value == "coldlab_sigmoid" and eps[0].dist.name == "coldlab-sigmoid"
    assert eps[0].dist.version == coldlab_sigmoid.__version__
