"""Every hookspec is exercised end to end and documented (as datasette checks its hooks).

One throwaway plugin registers a component of every kind; one experiment uses all of them at
once through ``coldlab run``'s code path (queue, executor, worker, trainer, evaluation, store),
and each ``test_hook_<hook>`` checks the evidence that its component did its job.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
from pathlib import Path

import pytest
import torch
from torch import nn

import coldlab
from coldlab import Dataset, Degradation, Executor, Metric, MetricValue, Network, Prior, Sampler, Schedule, hookimpl, param
from coldlab import hookspecs, plugins
from coldlab.hookspecs import KINDS

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "writing-a-plugin.md"
CALLS: dict[str, list] = {}


def called(kind: str, what=None) -> None:
    CALLS.setdefault(kind, []).append(what)


class HookSchedule(Schedule):
    @dataclasses.dataclass
    class Params:
        T: int = param(6, "steps")

    def compute_beta(self):
        called("schedule")
        return torch.full((self.params.T,), 0.3, dtype=torch.float64)


class HookFade(Degradation):
    """Deterministic fade: z_t = sqrt(alpha_bar_t) x (uses a nested schedule)."""

    target = "x0"

    @dataclasses.dataclass
    class Params:
        schedule: dict = param({"name": "hook-schedule"}, "its schedule", kind="schedule")

    def __init__(self, params):
        super().__init__(params)
        self.schedule = params.schedule

    def degrade(self, x, t, noise=None):
        called("degradation")
        steps = coldlab.as_steps(t, x.shape[0], x.device)
        return self.schedule.alpha_bar.to(x)[steps].sqrt().view(-1, 1, 1, 1) * x


class HookPrior(Prior):
    def sample(self, n, shape, *, generator=None, device="cpu"):
        called("prior", n)
        return 0.01 * torch.randn((n, *shape), generator=generator).to(device)


class HookNet(Network):
    @dataclasses.dataclass
    class Params:
        width: int = param(4, "hidden channels")

    def __init__(self, params, shape=(1, 8, 8), num_classes=0):
        super().__init__(params, shape, num_classes)
        c = shape[0]
        self.body = nn.Sequential(nn.Conv2d(c + 1, params.width, 3, padding=1), nn.SiLU(), nn.Conv2d(params.width, c, 3, padding=1))

    def forward(self, z, t_frac, y=None):
        called("network")
        t_map = t_frac.view(-1, 1, 1, 1).expand(-1, 1, *z.shape[2:]).to(z.dtype)
        return self.body(torch.cat([z, t_map], 1))


class HookSampler(Sampler):
    def step(self, net, degradation, z, t, t_next, *, y, generator):
        called("sampler", t)
        x0 = net(z, torch.full((z.shape[0],), t / degradation.T, device=z.device))
        return degradation.degrade(x0, t_next)


class HookData(Dataset):
    shape = (1, 8, 8)
    num_classes = 2

    @dataclasses.dataclass
    class Params:
        n: int = param(48, "images per split")

    def load(self, split):
        called("dataset", split)
        g = torch.Generator().manual_seed(int(split == "test"))
        images = torch.rand((self.params.n, 1, 8, 8), generator=g) - 0.5
        return images, torch.arange(self.params.n) % 2


class HookMean(Metric):
    """The mean pixel of the generated samples."""

    source = "samples"

    def reset(self, ctx):
        called("metric")
        self.total, self.count = 0.0, 0

    def update(self, batch):
        self.total += float(batch.images.double().sum())
        self.count += batch.images.numel()

    def compute(self):
        return MetricValue(self.total / self.count, {"pixels": self.count})


class InlineHandle:
    def __init__(self, code):
        self.code = code

    def poll(self):
        return self.code

    def interrupt(self):
        pass

    def wait(self):
        return self.code


class HookInline(Executor):
    """Runs the queue in this process (handy under a debugger)."""

    def start(self, home, devices, logs):
        from coldlab.engine.worker import run_worker

        called("executor", (str(home), list(devices)))
        return [InlineHandle(0 if run_worker(home, device) else 1) for device in devices]


every_kind = types.ModuleType("every_kind_plugin")
every_kind.register_schedules = hookimpl(lambda register: register("hook-schedule", HookSchedule))
every_kind.register_degradations = hookimpl(lambda register: register("hook-fade", HookFade))
every_kind.register_priors = hookimpl(lambda register: register("hook-prior", HookPrior))
every_kind.register_networks = hookimpl(lambda register: register("hook-net", HookNet))
every_kind.register_samplers = hookimpl(lambda register: register("hook-sampler", HookSampler))
every_kind.register_datasets = hookimpl(lambda register: register("hook-data", HookData))
every_kind.register_metrics = hookimpl(lambda register: register("hook-mean", HookMean))
every_kind.register_executors = hookimpl(lambda register: register("hook-inline", HookInline))


class HookAutoencoder(coldlab.Autoencoder):
    """Pixel pairs averaged into a half-width latent and repeated back."""

    @property
    def latent_shape(self):
        c, h, w = self.shape
        return (c, h, w // 2)

    def encode(self, x):
        called("autoencoder")
        mean = 0.5 * (x[..., 0::2] + x[..., 1::2])
        return mean, torch.full_like(mean, -20.0)

    def decode(self, z):
        return z.repeat_interleave(2, dim=-1)


every_kind.register_autoencoders = hookimpl(lambda register: register("hook-ae", HookAutoencoder))


class HookTracker(coldlab.Tracker):
    """Keeps what it is told in CALLS["tracker"]."""

    def start(self, run):
        called("tracker", ("start", run.name, run.folder.name))

    def log_metrics(self, values, step):
        called("tracker", ("metrics", step, sorted(values)))

    def log_image(self, name, path, step):
        called("tracker", ("image", name, path.name, path.exists()))

    def end(self, status):
        called("tracker", ("end", status))


every_kind.register_trackers = hookimpl(lambda register: register("hook-tracker", HookTracker))

TOML = """
[[experiment]]
study = "hooks"
name = "every-kind"
dataset = "hook-data"
degradation = { name = "hook-fade", schedule = { name = "hook-schedule", T = 5 } }
prior = "hook-prior"
network = { name = "hook-net", width = 6 }
sampler = "hook-sampler"
train = { epochs = 2, batch_size = 16 }
eval = { every = 1, samples = 12, grid = 4, metrics = ["hook-mean", "test-loss"] }
trackers = ["hook-tracker"]
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The experiment run once through coldlab run's code path with the hook-inline executor."""
    from coldlab.engine.launcher import run_file
    from coldlab.store import connect, evaluations

    saved = plugins._HOST
    plugins._HOST = plugins.PluginHost([every_kind], entry_points=False)
    CALLS.clear()
    try:
        folder = tmp_path_factory.mktemp("hooks")
        (folder / "exp.toml").write_text(TOML)
        code = run_file(str(folder / "exp.toml"), home=folder / "home", executor="hook-inline")
        conn = connect(folder / "home" / "coldlab.db", readonly=True)
        run = conn.execute("SELECT * FROM runs").fetchone()
        evals = evaluations(conn, run["id"])
    finally:
        plugins._HOST = saved
    return types.SimpleNamespace(code=code, run=run, config=json.loads(run["config"]), evals=evals, home=folder / "home")


