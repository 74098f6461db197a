"""Classifier-free guidance: label dropout in training, the guided combination, known answers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from coldlab import ColdlabError
from coldlab.engine.guidance import GuidedNetwork, sample_labels
from coldlab.testing import OracleNetwork, data_context, synthetic_images

SHAPE = (1, 16, 16)


def conditional_cnn(registry, classes=3, seed=0):
    torch.manual_seed(seed)
    return registry.build("network", {"name": "cnn", "channels": [4, 4], "conditional": True}, shape=SHAPE, num_classes=classes).double()


class ClassOracle(nn.Module):
    """A perfect conditional network for class templates ``X[c]``; the null label stands for their mean."""

    def __init__(self, templates, degradation):
        super().__init__()
        self.templates, self.degradation = templates, degradation
        self.params = type("P", (), {"conditional": True})()
        self.null_label = templates.shape[0]
        self.mean = templates.mean(0, keepdim=True)

    def forward(self, z, t_frac, y=None):
        x = torch.where((y == self.null_label).view(-1, 1, 1, 1), self.mean, self.templates[y.clamp(max=self.null_label - 1)])
        return OracleNetwork(x, self.degradation)(z, t_frac)


def test_w0_is_unconditional_and_w1_conditional_sampling(registry):
    net = conditional_cnn(registry).eval()
    deg = registry.build("degradation", {"name": "gaussian", "schedule": {"name": "linear", "T": 20}})
    sampler = registry.build("sampler", {"name": "ddim", "eta": 0.0})
    z = torch.randn((6, *SHAPE), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = sample_labels(6, 3, "all")
    uncond = sampler.sample(net, deg, z).images  # no labels: the network sees its null label
    assert torch.equal(sampler.sample(GuidedNetwork(net, 0.0), deg, z, y=y).images, uncond)
    assert torch.equal(sampler.sample(GuidedNetwork(net, 1.0), deg, z, y=y).images, sampler.sample(net, deg, z, y=y).images)
    t = torch.full((6,), 0.5, dtype=torch.float64)
    null = torch.full((6,), 3)
    with torch.no_grad():
        c, u = net(z, t, y), net(z, t, null)
        assert torch.allclose(GuidedNetwork(net, 4.0)(z, t, y), u + 4.0 * (c - u), atol=1e-12)
    with pytest.raises(ValueError, match="class-conditional"):
        GuidedNetwork(registry.build("network", {"name": "cnn", "channels": [4, 4]}, shape=SHAPE), 2.0)


def test_guided_sampling_with_an_oracle_returns_the_requested_class(registry):
    templates = synthetic_images(3, SHAPE, seed=5)
    deg = registry.build("degradation", {"name": "gaussian", "schedule": {"name": "linear", "T": 50}})
    y = torch.tensor([2, 0, 1, 2])
    z = deg.degrade(templates[y], deg.T, deg.sample_noise(templates[y], torch.Generator().manual_seed(1)))
    out = registry.build("sampler", {"name": "ddim", "eta": 0.0}).sample(GuidedNetwork(ClassOracle(templates, deg), 1.0), deg, z, y=y)
    assert torch.allclose(out.images, templates[y], atol=1e-8)


def test_guidance_on_a_cold_degradation_extrapolates_the_x0_estimate(registry):
    """Zoom predicts x0; with a constant guided estimate x = u + w (c - u), cold-improved telescopes to
    z_0 = z_T - D(x, T) + x: a closed form to check against."""
    templates = synthetic_images(3, SHAPE, seed=6)
    deg = registry.build("degradation", "zoom")
    deg.prepare(data_context(SHAPE))
    y = torch.tensor([0, 1, 2])
    z = deg.degrade(templates[y], deg.T)
    oracle = ClassOracle(templates, deg)
    sampler = registry.build("sampler", "cold-improved")
    for w in (0.0, 1.0, 3.0):
        guided = oracle.mean + w * (templates[y] - oracle.mean)
        out = sampler.sample(GuidedNetwork(oracle, w), deg, z, y=y).images
        assert torch.allclose(out, z - deg.degrade(guided, deg.T) + guided, atol=1e-12), w
    assert torch.allclose(sampler.sample(GuidedNetwork(oracle, 1.0), deg, z, y=y).images, templates[y], atol=1e-12)


def test_sample_labels_are_balanced_or_one_class():
    assert sample_labels(7, 3, "all").tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert sample_labels(4, 10, 7).tolist() == [7, 7, 7, 7]
    with pytest.raises(ValueError, match="0..9"):
        sample_labels(4, 10, 10)


def _spec(tmp_path, **over):
    from coldlab.config import load_experiments

    train = over.pop("train", "")
    evaluation = over.pop("eval", "")
    path = tmp_path / "cfg.toml"
    path.write_text(f"""
[[experiment]]
study = "cfg"
name = "guided"
dataset = {{ name = "synthetic", train = 64, test = 16, size = 16, classes = 3 }}
network = {{ name = "cnn", channels = [4, 4], conditional = {str(over.pop('conditional', True)).lower()} }}
degradation = {{ name = "gaussian", schedule = {{ name = "linear", T = 20 }} }}
sampler = {{ name = "ddim", steps = 5 }}
train = {{ epochs = 1, batch_size = 16 {train} }}
eval = {{ samples = 6, grid = 4, batch_size = 4 {evaluation} }}
""")
    return load_experiments(path)[0].to_dict(), path


def test_label_dropout_replaces_labels_by_the_null_label_at_its_rate(registry, tmp_path):
    from coldlab.engine.trainer import Reporter, Trainer

    spec, _ = _spec(tmp_path, train=", label_dropout = 0.3")
    trainer = Trainer(spec, tmp_path / "run", registry=registry, reporter=Reporter())
    y = torch.zeros(20000, dtype=torch.long)
    dropped = trainer.loop.drop_labels(y)
    share = (dropped == trainer.net.null_label).double().mean().item()
    assert abs(share - 0.3) < 0.015 and set(dropped.unique().tolist()) == {0, trainer.net.null_label}
    seen = []
    real = trainer.loss
    trainer.loss = lambda x, labels, g, net=None: (seen.append(labels.clone()), real(x, labels, g, net=net))[1]
    trainer.run()
    labels = torch.cat(seen)
    assert (labels == trainer.net.null_label).any() and (labels != trainer.net.null_label).any()


def test_guided_evaluation_records_its_labels_and_settings(registry, tmp_path):
    from coldlab.engine.trainer import Reporter, Trainer, eval_settings

    spec, _ = _spec(tmp_path, train=", label_dropout = 0.2", eval=', guidance_scale = 2.0, class = "all"')
    trainer = Trainer(spec, tmp_path / "run", registry=registry, reporter=Reporter())
    ctx = trainer.eval_context()
    assert ctx.requested_labels().tolist() == [0, 1, 2, 0, 1, 2]  # known before any sample is drawn
    samples = ctx.samples()
    assert samples.shape == (6, *SHAPE) and ctx.requested_labels().tolist() == [0, 1, 2, 0, 1, 2]
    assert eval_settings([], ctx, "model")["guidance_scale"] == 2.0
    unguided = trainer.eval_context(guidance_scale=None)
    assert not torch.equal(unguided.samples(), samples) and unguided.requested_labels() is None


@pytest.mark.parametrize("over, where, message", [
    ({"train": ", label_dropout = 0.1", "conditional": False}, "train: label_dropout", "class-conditional network"),
    ({"train": ", label_dropout = 1.0"}, "train: label_dropout", "probability"),
    ({"eval": ", guidance_scale = 3.0", "conditional": False}, "eval: guidance_scale", "class-conditional network"),
    ({"eval": ", guidance_scale = 3.0, class = 5"}, "eval: class", "0..2"),
    ({"eval": ', guidance_scale = 3.0, class = "dogs"'}, "eval", "'all' or a class index"),
])
def test_guidance_settings_are_validated(tmp_path, over, where, message):
    with pytest.raises(ColdlabError) as err:
        _spec(tmp_path, **over)
    assert where in str(err.value) and message in str(err.value) and "guided" in str(err.value)


def test_coldlab_eval_sweeps_the_guidance_scale_and_w0_matches_unguided(tmp_path):
    import json

    from test_engine import cli

    _, path = _spec(tmp_path, train=", label_dropout = 0.2", eval=', metrics = [{ name = "classifier-fid", epochs = 1 }]')
    home = tmp_path / "home"
    assert cli("run", str(path), "--home", str(home), timeout=1800).returncode == 0
    values = {}
    for args in ([], ["--guidance", "0"], ["--guidance", "3", "--class", "1"]):
        out = cli("eval", "1", "--home", str(home), "--json", *args, timeout=1800)
        assert out.returncode == 0, out.stderr
        data = json.loads(out.stdout)
        values[" ".join(args)] = data["results"][0]["value"]
    assert values["--guidance 0"] == values[""]  # w = 0 is unconditional sampling, to the bit
    assert values["--guidance 3 --class 1"] != values[""]
    show = json.loads(cli("show", "1", "--home", str(home), "--json").stdout)
    guided = [e["settings"] for e in show["evaluations"] if e["settings"].get("guidance_scale") == 3.0]
    assert guided and guided[0]["class"] == 1
    bad = cli("eval", "1", "--home", str(home), "--class", "1")
    assert bad.returncode == 2 and "--class needs a guidance scale" in bad.stderr


def test_a_guidance_sweep_after_training_is_stored_tabled_and_plotted(tmp_path):
    import csv
    import io
    import json

    from test_engine import cli

    _, path = _spec(tmp_path, train=", label_dropout = 0.2",
                    eval=', metrics = [{ name = "classifier-fid", epochs = 1 }, { name = "class-histogram", epochs = 1 }], '
                         'guidance_sweep = [0, 1, 3]')
    home, out = tmp_path / "home", tmp_path / "out"
    run = cli("run", str(path), "--home", str(home), timeout=1800)
    assert run.returncode == 0, run.stderr
    evals = json.loads(cli("show", "1", "--home", str(home), "--json").stdout)["evaluations"]
    sweep = {e["settings"]["guidance_scale"]: e for e in evals if e["origin"] == "guidance"}
    training = [e for e in evals if e["origin"] == "training"]
    assert sorted(sweep) == [0.0, 1.0, 3.0] and len(training) == 1
    fid = lambda e: next(v for v in e["values"] if v["name"] == "classifier-fid")["value"] if isinstance(e["values"], list) \
        else e["values"]["classifier-fid"]["value"]
    assert fid(sweep[0.0]) == fid(training[0])  # w = 0 is the unguided evaluation, to the bit
    assert fid(sweep[3.0]) != fid(sweep[0.0])
    done = cli("export", "--home", str(home), "--out", str(out), "--no-model-figures", timeout=1800)
    assert done.returncode == 0, done.stderr
    rows = {r["experiment"]: r for r in csv.DictReader(io.StringIO((out / "table-cfg.csv").read_text()))}
    assert {"guided", "guided (w=0)", "guided (w=1)", "guided (w=3)"} <= set(rows)
    assert float(rows["guided (w=3)"]["classifier-fid (final)"]) == pytest.approx(fid(sweep[3.0]), rel=1e-12)
    manifest = json.loads((out / "manifest.json").read_text())
    figures = {f["path"]: f for f in manifest["studies"][0]["figures"]}
    assert figures["figures/guidance-classifier-fid-cfg.png"]["series"] == ["1"]
