import pytest
import torch

from coldlab import ColdlabError, DataContext
from coldlab.components.sampler import step_sequence
from oracles import ConstantNetwork, OracleNetwork

CTX = DataContext(shape=(1, 28, 28), load=None)


@pytest.fixture
def x():
    g = torch.Generator().manual_seed(7)
    return (torch.rand((4, 1, 28, 28), generator=g) - 0.5).double()


def gaussian(registry, target="eps", schedule=None):
    return registry.build("degradation", {"name": "gaussian", "target": target, "schedule": schedule or {"name": "linear", "T": 200}})


def morph(registry):
    deg = registry.build("degradation", {"name": "morph", "schedule": {"name": "cosine", "T": 60, "max_beta": 0.999}})
    deg.set_targets((torch.rand((10, 1, 28, 28), generator=torch.Generator().manual_seed(1)) - 0.5).double())
    return deg


def cold(registry, name):
    if name == "zoom":
        deg = registry.build("degradation", "zoom")
        deg.prepare(CTX)
        return deg
    return registry.build("degradation", {"name": "blur", "schedule": {"name": "constant", "C": 1.0, "T": 30}})


def start(deg, x, seed=0):
    g = torch.Generator().manual_seed(seed)
    return deg.degrade(x, deg.T, deg.sample_noise(x, g))


@pytest.mark.parametrize("schedule", [{"name": "linear", "T": 200}, {"name": "cosine", "T": 200, "max_beta": 0.02},
                                      {"name": "cosine-plain", "T": 200}, {"name": "inverse-linear", "T": 200}])
def test_ddpm_without_noise_returns_the_image_with_an_oracle(registry, x, schedule):
    deg = gaussian(registry, schedule=schedule)
    sampler = registry.build("sampler", {"name": "ddpm", "noise": False})
    net = OracleNetwork(x, deg)
    out = sampler.sample(net, deg, start(deg, x)).images
    assert torch.allclose(out, x, atol=1e-9)
    assert net.calls == list(range(200, 0, -1))  # every step, T down to 1
    # from a pure-noise start point and from an intermediate step (conditional reconstruction)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(5), dtype=x.dtype)
    assert torch.allclose(sampler.sample(net, deg, noise).images, x, atol=1e-9)
    assert torch.allclose(sampler.sample(net, deg, deg.degrade(x, 37, noise), t_start=37).images, x, atol=1e-9)
    # respaced on 20 steps it still lands on x exactly
    respaced = registry.build("sampler", {"name": "ddpm", "noise": False, "steps": 20})
    net.calls.clear()
    assert torch.allclose(respaced.sample(net, deg, noise).images, x, atol=1e-9)
    assert len(net.calls) == 20


@pytest.mark.parametrize("target", ["eps", "x0", "v"])
@pytest.mark.parametrize("steps", [None, 10, 50])
def test_ddim_eta0_returns_the_image_with_an_oracle(registry, x, target, steps):
    deg = gaussian(registry, target=target)
    sampler = registry.build("sampler", {"name": "ddim", "steps": steps, "eta": 0.0})
    net = OracleNetwork(x, deg)
    assert torch.allclose(sampler.sample(net, deg, start(deg, x)).images, x, atol=1e-8)
    assert len(net.calls) == (steps or 200)
    assert torch.allclose(sampler.sample(net, deg, start(deg, x, 1)[:, :], t_start=91).images, x, atol=1e-8)


def test_ddim_works_for_morph_and_keeps_the_morph_target(registry, x):
    deg = morph(registry)
    sampler = registry.build("sampler", {"name": "ddim", "steps": 12})
    m = deg.sample_noise(x, torch.Generator().manual_seed(3))
    result = sampler.sample(OracleNetwork(x, deg), deg, deg.degrade(x, deg.T, m), trajectory_every=1)
    assert torch.allclose(result.images, x, atol=1e-8)
    for t, z in result.trajectory:  # every intermediate is exactly D(x, t, m)
        assert torch.allclose(z, deg.degrade(x, t, m), atol=1e-8)


