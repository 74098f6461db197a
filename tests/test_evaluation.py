"""Evaluation inside training and by ``coldlab eval``: what is stored, resumed and shown."""

from __future__ import annotations

import json

import pytest
import torch

from coldlab.engine.trainer import StopRequested, Trainer
from coldlab.plugins import get_registry
from test_engine import TOML, Recorder, cli

METRICS = '''metrics = ["fid", { name = "classifier-fid", epochs = 1 }, { name = "rmse", t = [5], images = 8 },
             { name = "ks-normality", every = 5 }], final_metrics = [{ name = "sampling-cost", samples = 4 }]'''
EVAL_TOML = TOML.replace("eval = { every = 1, grid = 4 }", "eval = { every = 1, grid = 4, samples = 8, batch_size = 8, " + METRICS + " }")


@pytest.fixture(autouse=True)
def offline_inception(monkeypatch, tmp_path):
    monkeypatch.delenv("COLDLAB_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "no-hub"))


def _spec(tmp_path, **train):
    from coldlab.config import load_experiments

    path = tmp_path / "eval.toml"
    path.write_text(EVAL_TOML)
    s = next(r for r in load_experiments(path) if r.name == "ddpm").to_dict()
    s["train"].update(train)
    return s


def test_training_evaluates_every_epoch_and_records_unavailable_metrics(tmp_path):
    rec = Recorder()
    Trainer(_spec(tmp_path), tmp_path / "run", registry=get_registry(), reporter=rec, cache_dir=tmp_path / "cache").run()
    assert list(rec.evaluations) == ["training:1", "training:2"]
    first, last = rec.evaluations["training:1"]["results"], rec.evaluations["training:2"]["results"]
    assert set(first) == {"fid", "classifier-fid", "rmse", "ks-normality"}
    assert set(last) == set(first) | {"sampling-cost"}  # final_metrics only after the last epoch
    assert first["fid"].value is None and "COLDLAB_INCEPTION_WEIGHTS" in first["fid"].unavailable
    assert first["classifier-fid"].value > 0 and first["rmse"].value > 0
    assert rec.evaluations["training:2"]["settings"]["samples"] == 8
    kinds = [(k, e) for k, _, e in rec.files]
    assert ("grid", 1) in kinds and ("samples", 2) in kinds
    saved = torch.load(tmp_path / "run" / "samples-0002.pt", weights_only=True)
    assert saved.dtype == torch.uint8 and saved.shape == (8, 1, 16, 16)
    assert (tmp_path / "run" / "weights-0001.pt").exists() and (tmp_path / "run" / "weights-0002.pt").exists()


def test_an_evaluation_cut_short_is_completed_on_resume(tmp_path):
    class StopDuringEvaluation(Recorder):
        """Asks to stop at the first progress report made while an evaluation is running."""

        def __init__(self):
            super().__init__()
            self.evaluating = False

        def has_evaluation(self, key):
            self.evaluating = True
            return super().has_evaluation(key)

        def progress(self, epoch, step, total):
            return "interrupted" if self.evaluating else None

    s = _spec(tmp_path, epochs=1)
    first = StopDuringEvaluation()
    with pytest.raises(StopRequested):
        Trainer(s, tmp_path / "run", registry=get_registry(), reporter=first, cache_dir=tmp_path / "cache").run()
    assert first.evaluations == {}
    second = Recorder()
    second.rows = list(first.rows)
    trainer = Trainer(s, tmp_path / "run", registry=get_registry(), reporter=second, cache_dir=tmp_path / "cache")
    assert trainer.run() == "finished"
    assert list(second.evaluations) == ["training:1"] and trainer.epoch == 1
    assert [r[0] for r in second.rows].count("train_loss") == 1  # the epoch was not trained twice


def test_cli_eval_stores_a_new_evaluation_with_another_sampler(tmp_path):
    (tmp_path / "exp.toml").write_text(EVAL_TOML)
    home = str(tmp_path / "home")
    env = {"TORCH_HOME": str(tmp_path / "torch")}
    out = cli("run", str(tmp_path / "exp.toml"), "--home", home, "--only", "ddpm", env=env, timeout=1800)
    assert out.returncode == 0, out.stderr
    # stderr is not a terminal: each evaluation is one plain line with its values
    assert "run 1 ddpm: evaluation at epoch 1: classifier-fid " in out.stderr and "fid unavailable" in out.stderr
    out = cli("eval", "1", "--home", home, "--metrics", "classifier-fid", "sampling-cost", "--sampler", "ddim",
              "--steps", "4", "--checkpoint", "1", "--json", env=env, timeout=1800)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["epoch"] == 1 and result["sampler"]["name"] == "ddim" and result["sampler"]["steps"] == 4
    by_name = {r["name"]: r for r in result["results"]}
    assert by_name["sampling-cost"]["detail"]["steps"] == 4
    assert by_name["classifier-fid"]["detail"]["params"] == {"epochs": 1}  # the run's own parameters
    details = json.loads(cli("show", "1", "--home", home, "--json", env=env).stdout)
    origins = [(e["origin"], e["epoch"], e["sampler"]["name"]) for e in details["evaluations"]]
    assert origins == [("training", 1, "ddpm"), ("training", 2, "ddpm"), ("eval", 1, "ddim")]
    assert details["evaluations"][2]["values"]["classifier-fid"]["value"] == by_name["classifier-fid"]["value"]
    # the training series holds training evaluations only; fid is there, marked unavailable
    assert [p["epoch"] for p in details["metrics"]["classifier-fid"]] == [1, 2]
    assert "unavailable" in details["metrics"]["fid"][0]["detail"]
    shown = cli("show", "1", "--home", home, env={**env, "COLUMNS": "200"}).stdout
    assert "unavailable: no Inception weights offline" in shown and "eval" in shown
    # the same weights evaluated again give the same number
    again = json.loads(cli("eval", "1", "--home", home, "--metrics", "classifier-fid", "--sampler", "ddim", "--steps", "4",
                           "--checkpoint", "1", "--json", env=env, timeout=1800).stdout)
    assert again["results"][0]["value"] == by_name["classifier-fid"]["value"]
    for args, message in ((["--checkpoint", "7"], "--checkpoint: run 1 has no weights for epoch 7 (hint: epochs with weights: 1, 2)"),
                          (["--sampler", "cold-naive", "--steps", "0"], "argument --steps: must be at least 1, got 0"),
                          (["--metrics", "fdi"], "--metrics: unknown metric 'fdi' (did you mean 'fid'?)")):
        bad = cli("eval", "1", "--home", home, *args, env=env)
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr
