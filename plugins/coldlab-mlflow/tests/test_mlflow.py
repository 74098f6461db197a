"""coldlab-mlflow: a run mirrored to a local MLflow file store, offline; a resumed run continues its MLflow run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("mlflow")

import coldlab_mlflow  # noqa: E402
from coldlab import TrackedRun  # noqa: E402
from coldlab.testing import registry_with  # noqa: E402


def tracked(tmp_path: Path, **over):
    folder = tmp_path / "runs" / "00001"
    folder.mkdir(parents=True, exist_ok=True)
    fields = dict(
        id=1,
        study="000",
        name="ddpm-lr=0.001",
        experiment="ddpm",
        seed=0,
        params={"train.lr": 0.001},
        config={"train": {"lr": 0.001, "epochs": 2}, "sampler": {"name": "ddim", "steps": 5}},
        folder=folder,
        home=tmp_path,
        attempt=1,
    )
    fields.update(over)
    return TrackedRun(**fields)


def client(tmp_path):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=(tmp_path / "mlruns").resolve().as_uri())


def test_the_plugin_registers_an_mlflow_tracker_and_mirrors_a_run(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    tracker = registry_with(coldlab_mlflow).build("tracker", "mlflow")
    run = tracked(tmp_path)
    tracker.start(run)
    tracker.log_metrics({"train_loss_step": 0.9}, 1)
    tracker.log_metrics({"train_loss_step": 0.7, "classifier-fid": 12.5}, 2)
    grid = run.folder / "grid-0001.png"
    grid.write_bytes(b"\x89PNG fake")
    tracker.log_image("grid", grid, 2)
    tracker.end("finished")
    mirrored = client(tmp_path).get_run(tracker.run_id)
    assert mirrored.info.status == "FINISHED" and mirrored.info.run_name == "ddpm-lr=0.001"
    assert mirrored.data.metrics == {"train_loss_step": 0.7, "classifier-fid": 12.5}
    assert [m.value for m in client(tmp_path).get_metric_history(tracker.run_id, "train_loss_step")] == [0.9, 0.7]
    assert mirrored.data.params["train.lr"] == "0.001" and mirrored.data.params["sampler.name"] == "ddim"
    assert mirrored.data.tags["coldlab.run_id"] == "1" and json.loads(mirrored.data.tags["sweep.train.lr"]) == 0.001
    assert [a.path for a in client(tmp_path).list_artifacts(tracker.run_id, "grid")] == ["grid/grid-0001.png"]
    assert client(tmp_path).get_experiment(mirrored.info.experiment_id).name == "000"


def test_a_resumed_run_continues_its_mlflow_run(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    registry = registry_with(coldlab_mlflow)
    first = registry.build("tracker", {"name": "mlflow", "experiment": "mine"})
    first.start(tracked(tmp_path))
    first.log_metrics({"val_loss": 1.0}, 1)
    first.end("interrupted")
    assert client(tmp_path).get_run(first.run_id).info.status == "KILLED"
    again = registry.build("tracker", {"name": "mlflow", "experiment": "mine"})
    again.start(tracked(tmp_path, attempt=2))
    again.log_metrics({"val_loss": 0.5}, 2)
    again.end("finished")
    assert again.run_id == first.run_id
    assert [m.value for m in client(tmp_path).get_metric_history(first.run_id, "val_loss")] == [1.0, 0.5]
    assert client(tmp_path).get_run(first.run_id).info.status == "FINISHED"


def test_names_mlflow_refuses_are_made_safe():
    assert coldlab_mlflow.mlflow_name("guidance/w=3/fid") == "guidance/w_3/fid"
    assert coldlab_mlflow.mlflow_name("classifier-fid") == "classifier-fid"


STUDY = """
[[experiment]]
study = "tiny"
name = "ddpm"
dataset = { name = "synthetic", train = 32, test = 8, size = 16 }
network = { name = "cnn", channels = [8], time_hidden = [8] }
degradation = { name = "gaussian", schedule = { name = "linear", T = 10 } }
sampler = "ddpm"
train = { epochs = 2, batch_size = 16, log_every = 1 }
eval = { every = 1, grid = 4, samples = 4, metrics = [{ name = "rmse", images = 4 }] }
trackers = ["mlflow"]
"""


def test_coldlab_run_with_trackers_mlflow_fills_a_local_store(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # for this test's own reading client
    path = tmp_path / "exp.toml"
    path.write_text(STUDY)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_ALLOW_FILE_STORE"}  # the plugin allows its own file store
    env["COLDLAB_LOAD_PLUGINS"] = "coldlab-mlflow"
    done = subprocess.run([sys.executable, "-m", "coldlab", "run", str(path), "--home", str(tmp_path / "home")], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    store = client(tmp_path / "home")
    [experiment] = [e for e in store.search_experiments() if e.name == "tiny"]
    [mirrored] = store.search_runs([experiment.experiment_id])
    assert mirrored.info.status == "FINISHED" and mirrored.info.run_name == "ddpm"
    assert {"train_loss", "val_loss", "train_loss_step", "rmse"} <= set(mirrored.data.metrics)
    assert len(store.get_metric_history(mirrored.info.run_id, "val_loss")) == 2
    assert len(store.list_artifacts(mirrored.info.run_id, "grid")) == 2