def test_the_run_finished(finished):
    assert finished.code == 0 and finished.run["status"] == "finished", finished.run["error"]


def test_hook_register_schedules(finished):
    assert CALLS["schedule"] and finished.config["degradation"]["schedule"] == {"name": "hook-schedule", "T": 5}


def test_hook_register_degradations(finished):
    assert len(CALLS["degradation"]) > 2 and finished.config["degradation"]["name"] == "hook-fade"


def test_hook_register_priors(finished):
    assert 12 in CALLS["prior"]  # the evaluation's 12 start points


def test_hook_register_networks(finished):
    assert CALLS["network"] and finished.config["network"] == {"name": "hook-net", "width": 6}


def test_hook_register_samplers(finished):
    assert set(CALLS["sampler"]) == {5, 4, 3, 2, 1}  # every step from T down


def test_hook_register_datasets(finished):
    assert {"train", "test"} <= set(CALLS["dataset"])


def test_hook_register_metrics(finished):
    values = [e for e in finished.evals if "hook-mean" in e["values"]]
    assert [e["epoch"] for e in values] == [1, 2]
    last = values[-1]["values"]["hook-mean"]
    samples = torch.load(finished.home / "runs" / f"{finished.run['id']:05d}" / "samples-0002.pt", weights_only=True)
    assert last["detail"]["pixels"] == samples.numel() == 12 * 64
    # the saved samples are the same images as uint8 in [0, 255] for the value range [-0.5, 0.5]
    assert last["value"] == pytest.approx(samples.double().mean().item() / 255 - 0.5, abs=1 / 255)


def test_hook_register_executors(finished):
    assert CALLS["executor"] == [(str(finished.home), ["cpu"])]


def test_hook_register_autoencoders():
    registry = plugins.PluginHost([every_kind], entry_points=False).registry
    ae = registry.build("autoencoder", "hook-ae", shape=(1, 8, 8))
    x = torch.rand(4, 1, 8, 4).repeat_interleave(2, dim=-1)  # pixel pairs: what this autoencoder keeps
    assert ae.latent_shape == (1, 8, 4) and torch.equal(ae.decode(ae.encode(x)[0]), x)
    ae.estimate_scale(x)
    assert torch.allclose(ae.from_latent(ae.to_latent(x)), x, atol=1e-6) and CALLS["autoencoder"]


def test_hook_register_trackers(finished):
    calls = CALLS["tracker"]
    assert calls[0] == ("start", "every-kind", f"{finished.run['id']:05d}") and calls[-1] == ("end", "finished")
    epochs = [c for c in calls if c[0] == "metrics" and "val_loss" in c[2]]
    assert len(epochs) == 2 and all("train_loss" in c[2] for c in epochs)
    assert [c for c in calls if c[0] == "metrics" and "hook-mean" in c[2]] and len([c for c in calls if c[0] == "image"]) == 2
    assert all(c[1] == "grid" and c[3] for c in calls if c[0] == "image")


def test_every_hook_has_a_test():
    missing = [h for h in KINDS.values() if f"test_hook_{h}" not in globals()]
    assert not missing, f"hooks without a test_hook_<name> here: {missing}"
    assert set(KINDS.values()) == {n for n in dir(hookspecs) if n.startswith("register_")}


def test_every_hook_is_documented_in_the_guide():
    text = GUIDE.read_text()
    headings = set(re.findall(r"^### `(register_\w+)\(register\)`", text, re.M))
    assert headings == set(KINDS.values())
    for kind, hook in KINDS.items():
        assert getattr(hookspecs, hook).__doc__.strip(), hook
        base = {"metric": "Metric", "executor": "Executor"}.get(kind, kind.capitalize())
        assert f"coldlab.{base}" in text, f"the guide does not name the base class of {kind}"