@pytest.mark.parametrize("kind", ["zoom", "blur", "gaussian", "morph"])
@pytest.mark.parametrize("sampler_name", ["cold-improved", "cold-naive"])
def test_cold_samplers_return_the_image_with_an_oracle(registry, x, kind, sampler_name):
    deg = {"gaussian": lambda: gaussian(registry, target="x0"), "morph": lambda: morph(registry)}.get(kind, lambda: cold(registry, kind))()
    sampler = registry.build("sampler", sampler_name)
    out = sampler.sample(OracleNetwork(x, deg), deg, start(deg, x))
    assert torch.allclose(out.images, x, atol=1e-9)


def test_cold_improved_follows_its_rule(registry, x):
    deg = cold(registry, "zoom")
    c = (torch.rand((1, 1, 28, 28), generator=torch.Generator().manual_seed(2)) - 0.5).double()
    sampler = registry.build("sampler", {"name": "cold-improved", "steps": 1})
    z = start(deg, x)
    # with steps = 1 the sampler makes exactly one move, from T to 0
    out = sampler.sample(ConstantNetwork(c), deg, z).images
    expected = z - deg.degrade(c.expand_as(z), deg.T) + deg.degrade(c.expand_as(z), 0)
    assert torch.allclose(out, expected)
    # a full run: each move is z - D(c, s) + D(c, s - 1); the sum telescopes to z - D(c, T) + c
    full = registry.build("sampler", "cold-improved").sample(ConstantNetwork(c), deg, z).images
    assert torch.allclose(full, expected, atol=1e-12)


def test_cold_naive_follows_its_rule(registry, x):
    deg = cold(registry, "blur")
    c = (torch.rand((1, 1, 28, 28), generator=torch.Generator().manual_seed(2)) - 0.5).double()
    result = registry.build("sampler", "cold-naive").sample(ConstantNetwork(c), deg, start(deg, x), trajectory_every=5)
    for t, z in result.trajectory[1:]:
        assert torch.allclose(z, deg.degrade(c.expand_as(z), t))  # z_{s-1} = D(x_hat, s-1), nothing of z_s kept
    assert torch.allclose(result.images, c.expand_as(x))


def test_direct_is_one_network_call(registry, x):
    deg = cold(registry, "zoom")
    net = OracleNetwork(x, deg)
    out = registry.build("sampler", "direct").sample(net, deg, start(deg, x))
    assert net.calls == [deg.T] and torch.equal(out.images, x)
    c = torch.zeros((1, 1, 28, 28), dtype=x.dtype)
    assert torch.equal(registry.build("sampler", "direct").sample(ConstantNetwork(c), deg, start(deg, x), t_start=5).images, c.expand_as(x))


def test_ddpm_step_matches_the_update_rule_and_its_noise_is_seeded(registry, x):
    deg = gaussian(registry)
    c = torch.full((1, 1, 28, 28), 0.3, dtype=x.dtype)  # the predicted eps
    z = start(deg, x)
    sampler = registry.build("sampler", "ddpm")
    one = sampler.step(ConstantNetwork(c), deg, z, 200, 199, y=None, generator=torch.Generator().manual_seed(0))
    beta, ab = float(deg.schedule.beta[200]), float(deg.schedule.alpha_bar[200])
    mean = (z - beta / (1 - ab) ** 0.5 * c) / (1 - beta) ** 0.5
    noise = torch.randn(z.shape, generator=torch.Generator().manual_seed(0), dtype=z.dtype)
    assert torch.allclose(one, mean + beta**0.5 * noise)
    a = sampler.sample(ConstantNetwork(c), deg, z, generator=torch.Generator().manual_seed(1)).images
    b = sampler.sample(ConstantNetwork(c), deg, z, generator=torch.Generator().manual_seed(1)).images
    d = sampler.sample(ConstantNetwork(c), deg, z, generator=torch.Generator().manual_seed(2)).images
    assert torch.equal(a, b) and not torch.allclose(a, d)


