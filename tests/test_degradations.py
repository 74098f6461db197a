import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms import InterpolationMode
from torchvision.transforms.functional import resized_crop

from coldlab import ColdlabError, DataContext
from coldlab.default_plugins.blur import gaussian_kernel


@pytest.fixture
def counting_image():
    """A 28x28 image whose pixel (r, c) holds r * 28 + c: every pixel is identifiable."""
    return torch.arange(28 * 28, dtype=torch.float32).reshape(1, 1, 28, 28)


def all_degradations(registry):
    morph = registry.build("degradation", {"name": "morph", "schedule": {"name": "linear", "T": 50}})
    g = torch.Generator().manual_seed(1)
    morph.set_targets(torch.rand((20, 1, 28, 28), generator=g) - 0.5)
    zoom = registry.build("degradation", "zoom")
    zoom.prepare(DataContext(shape=(1, 28, 28), load=None))
    return {
        "gaussian": registry.build("degradation", {"name": "gaussian", "schedule": {"name": "cosine", "T": 50}}),
        "morph": morph,
        "zoom": zoom,
        "blur": registry.build("degradation", {"name": "blur", "schedule": {"name": "constant", "C": 1.0, "T": 20}}),
    }


def test_every_degradation_is_identity_at_zero_and_keeps_shapes(registry, images):
    for name, deg in all_degradations(registry).items():
        noise = deg.sample_noise(images)
        assert torch.equal(deg.degrade(images, 0, noise), images), name
        z = deg.degrade(images, torch.randint(1, 3, (images.shape[0],)), noise)
        assert z.shape == images.shape and z.dtype == images.dtype, name
        zt = deg.degrade(images, deg.T, noise)
        assert torch.isfinite(zt).all(), name
        assert not torch.allclose(zt, images), name


def test_deterministic_degradations_stay_in_the_data_range(registry, images):
    degs = all_degradations(registry)
    for name in ("zoom", "blur"):
        z = degs[name].degrade(images, degs[name].T)
        assert z.min() >= images.min() - 1e-6 and z.max() <= images.max() + 1e-6, name


