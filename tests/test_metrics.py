"""Metric plugins against known answers (SPEC.md section 7)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from coldlab.components.metric import ReconstructionBatch
from coldlab.default_plugins.metrics import inception
from coldlab.engine.evaluation import RunEvaluation, build_metrics, evaluate
from oracles import ConstantNetwork, OracleNetwork
from conftest import needs_mnist

SYNTH = {"name": "synthetic", "size": 28, "channels": 1, "classes": 10, "train": 256, "test": 64, "seed": 0}


class StandIn(nn.Module):
    """A tiny fixed feature network where Inception would be: uint8 (N, 3, H, W) -> features.

    Counts the images it sees, so tests can tell whether real images went through it.
    """

    def __init__(self, features: int = 16) -> None:
        super().__init__()
        self.num_features = features
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, features, 5, stride=3)
        self.seen = 0

    def forward(self, x):
        assert x.dtype == torch.uint8 and x.shape[1] == 3
        self.seen += x.shape[0]
        return 10 * torch.tanh(self.conv(x.float() / 255)).mean((2, 3))


@pytest.fixture
def stand_in(monkeypatch, tmp_path):
    """Inception replaced by :class:`StandIn`, with a (dummy) local weights file."""
    net = StandIn()
    weights = tmp_path / "inception.pth"
    weights.write_bytes(b"stand-in weights")
    monkeypatch.setenv("COLDLAB_INCEPTION_WEIGHTS", str(weights))
    monkeypatch.setattr(inception, "build_inception_network", lambda features, path: net)
    return net


def context(registry, tmp_path, *, dataset=SYNTH, net=None, degradation=None, sampler="ddpm", samples=64, batch=64,
            cache="cache"):
    ds = registry.build("dataset", dataset)
    deg = registry.build("degradation", degradation or {"name": "gaussian", "schedule": {"name": "linear", "T": 20}})
    return RunEvaluation(
        registry=registry, dataset_spec=registry.resolve("dataset", dataset), net=net or ConstantNetwork(torch.zeros(1)),
        degradation=deg, sampler=registry.build("sampler", sampler), prior=registry.build("prior", "gaussian"),
        shape=ds.shape, num_classes=ds.num_classes, value_range=ds.value_range, device="cpu", samples=samples,
        batch_size=batch, seed=1234, cache_dir=tmp_path / cache,
    )


def run(registry, ctx, *specs):
    return {r.name: r for r in evaluate(ctx, build_metrics(registry, list(specs)))}


def test_fid_of_the_test_set_against_itself_is_zero_and_against_noise_is_large(registry, tmp_path, stand_in):
    ctx = context(registry, tmp_path)
    test_images, _ = ctx.test_set()
    ctx.use_samples(test_images)
    same = run(registry, ctx, "fid")["fid"]
    assert same.unavailable is None
    assert abs(same.value) < 1e-3
    ctx = context(registry, tmp_path)
    ctx.use_samples(torch.rand_like(test_images) - 0.5)
    noise = run(registry, ctx, "fid")["fid"]
    assert noise.value > 1.0 and noise.value > 1000 * abs(same.value)
    assert noise.detail["extractor"] == "inception-v3-2048" and noise.detail["samples"] == test_images.shape[0]
    assert noise.detail["extractor_sha256"] == inception.file_sha256(inception.find_weights())


def test_real_statistics_are_cached_and_not_recomputed(registry, tmp_path, stand_in):
    test_images, _ = context(registry, tmp_path).test_set()
    ctx = context(registry, tmp_path)
    ctx.use_samples(test_images[:16])
    first = run(registry, ctx, "fid")["fid"].value
    assert stand_in.seen == 16 + test_images.shape[0]  # fakes + every real image, once
    stand_in.seen = 0
    ctx = context(registry, tmp_path)  # a new evaluation, same cache folder
    ctx.use_samples(test_images[:16])
    second = run(registry, ctx, "fid")["fid"].value
    assert stand_in.seen == 16  # only the generated samples went through the extractor
    assert second == pytest.approx(first, rel=1e-9)
    assert len(list((tmp_path / "cache" / "real-stats").glob("*.pt"))) == 1


def test_fid_and_inception_score_are_unavailable_without_weights_and_say_why(registry, tmp_path, monkeypatch):
    monkeypatch.delenv("COLDLAB_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    ctx = context(registry, tmp_path, samples=16, batch=16)
    results = run(registry, ctx, "fid", "inception-score", "test-loss")
    for name in ("fid", "inception-score"):
        assert results[name].value is None
        assert "COLDLAB_INCEPTION_WEIGHTS" in results[name].unavailable
        assert results[name].row_detail()["unavailable"] == results[name].unavailable
    assert results["test-loss"].unavailable is None and results["test-loss"].value > 0  # the others go on
    monkeypatch.setenv("COLDLAB_INCEPTION_WEIGHTS", str(tmp_path / "missing.pth"))
    assert "missing.pth" in run(registry, ctx, "fid")["fid"].unavailable


def test_inception_score_is_one_for_one_class_and_k_for_k_even_classes(registry, tmp_path, monkeypatch):
    class GreyLevelLogits(nn.Module):  # class = grey level (0..9) of the image, very confident
        def forward(self, x):
            level = (x.float().mean((1, 2, 3)) / 255 * 9).round().long()
            return torch.nn.functional.one_hot(level, 10).float() * 50

    weights = tmp_path / "w.pth"
    weights.write_bytes(b"x")
    monkeypatch.setenv("COLDLAB_INCEPTION_WEIGHTS", str(weights))
    monkeypatch.setattr(inception, "build_inception_network", lambda features, path: GreyLevelLogits())
    levels = torch.arange(100) % 10
    even = (levels.float() / 9 - 0.5).view(-1, 1, 1, 1).expand(-1, 1, 28, 28)
    ctx = context(registry, tmp_path)
    ctx.use_samples(even)
    assert run(registry, ctx, {"name": "inception-score", "splits": 1})["inception-score"].value == pytest.approx(10, rel=1e-4)
    ctx = context(registry, tmp_path)
    ctx.use_samples(torch.full((100, 1, 28, 28), 0.5))
    assert run(registry, ctx, {"name": "inception-score", "splits": 1})["inception-score"].value == pytest.approx(1, abs=1e-4)


def test_perfect_network_reconstructs_exactly(registry, tmp_path):
    """Oracle network: RMSE 0 and SSIM 1 through the real degrade-and-sample-back path."""
    ctx = context(registry, tmp_path, batch=64)
    x, _ = ctx.test_set()
    ctx.net = OracleNetwork(x, ctx.degradation)
    results = run(registry, ctx, {"name": "rmse", "t": [5, 20], "images": 64}, {"name": "ssim", "t": [5, 20], "images": 64})
    assert results["rmse"].value == pytest.approx(0, abs=1e-5)
    assert results["ssim"].value == pytest.approx(1, abs=1e-4)
    assert set(results["rmse"].detail["per_t"]) == {"5", "20"} and results["rmse"].detail["images"] == 64
    # a network that always answers "blank" does not reconstruct: the metrics see it
    ctx = context(registry, tmp_path, batch=64, net=ConstantNetwork(torch.zeros(1, 1, 28, 28)))
    bad = run(registry, ctx, {"name": "rmse", "t": [20], "images": 64})["rmse"].value
    assert bad > 0.05


def test_psnr_and_rmse_match_their_formulas(registry):
    ctx = type("Ctx", (), {"to_unit": staticmethod(lambda x: (x + 0.5).clamp(0, 1))})()
    original = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.5 - 0.25  # unit: [0.25, 0.75]
    offsets = torch.linspace(0.01, 0.2, 8).view(-1, 1, 1, 1)
    recon = original + offsets
    batch = ReconstructionBatch(3, original, recon, torch.zeros(8))
    for name, expected in (("psnr", float((20 * torch.log10(1 / offsets.flatten())).mean())), ("rmse", float(offsets.mean()))):
        metric = registry.build("metric", {"name": name, "t": [3]})
        metric.reset(ctx)
        metric.update(batch)
        assert metric.compute().value == pytest.approx(expected, rel=1e-5)
    ssim = registry.build("metric", {"name": "ssim", "t": [3]})
    ssim.reset(ctx)
    ssim.update(ReconstructionBatch(3, original, original.clone(), torch.zeros(8)))
    assert ssim.compute().value == pytest.approx(1.0, abs=1e-6)


def test_test_loss_is_zero_for_a_perfect_network_and_matches_mse_otherwise(registry, tmp_path):
    ctx = context(registry, tmp_path, batch=64)
    x, _ = ctx.test_set()
    ctx.degradation = registry.build("degradation", {"name": "gaussian", "target": "x0", "schedule": {"name": "linear", "T": 20}})
    ctx.net = OracleNetwork(x, ctx.degradation)
    assert run(registry, ctx, "test-loss")["test-loss"].value == pytest.approx(0, abs=1e-10)
    ctx.net = ConstantNetwork(torch.zeros(1, 1, 28, 28))  # predicts 0: the loss is the mean of x^2
    assert run(registry, ctx, "test-loss")["test-loss"].value == pytest.approx(float((x ** 2).mean()), rel=1e-5)


def test_ks_normality_is_high_for_noise_and_zero_for_a_clean_image(registry, tmp_path):
    ctx = context(registry, tmp_path, degradation={"name": "gaussian", "schedule": {"name": "linear", "T": 1000}})
    out = run(registry, ctx, {"name": "ks-normality", "every": 50})["ks-normality"]
    p = dict(zip(out.detail["t"], out.detail["p"]))
    assert p[0] < 1e-10 and p[1000] > 0.05  # a clean image is not N(0, 1); z_T is
    assert out.value is not None and 0 < out.value <= 1000 and out.value % 50 == 0
    assert p[out.value] > 0.05 and all(v <= 0.05 for t, v in p.items() if t < out.value)
    # a cold (deterministic) degradation never becomes Gaussian
    zoom = context(registry, tmp_path, degradation={"name": "zoom"})
    zoom.degradation.prepare(type("D", (), {"shape": (1, 28, 28)})())
    cold = run(registry, zoom, "ks-normality")["ks-normality"]
    assert cold.value is None and cold.detail["first_t"] is None and max(cold.detail["p"]) <= 0.05


@needs_mnist
def test_classifier_fid_and_class_histogram_on_real_mnist(registry, tmp_path):
    ctx = context(registry, tmp_path, dataset="mnist", batch=1000)
    images, labels = ctx.test_set()
    ctx.use_samples(images)
    results = run(registry, ctx, "classifier-fid", "class-histogram")
    fid, hist = results["classifier-fid"], results["class-histogram"]
    assert fid.value == pytest.approx(0, abs=1e-3)
    assert fid.detail["classifier_source"].startswith("bundled") and fid.detail["real_images"] == 10000
    assert hist.detail["counts"] == pytest.approx(torch.bincount(labels, minlength=10).tolist(), abs=150)
    assert hist.value == pytest.approx(math.log2(10), abs=0.02)
    assert hist.detail["confident_share"] > 0.9
    conf, dist = hist.detail["confidence"], hist.detail["nearest_real_distance"]
    assert len(conf) == len(dist) == 10000 and hist.detail["reference_images"] == 1000
    assert dist[hist.detail["best"][0]] == min(dist) == 0 and dist[hist.detail["worst"][0]] == max(dist) > 0
    assert all(d == pytest.approx(0, abs=1e-3) for d in dist[:1000])  # the reference images themselves
    # all samples one digit: entropy 0 and a distance far from the test set
    ones = images[labels == 1][:500]
    ctx = context(registry, tmp_path, dataset="mnist", batch=500)
    ctx.use_samples(ones)
    biased = run(registry, ctx, "classifier-fid", "class-histogram")
    assert biased["class-histogram"].value < 0.2
    assert biased["classifier-fid"].value > 20 * max(fid.value, 1e-3)


@needs_mnist
def test_best_and_worst_samples_rank_noise_below_every_real_digit(registry, tmp_path):
    """Confidence rates saturated noise as a confident digit; distance to the nearest real image in the
    classifier's feature space does not: every noise sample ranks below every real one."""
    ctx = context(registry, tmp_path, dataset="mnist", batch=1000)
    images, _ = ctx.test_set()
    g = torch.Generator().manual_seed(0)
    lo, hi = float(images.min()), float(images.max())
    noise = torch.where(torch.rand(images[:40].shape, generator=g) < 0.5, lo, hi)  # saturated noise
    ctx = context(registry, tmp_path, dataset="mnist", batch=1000)
    ctx.use_samples(torch.cat([images[-40:], noise]))  # real digits outside the reference set, then noise
    detail = run(registry, ctx, "class-histogram")["class-histogram"].detail
    dist = detail["nearest_real_distance"]
    assert max(dist[:40]) < min(dist[40:])
    assert set(detail["best"]) <= set(range(40)) and set(detail["worst"]) <= set(range(40, 80))
    assert "nearest real test image" in detail["ranking"]


@needs_mnist
def test_class_histogram_measures_agreement_with_the_requested_classes(registry, tmp_path):
    ctx = context(registry, tmp_path, dataset="mnist", batch=1000)
    images, labels = ctx.test_set()
    ctx.use_samples(images[:2000], requested=labels[:2000])
    right = run(registry, ctx, "class-histogram")["class-histogram"].detail
    assert right["agreement"] > 0.95 and set(right["agreement_per_class"]) == {str(c) for c in range(10)}
    ctx = context(registry, tmp_path, dataset="mnist", batch=1000)
    ctx.use_samples(images[:2000], requested=(labels[:2000] + 1) % 10)
    wrong = run(registry, ctx, "class-histogram")["class-histogram"].detail
    assert wrong["agreement"] < 0.05 and wrong["requested"][:5] == ((labels[:5] + 1) % 10).tolist()
    ctx = context(registry, tmp_path, dataset="mnist", batch=1000)
    ctx.use_samples(images[:100])
    assert "agreement" not in run(registry, ctx, "class-histogram")["class-histogram"].detail  # unguided: nothing asked


def test_samples_are_clamped_to_the_value_range_before_metrics(registry, tmp_path):
    """A diverged pixel (an undertrained network's +-30) counts as a saturated pixel, as in a saved image."""
    ctx = context(registry, tmp_path)
    x, _ = ctx.test_set()
    ctx.use_samples(x)
    clean = run(registry, ctx, {"name": "classifier-fid", "epochs": 2})["classifier-fid"].value
    lo, hi = ctx.value_range
    wild = x.clone()
    wild[:, :, 0, 0] = 30.0
    wild[:, :, -1, -1] = -30.0
    ctx = context(registry, tmp_path)
    ctx.use_samples(wild)
    assert ctx.samples().max() == hi and ctx.samples().min() >= lo
    saturated = x.clone()
    saturated[:, :, 0, 0], saturated[:, :, -1, -1] = hi, lo
    dirty = run(registry, ctx, {"name": "classifier-fid", "epochs": 2})["classifier-fid"].value
    ctx = context(registry, tmp_path)
    ctx.use_samples(saturated)
    same = run(registry, ctx, {"name": "classifier-fid", "epochs": 2})["classifier-fid"].value
    assert dirty == pytest.approx(same, rel=1e-6) and dirty < clean + 5


def test_classifier_is_trained_once_for_datasets_without_bundled_weights(registry, tmp_path):
    ctx = context(registry, tmp_path)
    x, _ = ctx.test_set()
    ctx.use_samples(x)
    first = run(registry, ctx, {"name": "classifier-fid", "epochs": 2})["classifier-fid"]
    assert first.detail["classifier_source"].startswith("trained")
    assert first.detail["classifier_test_accuracy"] > 0.9  # synthetic classes are easy
    files = list((tmp_path / "cache" / "classifiers").glob("*.pt"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    ctx = context(registry, tmp_path)
    ctx.use_samples(x)
    second = run(registry, ctx, {"name": "classifier-fid", "epochs": 2})["classifier-fid"]
    assert files[0].stat().st_mtime_ns == mtime and second.value == pytest.approx(first.value, rel=1e-9)
    assert second.detail["extractor_sha256"] == first.detail["extractor_sha256"]


def test_unlabelled_data_makes_classifier_metrics_unavailable(registry, tmp_path):
    ctx = context(registry, tmp_path, dataset={**SYNTH, "classes": 1})
    out = run(registry, ctx, "classifier-fid")["classifier-fid"]
    assert out.value is None and "no class labels" in out.unavailable


def test_generated_evaluations_repeat_exactly(registry, tmp_path):
    def once():
        torch.manual_seed(99)
        net = registry.build("network", {"name": "cnn", "channels": [4, 4]}, shape=(1, 28, 28))
        ctx = context(registry, tmp_path, net=net, samples=32, batch=16)
        res = run(registry, ctx, {"name": "rmse", "t": [10], "images": 16}, "test-loss")
        return ctx.samples().clone(), {k: r.value for k, r in res.items()}

    (a, va), (b, vb) = once(), once()
    assert torch.equal(a, b) and va == vb


def test_sampling_cost_reports_time_memory_and_steps(registry, tmp_path):
    ctx = context(registry, tmp_path, sampler={"name": "ddim", "steps": 5}, batch=8)
    out = run(registry, ctx, {"name": "sampling-cost", "samples": 16})["sampling-cost"]
    assert out.value > 0 and out.detail["samples"] == 16 and out.detail["steps"] == 5
    assert out.detail["peak_memory_bytes"] > 0 and out.detail["memory"] == "process RSS"


def test_metric_parameters_are_validated_where_the_config_names_them(registry, tmp_path):
    from coldlab import ColdlabError
    from coldlab.config import load_experiments

    path = tmp_path / "e.toml"
    base = ('[[experiment]]\nstudy = "s"\nname = "e"\ndataset = "synthetic"\nnetwork = "cnn"\n'
            'degradation = "zoom"\nsampler = "cold-naive"\n')
    path.write_text(base + 'eval = { metrics = [{ name = "rmse", levles = [0.5] }] }\n')
    with pytest.raises(ColdlabError, match=r"e.toml: e: eval: metrics: .*'levles'.*levels"):
        load_experiments(path, registry=registry)
    path.write_text(base + 'eval = { metrics = [{ name = "rmse", levels = [1.5] }] }\n')
    with pytest.raises(ColdlabError, match=r"eval: metrics: levels: metric 'rmse' parameter 'levels' must be in \(0, 1\], got \[1.5\]"):
        load_experiments(path, registry=registry)
    path.write_text(base + 'eval = { metrics = ["rmse", "rmse"] }\n')
    with pytest.raises(ColdlabError, match="listed twice"):
        load_experiments(path, registry=registry)
    path.write_text(base + 'eval = { metrics = ["ssim", { name = "rmse", t = [3] }] }\n')
    (run_spec,) = load_experiments(path, registry=registry)
    assert run_spec.eval["metrics"] == [{"name": "ssim", "t": [], "levels": [0.5], "images": 1000},
                                        {"name": "rmse", "t": [3], "levels": [0.5], "images": 1000}]
