"""How evaluation samples (issue 19): under inference mode, in lockstep with the network called on chunks
(results independent of eval.batch_size, which is sized to the device with "auto"), compiled with
train.compile, CUDA graphs only on CUDA."""

from __future__ import annotations

import pytest
import torch

from coldlab.engine import batching
from coldlab.engine.evaluation import RunEvaluation
from coldlab.engine.queueing import check_queue
from coldlab.engine.run import RunComponents
from coldlab.engine.trainer import Trainer
from coldlab.plugins import get_registry
from coldlab.store import connect, enqueue
from test_engine import Recorder, spec


class Counting(torch.nn.Module):
    """A network wrapper that records each call's batch and whether it ran in inference mode."""

    def __init__(self, net):
        super().__init__()
        self.inner, self.calls = net, []
        self.params = net.params

    def forward(self, z, t_frac, y=None):
        self.calls.append((z.shape[0], torch.is_inference_mode_enabled(), torch.is_grad_enabled()))
        return self.inner(z, t_frac, y)


def context(tmp_path, batch_size, sampler="ddpm", samples=12, on_batch=None):
    registry = get_registry()
    torch.manual_seed(0)
    deg = registry.build("degradation", {"name": "gaussian", "schedule": {"name": "linear", "T": 8}})
    net = Counting(registry.build("network", {"name": "cnn", "channels": [4], "time_hidden": [8]}, shape=(1, 8, 8), num_classes=0))
    return RunEvaluation(registry=registry, dataset_spec={"name": "synthetic", "size": 8, "train": 32, "test": 20}, net=net,
                         degradation=deg, sampler=registry.build("sampler", sampler), prior=registry.build("prior", "gaussian"),
                         shape=(1, 8, 8), num_classes=0, value_range=(-0.5, 0.5), device="cpu", samples=samples,
                         batch_size=batch_size, seed=3, cache_dir=tmp_path, on_batch=on_batch)


def test_samples_and_reconstructions_do_not_depend_on_the_batch_size(tmp_path):
    beats = []
    small, whole = context(tmp_path, 5, on_batch=lambda: beats.append(1)), context(tmp_path, 12)
    a, b = small.samples(), whole.samples()  # ddpm draws fresh noise at every step: the draws must line up
    assert a.shape == (12, 1, 8, 8) and torch.allclose(a, b, atol=1e-5)
    assert {n for n, _, _ in small.net.calls} == {5, 2} and {n for n, _, _ in whole.net.calls} == {12}
    assert len(beats) == 3 * 8  # a step of progress (and a chance to stop) after every network call
    ra, rb = small.reconstructions(4, 9)[1], whole.reconstructions(4, 9)[1]
    assert torch.allclose(ra, rb, atol=1e-5)
    other_seed = context(tmp_path, 5)
    other_seed.seed = 4
    assert not torch.allclose(other_seed.samples(), a, atol=1e-3)  # the comparison can fail


def test_sampling_runs_in_inference_mode_and_returns_ordinary_tensors(tmp_path):
    ctx = context(tmp_path, 6, sampler="ddim")
    images = ctx.samples()
    assert ctx.net.calls and all(inference and not grad for _, inference, grad in ctx.net.calls)
    assert not images.is_inference()
    result = ctx.sampler.sample(ctx.net, ctx.degradation, torch.zeros(2, 1, 8, 8), trajectory_every=2)
    assert not result.images.is_inference() and not any(z.is_inference() for _, z in result.trajectory)
    result.images.add_(1)  # usable in place outside inference mode


@pytest.mark.parametrize("name", ["blur", "zoom"])
def test_a_run_that_samples_first_trains_afterwards(tmp_path, name):
    """Caches a degradation fills while sampling (device copies of kernels, index tables) must not be
    inference tensors: a resumed run finishes an evaluation before it trains on."""
    degradation = {"blur": {"name": "blur", "kernel_size": 3, "schedule": {"name": "constant", "C": 1.0, "T": 5}},
                   "zoom": {"name": "zoom", "final_size": 4}}[name]
    s = spec(tmp_path, "zoom", epochs=1)
    s["degradation"] = get_registry().resolve("degradation", degradation)
    trainer = Trainer(s, tmp_path / name, registry=get_registry(), reporter=Recorder())
    trainer.eval_context(samples=4).samples()
    assert trainer.run() == "finished"


def test_auto_batch_size_on_the_cpu_and_its_record(tmp_path):
    assert batching.auto_chunk(torch.nn.Identity(), (1, 8, 8), torch.device("cpu")) == batching.HOST_CHUNK
    assert batching.auto_chunk(torch.nn.Identity(), (1, 8, 8), torch.device("cpu"), cap=7) == 7
    ctx = context(tmp_path, "auto")
    assert ctx.chunk_size() == 12 and ctx.batch_size == batching.HOST_CHUNK  # capped by the samples needed
    ctx.samples()
    from coldlab.engine.evaluation import eval_settings

    assert eval_settings([], ctx, "model")["chunk"] == 12 and eval_settings([], ctx, "model")["batch_size"] == "auto"


def test_eval_batch_size_is_not_part_of_an_experiment(tmp_path):
    s = spec(tmp_path)
    assert s["eval"]["batch_size"] == "auto"
    conn = connect(tmp_path / "db.sqlite")
    stored = {**s, "eval": {**s["eval"], "batch_size": 250}}  # queued by a coldlab whose default was 250
    enqueue(conn, s["study"], s["name"], stored)

    class Run:
        study, name, experiment, kind = s["study"], s["name"], s["name"], "diffusion"

    check_queue(conn, [(Run(), s)])  # the same experiment
    with pytest.raises(Exception, match="changed since it was queued"):
        check_queue(conn, [(Run(), {**s, "eval": {**s["eval"], "seed": 9}})])
    conn.close()


def test_train_compile_compiles_the_sampling_network_and_cuda_graphs_need_cuda(tmp_path, monkeypatch):
    compiled = []

    def fake_compile(module, **kw):
        compiled.append((module, kw))
        return module

    monkeypatch.setattr(torch, "compile", fake_compile)
    s = spec(tmp_path, compile=True)
    parts = RunComponents.from_spec(s, get_registry(), "cpu", cache_dir=tmp_path / "cache")
    assert parts.eval_context().net is parts.sampling_net and compiled == [(parts.sampling_net, {})]
    parts.eval_context()
    assert len(compiled) == 1  # compiled once per evaluation weights, not per evaluation
    s = spec(tmp_path)
    s["eval"]["cuda_graphs"] = True
    recorder = Recorder()
    recorder.lines = []
    recorder.log = recorder.lines.append
    trainer = Trainer(s, tmp_path / "graphs", registry=get_registry(), reporter=recorder)
    assert not trainer.parts.cuda_graphs and len(compiled) == 1
    assert any("cuda_graphs" in line and "cpu" in line for line in recorder.lines)
    net, graphs = batching.sampling_network(torch.nn.Identity(), torch.device("cuda"), compile=False, cuda_graphs=True)
    assert graphs and compiled[-1][1] == {"mode": "reduce-overhead"}


def test_a_stop_reaches_a_metric_pass_between_its_batches(tmp_path):
    """Cancel mid-evaluation: after the samples exist, the next progress beat comes before the metric's
    next batch, so a cancel requested then stops the evaluation without feeding the remaining batches."""
    from coldlab.components.metric import Metric, MetricValue
    from coldlab.engine.evaluation import evaluate
    from coldlab.engine.reporter import StopRequested

    class Fed(Metric):
        source = "samples"

        def update(self, batch):
            fed.append(batch.images.shape[0])

        def compute(self):
            return MetricValue(float(sum(fed)), {})

    fed, stop = [], []

    def beat():
        if stop and len(fed) >= 1:
            raise StopRequested("cancelled")

    ctx = context(tmp_path, 5, samples=12, on_batch=beat)
    ctx.samples()
    stop.append(True)  # the cancel arrives while the metric is being fed
    with pytest.raises(StopRequested):
        evaluate(ctx, [({"name": "fed"}, Fed(None))])
    assert fed == [5]  # one batch of three, then the stop
    fed.clear()
    stop.clear()
    [result] = evaluate(ctx, [({"name": "fed"}, Fed(None))])
    assert result.value == 12 and fed == [5, 5, 2]
