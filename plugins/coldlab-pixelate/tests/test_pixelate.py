"""coldlab-pixelate: coldlab's contract checks plus the degradations' own known answers."""

from __future__ import annotations

import importlib.metadata
import math

import pytest
import torch

import coldlab_pixelate
from coldlab.testing import DegradationContract, SamplerContract, registry_with, synthetic_images


class TestPixelate(DegradationContract):
    plugins = (coldlab_pixelate,)
    spec = {"name": "pixelate", "pixels_per_step": 2, "final_size": 4}


class TestPixelateNearest(DegradationContract):
    plugins = (coldlab_pixelate,)
    spec = {"name": "pixelate", "downsample": "nearest"}


class TestGaussianMask(DegradationContract):
    plugins = (coldlab_pixelate,)
    spec = {"name": "gaussian-mask", "T": 20, "fill": 0.25}


class TestColdNaiveOnPixelate(SamplerContract):
    plugins = (coldlab_pixelate,)
    spec = "cold-naive"
    degradation = "pixelate"


@pytest.fixture
def registry():
    return registry_with(coldlab_pixelate)


def test_pixelate_T_and_sizes_follow_the_image(registry):
    deg = registry.build("degradation", {"name": "pixelate", "pixels_per_step": 4, "final_size": 4})
    x = synthetic_images(2, (1, 16, 16))
    deg.degrade(x, 0)
    assert deg.T == 3 and [deg.size_at(t, 16, 16) for t in range(4)] == [(16, 16), (12, 12), (8, 8), (4, 4)]
    other = registry.build("degradation", {"name": "pixelate"})
    other.degrade(synthetic_images(1, (1, 28, 28)), 0)
    assert other.T == 24


def test_pixelate_is_block_averages_where_the_blocks_divide_the_image(registry):
    deg = registry.build("degradation", {"name": "pixelate", "pixels_per_step": 8, "final_size": 4})
    x = synthetic_images(3, (2, 16, 16))
    z = deg.degrade(x, 1)  # 8x8: every 2x2 block becomes its mean
    means = x.view(3, 2, 8, 2, 8, 2).mean((3, 5))
    expected = means.repeat_interleave(2, 2).repeat_interleave(2, 3)
    assert torch.allclose(z, expected, atol=1e-12)
    assert len(torch.unique(z[0, 0])) <= 64


def test_pixelate_rejects_images_too_small_for_its_steps(registry):
    deg = registry.build("degradation", {"name": "pixelate", "final_size": 8})
    with pytest.raises(ValueError, match="too small"):
        deg.degrade(synthetic_images(1, (1, 8, 8)), 0)


def test_gaussian_mask_matches_its_formula_pixel_by_pixel(registry):
    p = {"T": 6, "beta_start": 2.0, "beta_step": 0.5, "centre_y": 0.25, "centre_x": 0.75, "fill": 0.1}
    deg = registry.build("degradation", {"name": "gaussian-mask", **p})
    x = synthetic_images(1, (1, 9, 9))
    z = deg.degrade(x, 4)
    cy, cx = 0.25 * 8, 0.75 * 8
    for i, j in [(0, 0), (2, 6), (4, 4), (8, 8), (1, 7)]:
        m = 1.0
        for step in range(1, 5):
            beta = p["beta_start"] + (step - 1) * p["beta_step"]
            m *= 1 - math.exp(-((i - cy) ** 2 + (j - cx) ** 2) / (2 * beta))
        assert z[0, 0, i, j].item() == pytest.approx(p["fill"] + (x[0, 0, i, j].item() - p["fill"]) * m, abs=1e-12)
    assert z[0, 0, 2, 6].item() == pytest.approx(p["fill"], abs=1e-12)  # the centre pixel is gone at once


def test_gaussian_mask_hole_grows_with_t(registry):
    deg = registry.build("degradation", {"name": "gaussian-mask", "T": 50})
    x = torch.ones(1, 1, 28, 28, dtype=torch.float64)
    masked = [(deg.degrade(x, t) < 0.5).sum().item() for t in (1, 10, 25, 50)]
    assert masked == sorted(masked) and masked[0] < masked[-1]
    assert 0.1 < masked[-1] / (28 * 28) < 0.9


def test_parameters_are_validated_with_the_key_named(registry):
    from coldlab import ColdlabError

    with pytest.raises(ColdlabError, match="pixels_per_step"):
        registry.resolve("degradation", {"name": "pixelate", "pixels_per_step": 0})
    with pytest.raises(ColdlabError, match="centre"):
        registry.resolve("degradation", {"name": "gaussian-mask", "centre_x": 2.0})


def test_the_package_declares_its_entry_point():
    eps = [ep for ep in importlib.metadata.entry_points(group="coldlab") if ep.name == "pixelate"]
    assert eps and eps[0].value == "coldlab_pixelate" and eps[0].dist.name == "coldlab-pixelate"
    assert eps[0].dist.version == coldlab_pixelate.__version__
