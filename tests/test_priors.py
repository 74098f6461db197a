import pytest
import torch

from coldlab import ColdlabError, DataContext

CTX = DataContext(shape=(1, 28, 28), load=None)


@pytest.fixture
def digits():
    """Quantised training-like images: k/255 - 0.5, as MNIST is after scaling."""
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (200, 1, 28, 28), generator=g).float() / 255 - 0.5


def test_gaussian_prior(registry):
    z = registry.build("prior", "gaussian").sample(500, (1, 28, 28), generator=torch.Generator().manual_seed(0))
    assert z.shape == (500, 1, 28, 28) and abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01


def test_centre_pixels_histogram_and_samples(registry, digits):
    prior = registry.build("prior", "centre-pixels")
    assert prior.needs_fit
    # make the central pixel (12, 12) always one value, and (13, 13) one of two values
    digits[:, 0, 12, 12] = 100 / 255 - 0.5
    digits[:, 0, 13, 13] = torch.where(torch.arange(200) < 50, 10 / 255 - 0.5, 200 / 255 - 0.5)
    digits[0, 0, 0, 0], digits[1, 0, 0, 0] = -0.5, 0.5  # data range is exactly [-0.5, 0.5]
    prior.fit(digits, None)
    probs = prior.state["probs"]
    assert probs.shape == (16, 256) and torch.allclose(probs.sum(1), torch.ones(16))
    assert probs[0, 100] == 1.0  # pixel (12, 12) is the block's first
    assert probs[5, 10] == pytest.approx(0.25) and probs[5, 200] == pytest.approx(0.75)
    z = prior.sample(400, (1, 28, 28), generator=torch.Generator().manual_seed(0))
    assert z.shape == (400, 1, 28, 28)
    assert torch.allclose(z[:, 0, :7, :7], torch.full((400, 7, 7), 100 / 255 - 0.5))  # nearest-upscaled 7x7 squares
    share = (z[:, 0, 7, 7] - (10 / 255 - 0.5)).abs().lt(1e-6).float().mean()
    assert 0.18 < share < 0.32
    # each of the 16 pixels is independent: the block takes combinations not seen in any image
    zoom = registry.build("degradation", "zoom")
    zoom.prepare(CTX)
    blocks = zoom.degrade(digits, 24)
    assert not any(torch.equal(z[0], b) for b in blocks)


def test_centre_patches_are_real_patches(registry, digits):
    zoom = registry.build("degradation", "zoom")
    zoom.prepare(CTX)
    prior = registry.build("prior", "centre-patches")
    prior.fit(digits, zoom)
    z = prior.sample(10, (1, 28, 28), generator=torch.Generator().manual_seed(0))
    full = zoom.degrade(digits, zoom.T)  # the fully zoomed training images
    for img in z:
        assert any(torch.equal(img, f) for f in full)


def test_flat_gaussian_fits_means_after_full_blur(registry, digits):
    blur = registry.build("degradation", {"name": "blur", "schedule": {"name": "constant", "C": 1.0, "T": 10}})
    digits = digits + torch.linspace(-0.2, 0.2, 200).view(-1, 1, 1, 1)  # vary the image means
    prior = registry.build("prior", {"name": "flat-gaussian", "noise": 0.0})
    prior.fit(digits, blur)
    means = digits.mean(dim=(1, 2, 3))  # circular blur keeps each image's mean
    assert prior.state["mu"].item() == pytest.approx(means.mean().item(), abs=1e-5)
    assert prior.state["sigma"].item() == pytest.approx(means.std().item(), rel=1e-3)
    z = prior.sample(2000, (1, 28, 28), generator=torch.Generator().manual_seed(0))
    assert torch.equal(z, z[:, :, :1, :1].expand_as(z))  # flat without noise
    assert z[:, 0, 0, 0].std().item() == pytest.approx(means.std().item(), rel=0.1)
    noisy = registry.build("prior", {"name": "flat-gaussian", "noise": 0.002})
    noisy.load_state_dict(prior.state_dict())
    zn = noisy.sample(50, (1, 28, 28), generator=torch.Generator().manual_seed(0))
    assert zn.std(dim=(2, 3)).mean().item() == pytest.approx(0.002, rel=0.1)


def test_gmm_recovers_two_clusters(registry):
    class Identity:
        T = 0
        def sample_noise(self, x, g=None): return None  # noqa: E301,E704
        def degrade(self, x, t, noise=None): return x  # noqa: E301,E704
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(400) % 4 == 0  # one cluster of 25%
    data = torch.where(labels.view(-1, 1, 1, 1), 0.4, -0.3) + 0.01 * torch.randn((400, 1, 4, 4), generator=g)
    for cov in ("diag", "full"):
        prior = registry.build("prior", {"name": "gmm", "components": 2, "covariance": cov, "seed": 1})
        prior.fit(data, Identity())
        w, means = prior.state["weights"], prior.state["means"]
        order = means.mean(1).argsort()
        assert torch.allclose(means.mean(1)[order], torch.tensor([-0.3, 0.4], dtype=torch.float64), atol=0.01), cov
        assert torch.allclose(w[order], torch.tensor([0.75, 0.25], dtype=torch.float64), atol=0.01), cov
        z = prior.sample(1000, (1, 4, 4), generator=torch.Generator().manual_seed(0))
        high = (z.mean(dim=(1, 2, 3)) > 0).float().mean()
        assert 0.2 < high < 0.3 and z.shape == (1000, 1, 4, 4)


def test_dataset_image_prior_noise_and_interpolation(registry):
    morph = registry.build("degradation", "morph")
    targets = torch.rand((12, 1, 28, 28), generator=torch.Generator().manual_seed(0)) - 0.5
    morph.set_targets(targets)
    plain = registry.build("prior", "dataset-image")
    plain.fit(None, morph)
    z = plain.sample(5, (1, 28, 28), generator=torch.Generator().manual_seed(0))
    for img in z:
        assert any(torch.equal(img, t) for t in targets)
    mixed = registry.build("prior", {"name": "dataset-image", "mix": 12})
    mixed.fit(None, morph)
    zm = mixed.sample(200, (1, 28, 28), generator=torch.Generator().manual_seed(0))
    assert zm.std() < targets.std() / 2  # averages of 12 images are smoother than any image
    noisy = registry.build("prior", {"name": "dataset-image", "noise": 0.5})
    noisy.fit(None, morph)
    zn = noisy.sample(200, (1, 28, 28), generator=torch.Generator().manual_seed(0))
    assert zn.std().item() == pytest.approx((targets.var() + 0.25).sqrt().item(), rel=0.05)
    with pytest.raises(ColdlabError, match="needs a degradation with target images"):
        registry.build("prior", "dataset-image").fit(None, registry.build("degradation", "gaussian"))


def test_fitted_priors_are_cached(registry, digits, tmp_path, monkeypatch):
    zoom = registry.build("degradation", "zoom")
    zoom.prepare(CTX)
    prior = registry.build("prior", "centre-pixels")
    assert prior.fit_cached(digits, zoom, tmp_path) is False
    first = prior.state_dict()
    again = registry.build("prior", "centre-pixels")
    monkeypatch.setattr(type(again), "fit", lambda *a: pytest.fail("fit ran although a cached state exists"))
    assert again.fit_cached(digits, zoom, tmp_path) is True
    assert all(torch.equal(first[k], again.state_dict()[k]) for k in first)
    monkeypatch.undo()
    # other images or other parameters mean another cache entry
    other = registry.build("prior", {"name": "centre-pixels", "levels": 128})
    assert other.fit_cached(digits, zoom, tmp_path) is False
    assert registry.build("prior", "centre-pixels").fit_cached(digits[:100], zoom, tmp_path) is False
    assert len(list(tmp_path.glob("prior-*.pt"))) == 3
    assert registry.build("prior", "gaussian").fit_cached(digits, zoom, tmp_path) is False  # nothing to fit
