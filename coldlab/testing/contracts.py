"""Contract tests for components: subclass one in a plugin's tests to get the standard checks.

Like diffusers' scheduler test mixins: a subclass names the component (``spec``, a name or a
table as in ``experiments.toml``) and the plugin module that registers it (``plugins``); pytest
collects the subclass (name it ``Test...``) and runs every ``test_*`` method of the contract.

    from coldlab.testing import DegradationContract
    import coldlab_pixelate

    class TestPixelate(DegradationContract):
        plugins = (coldlab_pixelate,)
        spec = {"name": "pixelate", "pixels_per_step": 2}

Checks run in float64 on small synthetic images (:func:`coldlab.testing.synthetic_images`) and
compare with exact known answers: D(x, 0) = x, a perfect (oracle) network makes the sampler
return the original image, a schedule matches the formula the subclass states. Device-move
checks compare an accelerator with the CPU and are skipped, with that reason, on a CPU-only machine.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, ClassVar, cast

import pytest
import torch

from coldlab.plugins import Registry
from coldlab.testing.helpers import accelerators, data_context, registry_with, synthetic_images
from coldlab.testing.oracles import ConstantNetwork, OracleNetwork

Spec = Any  # a component name or table


class ComponentContract:
    """What every contract shares: which component, from which plugin, on which images."""

    kind: ClassVar[str] = ""
    spec: ClassVar[Spec] = None
    plugins: ClassVar[tuple[Any, ...]] = ()
    shape: ClassVar[tuple[int, int, int]] = (1, 16, 16)
    batch: ClassVar[int] = 4
    value_range: ClassVar[tuple[float, float]] = (-0.5, 0.5)
    atol: ClassVar[float] = 1e-8

    @pytest.fixture
    def registry(self) -> Registry:
        if self.spec is None:
            pytest.fail(f"{type(self).__name__} must set spec (the component's name or table)")
        return registry_with(*self.plugins)

    @pytest.fixture
    def x(self) -> torch.Tensor:
        return synthetic_images(self.batch, self.shape, value_range=self.value_range)

    def build(self, registry: Registry, kind: str | None = None, spec: Spec = None, **context: Any) -> Any:
        component = registry.build(kind or self.kind, self.spec if spec is None else spec, **context)
        if (kind or self.kind) == "degradation":
            component.prepare(data_context(self.shape))
        return component

    @staticmethod
    def accelerator() -> str:
        found = accelerators()
        if not found:
            pytest.skip("no accelerator on this machine (CUDA or MPS): device moves are checked where one is")
        return found[0]


class ScheduleContract(ComponentContract):
    """A noise schedule: indexing, the alpha_bar product, its formula, use in a Gaussian degradation.

    Subclasses implement :meth:`expected_beta` (beta_1 .. beta_T from the formula, float64).
    """

    kind = "schedule"

    def expected_beta(self, params: Any) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define expected_beta(params): beta_1..beta_T by the formula")

    def test_beta_and_alpha_bar_are_indexed_by_t_from_0(self, registry: Registry) -> None:
        s = self.build(registry)
        assert s.T >= 1
        assert s.beta.shape == s.alpha_bar.shape == (s.T + 1,)
        assert s.beta.dtype == s.alpha_bar.dtype == torch.float64
        assert s.beta[0] == 0 and s.alpha_bar[0] == 1
        assert torch.isfinite(s.beta).all() and (s.beta >= 0).all()

    def test_alpha_bar_is_the_product_of_one_minus_beta(self, registry: Registry) -> None:
        s = self.build(registry)
        assert torch.allclose(s.alpha_bar, torch.cumprod(1 - s.beta, 0), rtol=0, atol=1e-12)
        assert (s.alpha_bar[1:] <= s.alpha_bar[:-1] + 1e-15).all()

    def test_matches_its_formula(self, registry: Registry) -> None:
        s = self.build(registry)
        expected = torch.as_tensor(self.expected_beta(s.params), dtype=torch.float64)
        assert expected.shape == (s.T,)
        gap = (s.beta[1:] - expected).abs().max().item()
        assert torch.allclose(s.beta[1:], expected, rtol=1e-10, atol=1e-12), f"beta is off its formula by up to {gap:.3g}"

    def test_same_parameters_same_schedule(self, registry: Registry) -> None:
        a, b = self.build(registry), self.build(registry)
        assert torch.equal(a.beta, b.beta)

    def test_summary_has_the_arrays_and_headlines(self, registry: Registry) -> None:
        s = self.build(registry)
        summary = s.summary()
        assert len(summary["beta"]) == len(summary["alpha_bar"]) == s.T + 1 and summary["T"] == s.T
        assert summary["alpha_bar_T"] == pytest.approx(float(s.alpha_bar[-1]))

    def test_drives_a_gaussian_degradation_and_ddim_inverts_it(self, registry: Registry, x: torch.Tensor) -> None:
        deg = registry.build("degradation", {"name": "gaussian", "schedule": self.spec})
        noise = deg.sample_noise(x, torch.Generator().manual_seed(0))
        z = deg.degrade(x, deg.T, noise)
        expected = deg.schedule.alpha_bar[-1].sqrt() * x + (1 - deg.schedule.alpha_bar[-1]).sqrt() * noise
        assert torch.allclose(z, expected, atol=1e-12)
        out = registry.build("sampler", {"name": "ddim", "eta": 0.0}).sample(OracleNetwork(x, deg), deg, z)
        assert torch.allclose(out.images, x, atol=1e-6)


class DegradationContract(ComponentContract):
    """A forward process D(x, t): identity at 0, shapes, batching over t, seeds, devices, oracle sampling.

    ``sampler``: the sampler that inverts it with a perfect network (default: ``ddim`` with eta 0
    for Gaussian noise, ``cold-improved`` otherwise).
    """

    kind = "degradation"
    sampler: ClassVar[Spec] = None

    def steps(self, deg: Any) -> list[int]:
        return sorted({1, max(1, deg.T // 2), deg.T})

    def noise(self, deg: Any, x: torch.Tensor, seed: int = 0) -> torch.Tensor | None:
        return cast("torch.Tensor | None", deg.sample_noise(x, torch.Generator().manual_seed(seed)))

    def test_identity_at_step_zero(self, registry: Registry, x: torch.Tensor) -> None:
        deg = self.build(registry)
        assert torch.equal(deg.degrade(x, 0, self.noise(deg, x)), x)

    def test_keeps_shape_and_dtype_at_every_step(self, registry: Registry, x: torch.Tensor) -> None:
        deg = self.build(registry)
        assert deg.T >= 1 and deg.target in ("eps", "x0", "v")
        for dtype in (torch.float32, torch.float64):
            xd = x.to(dtype)
            for t in range(deg.T + 1):
                z = deg.degrade(xd, t, self.noise(deg, xd))
                assert z.shape == x.shape and z.dtype == dtype and torch.isfinite(z).all(), f"t={t}, {dtype}"

    def test_degrades_something(self, registry: Registry, x: torch.Tensor) -> None:
        deg = self.build(registry)
        assert not torch.allclose(deg.degrade(x, deg.T, self.noise(deg, x)), x), "D(x, T) == x: nothing is degraded"

    def test_one_step_per_image_equals_one_image_at_a_time(self, registry: Registry, x: torch.Tensor) -> None:
        deg = self.build(registry)
        t = torch.tensor([(i * 7) % (deg.T + 1) for i in range(x.shape[0])])
        noise = self.noise(deg, x)
        batched = deg.degrade(x, t, noise)
        for i in range(x.shape[0]):
            one = deg.degrade(x[i : i + 1], int(t[i]), None if noise is None else noise[i : i + 1])
            assert torch.allclose(batched[i : i + 1], one, atol=1e-12), f"image {i}, t={int(t[i])}"

    def test_same_seed_same_result(self, registry: Registry, x: torch.Tensor) -> None:
        deg = self.build(registry)
        a, b = deg.degrade(x, deg.T, self.noise(deg, x, 3)), deg.degrade(x, deg.T, self.noise(deg, x, 3))
        assert torch.equal(a, b)
        z1, t1, y1 = deg.training_batch(x, torch.Generator().manual_seed(5))
        z2, t2, y2 = deg.training_batch(x, torch.Generator().manual_seed(5))
        assert torch.equal(z1, z2) and torch.equal(t1, t2) and torch.equal(y1, y2)
        assert t1.min() >= 1 and t1.max() <= deg.T and y1.shape == x.shape

    def test_noise_is_what_explains_z(self, registry: Registry, x: torch.Tensor) -> None:
        deg = self.build(registry)
        noise = self.noise(deg, x)
        if deg.noise_kind is None:
            assert noise is None, "a degradation with noise_kind None must not draw noise"
            return
        for t in self.steps(deg):
            z = deg.degrade(x, t, noise)
            assert noise is not None and torch.allclose(cast(torch.Tensor, deg.estimate_noise(z, x, t)), noise, atol=1e-6), f"t={t}"

    def test_device_move_gives_the_cpu_result(self, registry: Registry, x: torch.Tensor) -> None:
        device = self.accelerator()
        deg = self.build(registry)
        noise = self.noise(deg, x.float())
        t = torch.arange(x.shape[0]) % (deg.T + 1)
        cpu = deg.degrade(x.float(), t, noise)
        moved = deg.degrade(x.float().to(device), t.to(device), None if noise is None else noise.to(device))
        assert moved.device.type == torch.device(device).type
        assert torch.allclose(moved.cpu(), cpu, atol=1e-5)

    def oracle_sampler(self, registry: Registry, deg: Any) -> Any:
        spec = self.sampler or ({"name": "ddim", "eta": 0.0} if deg.noise_kind == "gaussian" else "cold-improved")
        return registry.build("sampler", spec)

    def test_a_perfect_network_makes_the_sampler_return_the_image(self, registry: Registry, x: torch.Tensor) -> None:
        deg = self.build(registry)
        sampler = self.oracle_sampler(registry, deg)
        for t_start in sorted({deg.T, max(1, deg.T // 2)}):
            z = deg.degrade(x, t_start, self.noise(deg, x, 1))
            out = sampler.sample(OracleNetwork(x, deg), deg, z, t_start=t_start)
            assert torch.allclose(out.images, x, atol=self.atol), f"from t={t_start}"


class PriorContract(ComponentContract):
    """A start-point distribution: shapes, seeds, what it learns (state round trip and disk cache)."""

    kind = "prior"
    degradation: ClassVar[Spec] = {"name": "gaussian", "schedule": {"name": "linear", "T": 20}}
    train_images: ClassVar[int] = 64

    def fitted(self, registry: Registry) -> Any:
        prior = self.build(registry)
        deg = self.build(registry, "degradation", self.degradation)
        if prior.needs_fit:
            prior.fit(synthetic_images(self.train_images, self.shape, seed=2, value_range=self.value_range, dtype=torch.float32), deg)
        return prior, deg

    def draw(self, prior: Any, n: int = 8, seed: int = 0, device: str = "cpu") -> torch.Tensor:
        return cast("torch.Tensor", prior.sample(n, self.shape, generator=torch.Generator().manual_seed(seed), device=device))

    def test_samples_have_the_image_shape(self, registry: Registry) -> None:
        prior, _ = self.fitted(registry)
        z = self.draw(prior)
        assert z.shape == (8, *self.shape) and z.is_floating_point() and torch.isfinite(z).all()

    def test_same_seed_same_samples_other_seed_others(self, registry: Registry) -> None:
        prior, _ = self.fitted(registry)
        assert torch.equal(self.draw(prior, seed=4), self.draw(prior, seed=4))
        assert not torch.equal(self.draw(prior, seed=4), self.draw(prior, seed=5))

    def test_state_round_trip_gives_the_same_samples(self, registry: Registry) -> None:
        prior, _ = self.fitted(registry)
        again = self.build(registry)
        again.load_state_dict(prior.state_dict())
        assert torch.equal(self.draw(again, seed=6), self.draw(prior, seed=6))

    def test_fit_is_cached_on_disk(self, registry: Registry, tmp_path: Path) -> None:
        prior = self.build(registry)
        deg = self.build(registry, "degradation", self.degradation)
        images = synthetic_images(self.train_images, self.shape, seed=2, value_range=self.value_range, dtype=torch.float32)
        assert prior.fit_cached(images, deg, tmp_path) is False
        again = self.build(registry)
        assert again.fit_cached(images, deg, tmp_path) is prior.needs_fit
        assert torch.equal(self.draw(again, seed=7), self.draw(prior, seed=7))

    def test_device_move(self, registry: Registry) -> None:
        device = self.accelerator()
        prior, _ = self.fitted(registry)
        assert self.draw(prior, device=device).device.type == torch.device(device).type


class NetworkContract(ComponentContract):
    """A network: output shape, labels, gradients, seeded construction, checkpoints, devices."""

    kind = "network"
    num_classes: ClassVar[int] = 0

    def make(self, registry: Registry, seed: int = 0) -> Any:
        torch.manual_seed(seed)
        return registry.build("network", self.spec, shape=self.shape, num_classes=self.num_classes)

    def inputs(self, net: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        g = torch.Generator().manual_seed(0)
        z = torch.randn((self.batch, *self.shape), generator=g)
        t_frac = torch.rand(self.batch, generator=g)
        y = torch.arange(self.batch) % self.num_classes if getattr(net.params, "conditional", False) else None
        return z, t_frac, y

    def forward(self, net: Any, z: torch.Tensor, t_frac: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return cast(torch.Tensor, net(z, t_frac, y))  # every network takes y (None without labels): the engine always passes it

    def test_output_has_the_input_shape(self, registry: Registry) -> None:
        net = self.make(registry)
        z, t_frac, y = self.inputs(net)
        out = self.forward(net, z, t_frac, y)
        assert out.shape == z.shape and torch.isfinite(out).all()

    def test_output_depends_on_t(self, registry: Registry) -> None:
        net = self.make(registry)
        z, t_frac, y = self.inputs(net)
        a, b = self.forward(net, z, torch.zeros_like(t_frac), y), self.forward(net, z, torch.ones_like(t_frac), y)
        assert not torch.allclose(a, b), "the network ignores t"

    def test_every_parameter_gets_a_gradient(self, registry: Registry) -> None:
        net = self.make(registry)
        z, t_frac, y = self.inputs(net)
        self.forward(net, z, t_frac, y).square().mean().backward()  # type: ignore[no-untyped-call]
        missing = [n for n, p in net.named_parameters() if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
        assert not missing, f"no (finite) gradient for {missing}"

    def test_same_seed_same_network(self, registry: Registry) -> None:
        a, b = self.make(registry, 3), self.make(registry, 3)
        z, t_frac, y = self.inputs(a)
        a.eval(), b.eval()
        assert torch.equal(self.forward(a, z, t_frac, y), self.forward(b, z, t_frac, y))

    def test_checkpoint_round_trip(self, registry: Registry) -> None:
        net, other = self.make(registry, 1), self.make(registry, 2)
        buffer = io.BytesIO()
        torch.save(net.state_dict(), buffer)
        buffer.seek(0)
        other.load_state_dict(torch.load(buffer, weights_only=True))
        net.eval(), other.eval()
        z, t_frac, y = self.inputs(net)
        assert torch.equal(self.forward(net, z, t_frac, y), self.forward(other, z, t_frac, y))

    def test_device_move_gives_the_cpu_result(self, registry: Registry) -> None:
        device = self.accelerator()
        net = self.make(registry).eval()
        z, t_frac, y = self.inputs(net)
        cpu = self.forward(net, z, t_frac, y)
        net.to(device)
        moved = self.forward(net, z.to(device), t_frac.to(device), None if y is None else y.to(device))
        assert torch.allclose(moved.cpu(), cpu, atol=1e-3, rtol=1e-3)


class SamplerContract(ComponentContract):
    """A reverse process: oracle sampling (from T and from the middle), seeds, trajectories.

    ``degradation``: what it samples (default: Gaussian noise, linear schedule, T = 50).
    ``oracle_spec``: the sampler's table for the exact-recovery check when its default is
    stochastic (for example DDPM with ``noise = false``); default ``spec``.
    """

    kind = "sampler"
    degradation: ClassVar[Spec] = {"name": "gaussian", "schedule": {"name": "linear", "T": 50}}
    oracle_spec: ClassVar[Spec] = None

    def start(self, deg: Any, x: torch.Tensor, seed: int = 0, t: int | None = None) -> torch.Tensor:
        noise = deg.sample_noise(x, torch.Generator().manual_seed(seed))
        return cast(torch.Tensor, deg.degrade(x, deg.T if t is None else t, noise))

    def test_a_perfect_network_makes_it_return_the_image(self, registry: Registry, x: torch.Tensor) -> None:
        deg = self.build(registry, "degradation", self.degradation)
        sampler = self.build(registry, spec=self.oracle_spec)
        sampler.check(deg)
        for t_start in sorted({deg.T, max(1, deg.T // 2)}):
            out = sampler.sample(OracleNetwork(x, deg), deg, self.start(deg, x, t=t_start), t_start=t_start)
            assert torch.allclose(out.images, x, atol=self.atol), f"from t={t_start}"

    def test_same_seed_same_samples(self, registry: Registry, x: torch.Tensor) -> None:
        deg = self.build(registry, "degradation", self.degradation)
        sampler = self.build(registry)
        net = ConstantNetwork(torch.zeros(1))
        z = self.start(deg, x)
        a = sampler.sample(net, deg, z, generator=torch.Generator().manual_seed(9)).images
        b = sampler.sample(net, deg, z, generator=torch.Generator().manual_seed(9)).images
        assert torch.equal(a, b) and a.shape == x.shape and torch.isfinite(a).all()

    def test_trajectory_runs_from_t_start_down_to_zero(self, registry: Registry, x: torch.Tensor) -> None:
        deg = self.build(registry, "degradation", self.degradation)
        sampler = self.build(registry)
        out = sampler.sample(OracleNetwork(x, deg), deg, self.start(deg, x), trajectory_every=1, generator=torch.Generator().manual_seed(0))
        ts = [t for t, _ in out.trajectory]
        assert ts[0] == deg.T and ts[-1] == 0 and ts == sorted(ts, reverse=True) and len(set(ts)) == len(ts)
        assert all(z.shape == x.shape for _, z in out.trajectory)
        assert torch.equal(out.trajectory[-1][1], out.images)
