"""The autoencoder kind and the built-in ``vae`` (issue 8, latent diffusion's first part)."""

from __future__ import annotations

import pytest
import torch

from coldlab import Autoencoder, ColdlabError
from coldlab.testing import synthetic_images

SHAPE = (1, 16, 16)


def trained_vae(registry, steps=200):
    torch.manual_seed(0)
    vae = registry.build("autoencoder", {"name": "vae", "channels": [16, 32]}, shape=SHAPE)
    x = synthetic_images(64, SHAPE, seed=1, dtype=torch.float32)
    with torch.no_grad():
        untrained = float((vae.decode(vae.encode(x)[0]) - x).square().mean())
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        loss, _ = vae.loss(x[torch.randint(0, 64, (16,), generator=g)], g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return vae.eval(), x, untrained


def test_the_vae_round_trips_a_batch_after_a_short_training(registry):
    """Stated error: after 200 Adam steps on 64 synthetic 16x16 images, the reconstruction's mean squared
    error is below 15% of the images' variance (and far below the untrained one)."""
    vae, x, untrained = trained_vae(registry)
    with torch.no_grad():
        mse = float((vae.decode(vae.encode(x)[0]) - x).square().mean())
    assert mse < 0.15 * float(x.var()) and mse < untrained / 5


def test_the_scale_factor_gives_unit_variance_latents_and_is_saved(registry, tmp_path):
    vae, x, _ = trained_vae(registry, steps=20)
    factor = vae.estimate_scale(x)
    z = vae.to_latent(x)
    assert z.shape == (64, *vae.latent_shape) and float(z.std()) == pytest.approx(1.0, abs=1e-5)
    assert torch.allclose(vae.from_latent(z), vae.decode(vae.encode(x)[0]), atol=1e-5)
    torch.save(vae.state_dict(), tmp_path / "vae.pt")
    again = registry.build("autoencoder", {"name": "vae", "channels": [16, 32]}, shape=SHAPE)
    again.load_state_dict(torch.load(tmp_path / "vae.pt", weights_only=True))
    assert float(again.scale_factor) == pytest.approx(factor)


def test_latent_shapes_follow_the_image_and_odd_sizes_are_cropped(registry):
    vae = registry.build("autoencoder", {"name": "vae", "channels": [8, 8, 8], "latent_channels": 3}, shape=(3, 28, 28))
    assert vae.latent_shape == (3, 4, 4)
    out, mean, logvar = vae(torch.zeros(2, 3, 28, 28))
    assert out.shape == (2, 3, 28, 28) and mean.shape == logvar.shape == (2, 3, 4, 4)
    assert isinstance(vae, Autoencoder)
    with pytest.raises(ColdlabError, match="latent_channels"):
        registry.resolve("autoencoder", {"name": "vae", "latent_channels": 0})
