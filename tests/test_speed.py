"""The training loop's speed settings: mixed precision, compilation, channels-last, host checks every
``log_every`` steps; and that settings added later do not make stored experiments look changed."""

from __future__ import annotations

import json
import time

import pytest
import torch

from coldlab import ColdlabError
from coldlab.engine.loop import TrainingLoop
from coldlab.engine.queueing import check_queue
from coldlab.engine.trainer import Trainer
from coldlab.plugins import get_registry
from coldlab.store import connect, enqueue
from test_engine import Recorder, spec, spoil_loss


def train(tmp_path, name, **settings):
    trainer = Trainer(spec(tmp_path, epochs=2, **settings), tmp_path / name, registry=get_registry(), reporter=Recorder())
    trainer.run()
    losses = {n: v for n, _, _, v, _ in trainer.loop.reporter.rows if n in ("train_loss", "val_loss")}
    return trainer, losses


def test_mixed_precision_reaches_the_fp32_loss(tmp_path):
    _, fp32 = train(tmp_path, "fp32")
    for precision in ("bf16", "fp16"):
        trainer, mixed = train(tmp_path, precision, precision=precision)
        assert trainer.loop.scaler.is_enabled() == (precision == "fp16")
        # the same seed, batches and draws: only the arithmetic differs (val loss is computed in fp32)
        assert mixed["val_loss"] == pytest.approx(fp32["val_loss"], rel=0.05), precision
        assert mixed["train_loss"] == pytest.approx(fp32["train_loss"], rel=0.05), precision
        assert all(p.dtype == torch.float32 for p in trainer.net.parameters())  # weights stay fp32


def test_channels_last_trains_to_the_same_weights(tmp_path):
    plain, _ = train(tmp_path, "plain")
    last, _ = train(tmp_path, "last", channels_last=True)
    for (name, a), b in zip(plain.net.state_dict().items(), last.net.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-5), name


@pytest.mark.slow  # torch.compile (inductor) takes about 45 s on 2 CPU cores: run with -m slow
def test_compiled_training_reaches_the_eager_loss(tmp_path):
    start = time.perf_counter()
    trainer, compiled = train(tmp_path, "compiled", compile=True)
    assert trainer.loop.train_net is not trainer.net and hasattr(trainer.loop.train_net, "_orig_mod")
    _, eager = train(tmp_path, "eager")
    assert compiled["train_loss"] == pytest.approx(eager["train_loss"], rel=1e-3)
    assert compiled["val_loss"] == pytest.approx(eager["val_loss"], rel=1e-3)
    assert time.perf_counter() - start < 600  # a hang guard only


def test_the_host_checks_losses_every_log_every_steps_not_every_step(tmp_path, monkeypatch):
    checks = []
    real = TrainingLoop.check_finite
    monkeypatch.setattr(TrainingLoop, "check_finite", lambda self, *a: (checks.append(self.step), real(self, *a))[1])
    trainer = Trainer(spec(tmp_path, epochs=1, log_every=2), tmp_path / "r", registry=get_registry(), reporter=Recorder())
    trainer.run()
    assert trainer.loop.steps_per_epoch == 5
    assert checks == [2, 4, 5]  # at steps 2 and 4, and at the epoch's end


def test_a_non_finite_loss_between_checks_is_caught_at_the_epoch_end(tmp_path, monkeypatch):
    trainer = Trainer(spec(tmp_path, epochs=1, log_every=50), tmp_path / "r", registry=get_registry(), reporter=Recorder())
    calls = spoil_loss(trainer, monkeypatch, 3, float("inf"))
    with pytest.raises(ColdlabError, match=r"non-finite loss at epoch 1, steps 1-5 "):
        trainer.run()
    assert len(calls) == 5  # the whole epoch ran: no check between


def test_a_setting_added_later_at_its_default_does_not_change_a_stored_experiment(tmp_path):
    s = spec(tmp_path)
    old = json.loads(json.dumps(s))
    for key in ("precision", "compile", "channels_last"):  # a spec queued before these settings existed
        del old["train"][key]
    conn = connect(tmp_path / "db.sqlite")
    enqueue(conn, s["study"], s["name"], old)

    class Run:
        study, name, experiment, kind = s["study"], s["name"], s["name"], "diffusion"

    check_queue(conn, [(Run(), s)])  # the same experiment: no error
    changed = json.loads(json.dumps(s))
    changed["train"]["precision"] = "bf16"
    with pytest.raises(ColdlabError, match="changed since it was queued"):
        check_queue(conn, [(Run(), changed)])
    conn.close()