def test_zoom_pixel_exact_at_1_2_and_T(registry, counting_image):
    zoom = registry.build("degradation", "zoom")
    img = counting_image
    z1 = zoom.degrade(img, 1)[0, 0]
    # t = 1 drops the top row and left column: rows/cols 1..27 resized 27 -> 28 by nearest
    idx27 = [1 + (i * 27) // 28 for i in range(28)]
    assert torch.equal(z1, img[0, 0][idx27][:, idx27])
    assert z1[0, 0] == 1 * 28 + 1 and z1[27, 27] == 27 * 28 + 27
    # t = 2 also drops the bottom row and right column: rows/cols 1..26
    z2 = zoom.degrade(img, 2)[0, 0]
    idx26 = [1 + (i * 26) // 28 for i in range(28)]
    assert torch.equal(z2, img[0, 0][idx26][:, idx26])
    assert z2.max() == 26 * 28 + 26
    # t = T = 24: the central 4x4 block (rows/cols 12..15), each pixel a 7x7 square
    assert zoom.T == 24
    z24 = zoom.degrade(img, 24)[0, 0]
    centre = img[0, 0, 12:16, 12:16]
    assert torch.equal(z24, centre.repeat_interleave(7, 0).repeat_interleave(7, 1))


def test_zoom_matches_torchvision_resized_crop_at_every_step(registry, images):
    zoom = registry.build("degradation", "zoom")
    for t in range(0, 25):
        top = (t + 1) // 2
        expected = resized_crop(images, top, top, 28 - t, 28 - t, [28, 28], interpolation=InterpolationMode.NEAREST)
        assert torch.equal(zoom.degrade(images, t), expected), t


def test_zoom_T_follows_the_image_size(registry):
    zoom = registry.build("degradation", {"name": "zoom", "final_size": 4})
    with pytest.raises(AttributeError, match="image size"):
        zoom.T
    zoom.prepare(DataContext(shape=(3, 32, 32), load=None))
    assert zoom.T == 28
    with pytest.raises(ValueError, match="too small"):
        registry.build("degradation", {"name": "zoom", "final_size": 8}).set_image_size(6, 6)


def test_zoom_batched_over_t(registry, images):
    zoom = registry.build("degradation", "zoom")
    t = torch.tensor([0, 3, 7, 12, 20, 24])
    batched = zoom.degrade(images, t)
    for i, ti in enumerate(t.tolist()):
        assert torch.equal(batched[i], zoom.degrade(images[i : i + 1], ti)[0])


def test_blur_equals_repeated_single_kernel_blurring(registry, images):
    blur = registry.build("degradation", {"name": "blur", "schedule": {"name": "linear", "T": 6, "beta_min": 0.5, "beta_max": 2.0}})
    x = images.double()
    z = x
    for s in range(1, 7):
        k = gaussian_kernel(11, float(blur.schedule.beta[s])).expand(1, 1, 11, 11)
        z = F.conv2d(F.pad(z, (5, 5, 5, 5), mode="circular"), k)
        assert torch.allclose(blur.degrade(x, s), z, atol=1e-12), s
    # a batch with different t per image equals blurring each image on its own
    t = torch.tensor([0, 1, 2, 4, 5, 6])
    batched = blur.degrade(x, t)
    for i, ti in enumerate(t.tolist()):
        assert torch.allclose(batched[i], blur.degrade(x[i : i + 1], ti)[0], atol=1e-12)


def test_blur_kernel_has_the_schedule_variance_and_keeps_the_mean(registry, images):
    k = gaussian_kernel(41, 2.0)
    offsets = torch.arange(41, dtype=torch.float64) - 20
    assert float((k.sum(1) * offsets**2).sum()) == pytest.approx(2.0, rel=1e-6)
    blur = registry.build("degradation", "blur")  # report 002: beta = 1, T = 100, kernel 11
    assert blur.T == 100 and blur.params.kernel_size == 11
    z = blur.degrade(images, 100)
    assert torch.allclose(z.mean(dim=(2, 3)), images.mean(dim=(2, 3)), atol=1e-5)
    assert z.std(dim=(2, 3)).max() < 0.05 * images.std(dim=(2, 3)).min()  # nearly flat


def test_gaussian_matches_closed_form_and_targets(registry, images):
    for target in ("eps", "x0", "v"):
        deg = registry.build("degradation", {"name": "gaussian", "schedule": {"name": "linear", "T": 100}, "target": target})
        x = images.double()
        noise = deg.sample_noise(x, torch.Generator().manual_seed(3))
        t = torch.tensor([1, 10, 50, 70, 99, 100])
        ab = deg.schedule.alpha_bar[t].view(-1, 1, 1, 1)
        expected = ab.sqrt() * x + (1 - ab).sqrt() * noise
        z = deg.degrade(x, t, noise)
        assert torch.allclose(z, expected, atol=1e-12)
        target_value = deg.training_target(x, t, noise)
        want = {"eps": noise, "x0": x, "v": ab.sqrt() * noise - (1 - ab).sqrt() * x}[target]
        assert torch.allclose(target_value, want, atol=1e-12)
        # the network's ideal output maps back to x0 and eps
        assert torch.allclose(deg.x0_from_output(z, t, target_value), x, atol=1e-9)
        assert torch.allclose(deg.eps_from_output(z, t, target_value), noise, atol=1e-9)


def test_gaussian_noise_is_standard_normal(registry):
    deg = registry.build("degradation", "gaussian")
    n = deg.sample_noise(torch.zeros(64, 1, 28, 28), torch.Generator().manual_seed(0))
    assert abs(n.mean()) < 0.01 and abs(n.std() - 1) < 0.01


def test_training_batch_draws_t_in_1_to_T(registry, images):
    deg = registry.build("degradation", {"name": "gaussian", "schedule": {"name": "linear", "T": 5}})
    big = images.repeat(50, 1, 1, 1)
    z, t, target = deg.training_batch(big, torch.Generator().manual_seed(0))
    assert t.min() == 1 and t.max() == 5 and z.shape == big.shape == target.shape


def test_morph_moves_towards_a_target_image(registry, images):
    morph = registry.build("degradation", {"name": "morph", "schedule": {"name": "cosine", "T": 100, "max_beta": 0.999}})
    with pytest.raises(ColdlabError, match="no target images"):
        morph.sample_noise(images)
    targets = torch.rand((30, 1, 28, 28)) - 0.5
    morph.prepare(DataContext(shape=(1, 28, 28), load=lambda name, split: (targets, torch.zeros(30, dtype=torch.long))))
    m = morph.sample_noise(images, torch.Generator().manual_seed(0))
    for img in m:  # every drawn noise is one of the target images
        assert any(torch.equal(img, tgt) for tgt in targets)
    zT = morph.degrade(images, morph.T, m)
    assert torch.allclose(zT, m, atol=1e-3)
    half = morph.degrade(images, 50, m)
    ab = float(morph.schedule.alpha_bar[50])
    assert torch.allclose(half, ab**0.5 * images + (1 - ab) ** 0.5 * m, atol=1e-6)


def test_morph_rejects_a_target_dataset_of_another_shape(registry):
    morph = registry.build("degradation", "morph")
    ctx = DataContext(shape=(1, 28, 28), load=lambda name, split: (torch.zeros(4, 3, 32, 32), torch.zeros(4)))
    with pytest.raises(ColdlabError, match="same size and channels"):
        morph.prepare(ctx)