def test_ddpm_posterior_variance_is_smaller(registry, x):
    deg = gaussian(registry)
    z = torch.zeros_like(x)
    c = torch.zeros((1, 1, 28, 28), dtype=x.dtype)
    out = {}
    for variance in ("beta", "posterior"):
        s = registry.build("sampler", {"name": "ddpm", "variance": variance})
        out[variance] = s.step(ConstantNetwork(c), deg, z, 10, 9, y=None, generator=torch.Generator().manual_seed(0))
    ratio = out["posterior"].std() / out["beta"].std()
    ab, ab_prev = float(deg.schedule.alpha_bar[10]), float(deg.schedule.alpha_bar[9])
    assert float(ratio) == pytest.approx(((1 - ab_prev) / (1 - ab)) ** 0.5, rel=1e-6)


def test_ddim_eta_one_adds_noise(registry, x):
    deg = gaussian(registry)
    sampler = registry.build("sampler", {"name": "ddim", "steps": 10, "eta": 1.0})
    net = OracleNetwork(x, deg)
    # even stochastic, a perfect network pins x0, and the last step (to t = 0) has sigma = 0
    out = sampler.sample(net, deg, start(deg, x), generator=torch.Generator().manual_seed(0)).images
    assert torch.allclose(out, x, atol=1e-8)
    c = torch.zeros((1, 1, 28, 28), dtype=x.dtype)
    a = sampler.step(ConstantNetwork(c), deg, start(deg, x), 200, 180, y=None, generator=torch.Generator().manual_seed(0))
    b = registry.build("sampler", {"name": "ddim", "steps": 10}).step(ConstantNetwork(c), deg, start(deg, x), 200, 180, y=None, generator=None)
    assert not torch.allclose(a, b)


def test_step_sequences_and_trajectories(registry, x):
    assert step_sequence(1000, 10) == [1000, 900, 800, 700, 600, 500, 400, 300, 200, 100, 0]
    assert step_sequence(5, None) == [5, 4, 3, 2, 1, 0]
    assert step_sequence(3, 10) == [3, 2, 1, 0]
    deg = cold(registry, "zoom")
    result = registry.build("sampler", "cold-improved").sample(OracleNetwork(x, deg), deg, start(deg, x), trajectory_every=3)
    ts = [t for t, _ in result.trajectory]
    assert ts == [24, 21, 18, 15, 12, 9, 6, 3, 0]
    for t, z in result.trajectory:
        assert torch.allclose(z, deg.degrade(x, t), atol=1e-12)


def test_samplers_refuse_degradations_they_do_not_fit(registry):
    zoom = cold(registry, "zoom")
    with pytest.raises(ColdlabError, match="needs a Gaussian-noise degradation"):
        registry.build("sampler", "ddpm").check(zoom)
    with pytest.raises(ColdlabError, match="mixes noise in by a schedule"):
        registry.build("sampler", "ddim").check(cold(registry, "blur"))
    with pytest.raises(ColdlabError, match="eta > 0"):
        registry.build("sampler", {"name": "ddim", "eta": 0.5}).check(morph(registry))
    with pytest.raises(ColdlabError, match="Gaussian-noise"):
        registry.build("sampler", "ddpm").sample(torch.nn.Identity(), zoom, torch.zeros(1, 1, 28, 28))


def test_ddim_clips_x0_estimates_to_the_data_range_by_default(registry, x):
    from coldlab.components.dataset import DataContext

    deg = gaussian(registry)
    c = torch.full((1, 1, 28, 28), 3.0, dtype=x.dtype)  # a wildly wrong eps
    z = start(deg, x)

    def ddim(data_range, **params):
        sampler = registry.build("sampler", {"name": "ddim", "steps": 1, **params})
        sampler.prepare(DataContext(shape=(1, 28, 28), load=lambda name, split: (x, x), value_range=data_range))
        return sampler.sample(ConstantNetwork(c), deg, z).images

    mnist = ddim((-0.5, 0.5))  # MNIST's range: the x0 estimate is clamped to it, not to +-1
    assert mnist.abs().max() <= 0.5 and torch.equal(mnist, ddim(None, clip_value=0.5))
    wide = ddim((-1.0, 1.0))
    assert 0.5 < wide.abs().max() <= 1.0 and torch.equal(wide, ddim(None, clip_value=1.0))
    assert ddim((-0.5, 0.5), clip_x0=False).abs().max() > 5
    assert ddim(None).abs().max() > 5  # latents: no range, no clipping
