import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from coldlab import ColdlabError
from coldlab.config import load_experiments
from coldlab.engine.checkpoint import checkpoints
from coldlab.engine.trainer import Reporter, StopRequested, Trainer
from coldlab.plugins import get_registry
from coldlab.store import claim, connect, enqueue, get_run, metric_series

TOML = """
[defaults]
dataset = { name = "synthetic", train = 96, test = 16, size = 16 }
network = { name = "cnn", channels = [8, 8], time_hidden = [16] }
train = { epochs = 2, batch_size = 16, log_every = 2, val_fraction = 0.25 }
eval = { every = 1, grid = 4 }

[[experiment]]
study = "tiny"
name = "ddpm"
degradation = { name = "gaussian", schedule = { name = "linear", T = 20 } }
sampler = "ddpm"

[[experiment]]
study = "tiny"
name = "zoom"
degradation = { name = "zoom", final_size = 4 }
prior = "centre-pixels"
sampler = "cold-improved"
"""


class Recorder(Reporter):
    """A reporter that keeps everything in memory and can ask the run to stop at a given step."""

    def __init__(self, stop_at=None, status="interrupted"):
        self.rows, self.files, self.stop_at, self.status = [], [], stop_at, status
        self.evaluations = {}

    def has_evaluation(self, key):
        return key in self.evaluations

    def evaluation(self, *, key, results, **info):
        self.evaluations[key] = {"results": {r.name: r for r in results}, **info}
        return len(self.evaluations)

    def metrics(self, rows):
        self.rows.extend(rows)

    def artifact(self, kind, path, epoch, step):
        self.files.append((kind, path, epoch))

    def progress(self, epoch, step, total):
        return self.status if self.stop_at is not None and step == self.stop_at else None


def spec(tmp_path, name="ddpm", **train):
    path = tmp_path / "exp.toml"
    path.write_text(TOML)
    s = next(r for r in load_experiments(path) if r.name == name).to_dict()
    s["train"].update(train)
    return s


def cli(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "coldlab", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, **kw)


def test_resume_mid_epoch_equals_an_uninterrupted_run(tmp_path):
    s = spec(tmp_path, epochs=3, ema=0.9)
    full = Trainer(s, tmp_path / "full", registry=get_registry(), reporter=Recorder())
    full.run()
    for stop_at in (3, 10):  # mid-epoch 1 and mid-epoch 2 (5 steps per epoch)
        folder = tmp_path / f"cut{stop_at}"
        first = Trainer(s, folder, registry=get_registry(), reporter=Recorder(stop_at=stop_at))
        with pytest.raises(StopRequested):
            first.run()
        assert checkpoints(folder)
        second = Trainer(s, folder, registry=get_registry(), reporter=Recorder())
        second.run()
        for key, value in full.net.state_dict().items():
            assert torch.equal(value, second.net.state_dict()[key]), (stop_at, key)
        for key, value in full.ema.state_dict().items():
            assert torch.equal(value, second.ema.state_dict()[key]), (stop_at, key)
        assert len(checkpoints(folder)) == 2  # the last two are kept


def test_training_records_losses_grids_and_learns(tmp_path):
    s = spec(tmp_path, name="zoom", epochs=4, lr=3e-3)
    rec = Recorder()
    Trainer(s, tmp_path / "run", registry=get_registry(), reporter=rec).run()
    train = [v for n, _, _, v, _ in rec.rows if n == "train_loss"]
    val = [v for n, _, _, v, _ in rec.rows if n == "val_loss"]
    assert len(train) == len(val) == 4 and train[-1] < train[0] and val[-1] < val[0]
    assert [e for k, _, e in rec.files if k == "grid"] == [1, 2, 3, 4]
    assert all(Path(p).stat().st_size > 0 for _, p, _ in rec.files)
    steps = [s for n, s, _, _, _ in rec.rows if n == "train_loss_step"]
    assert steps == list(range(2, 21, 2))  # every log_every = 2 of 20 steps


def spoil_loss(trainer, monkeypatch, step, factor=float("nan")):
    """Make the trainer's loss non-finite (times ``factor``) at training step ``step``; returns the list of steps taken."""
    original, calls = trainer.loss, []

    def loss(x, y, g, net=None):
        if trainer.net.training:  # count training steps only (not validation batches)
            calls.append(1)
        value = original(x, y, g, net=net)
        return value * factor if len(calls) == step else value

    monkeypatch.setattr(trainer, "loss", loss)
    return calls


def test_non_finite_loss_fails_with_epoch_and_step(tmp_path, monkeypatch):
    s = spec(tmp_path)
    trainer = Trainer(s, tmp_path / "run", registry=get_registry(), reporter=Recorder())
    calls = spoil_loss(trainer, monkeypatch, 7)
    # the host checks the losses every log_every = 2 steps (no synchronisation per step): step 7 is named in steps 7-8
    with pytest.raises(ColdlabError, match=r"non-finite loss at epoch 2, steps 7-8 "):
        trainer.run()
    assert len(calls) == 8  # it stopped at the check, not at the end of the epoch


def test_cancel_checkpoints_and_stops(tmp_path):
    s = spec(tmp_path)
    trainer = Trainer(s, tmp_path / "run", registry=get_registry(), reporter=Recorder(stop_at=2, status="cancelled"))
    with pytest.raises(StopRequested) as stop:
        trainer.run()
    assert stop.value.status == "cancelled" and torch.load(checkpoints(tmp_path / "run")[-1], weights_only=True)["step"] == 2


def test_cli_run_ls_show_end_to_end(tmp_path):
    (tmp_path / "exp.toml").write_text(TOML)
    home = tmp_path / "home"
    out = cli("run", str(tmp_path / "exp.toml"), "--home", str(home), "--smoke", timeout=1800)
    assert out.returncode == 0, out.stderr
    assert "2/2 runs finished" in out.stderr
    # stderr is not a terminal here (as under nohup, sbatch or CI): one plain line per epoch and evaluation, no bars
    assert "ddpm-smoke: epoch 1/1 train_loss" in out.stderr and "zoom-smoke: epoch 1/1 train_loss" in out.stderr
    assert "zoom-smoke: finished in" in out.stderr and "━" not in out.stderr
    runs = json.loads(cli("ls", "--home", str(home), "--json").stdout)
    assert [(r["name"], r["status"]) for r in runs] == [("ddpm-smoke", "finished"), ("zoom-smoke", "finished")]
    assert runs[0]["train_loss"] is not None and "val_loss" in runs[0]["metrics"]
    details = json.loads(cli("show", str(runs[1]["id"]), "--home", str(home), "--json").stdout)
    assert details["config"]["degradation"]["name"] == "zoom" and details["config"]["train"]["epochs"] == 1
    grid = next(a for a in details["artifacts"] if a["kind"] == "grid")
    assert Path(grid["path"]).read_bytes()[:4] == b"\x89PNG"
    assert set(details["metrics"]) >= {"train_loss", "val_loss", "train_loss_step"}
    again = cli("run", str(tmp_path / "exp.toml"), "--home", str(home), "--smoke")
    assert again.returncode == 0 and "already finished" in again.stderr


def test_cli_config_errors_are_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(TOML.replace('sampler = "ddpm"', 'sampler = "ddmp"'))
    out = cli("run", str(bad), "--home", str(tmp_path / "h"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0
    assert f"{bad}: ddpm: sampler: unknown sampler 'ddmp' (did you mean 'ddpm'?)" in out.stderr


def test_killed_worker_run_is_requeued_and_completes_without_duplicates(tmp_path):
    s = spec(tmp_path, epochs=6, batch_size=8)
    s["dataset"]["train"] = 3000  # about half a second per epoch
    home = tmp_path / "home"
    conn = connect(home / "coldlab.db")
    run_id, _ = enqueue(conn, s["study"], s["name"], s, epochs=6)
    env = {"COLDLAB_LEASE_S": "2"}
    worker = subprocess.Popen([sys.executable, "-m", "coldlab", "worker", "--home", str(home)], env={**os.environ, **env},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 900
    while time.time() < deadline and len(metric_series(conn, run_id).get("train_loss", [])) < 2:
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    killed_at = len(metric_series(conn, run_id)["train_loss"])
    assert 2 <= killed_at < 6 and get_run(conn, run_id)["status"] == "running"
    # no wait for the lease: the next worker on this host sees the dead worker's process is gone
    done = cli("worker", "--home", str(home), env=env, timeout=1800)
    assert done.returncode == 0, done.stderr
    row = get_run(conn, run_id)
    assert row["status"] == "finished" and row["attempts"] == 2 and row["deaths"] == 1
    series = metric_series(conn, run_id)
    assert [p["step"] for p in series["train_loss"]] == [1, 2, 3, 4, 5, 6]
    n_rows = conn.execute("SELECT COUNT(*) FROM metrics WHERE run_id = ? AND name = 'train_loss'", (run_id,)).fetchone()[0]
    assert n_rows == 6
    assert claim(conn, "w", "cpu") is None


def test_ctrl_c_interrupts_and_resume_continues(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(TOML.replace("train = 96", "train = 3000").replace("epochs = 2", "epochs = 12"))
    home = tmp_path / "home"
    proc = subprocess.Popen([sys.executable, "-m", "coldlab", "run", str(path), "--home", str(home), "--only", "zoom"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 900
    while time.time() < deadline:
        time.sleep(0.1)
        if (home / "coldlab.db").exists():
            try:
                rows = connect(home / "coldlab.db", readonly=True).execute("SELECT status, epoch FROM runs").fetchall()
            except sqlite3.OperationalError:  # the file exists a moment before its tables do
                continue
            if rows and rows[0]["status"] == "running" and rows[0]["epoch"] >= 1:
                break
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 1, err
    assert "interrupted" in err and "--resume" in err
    conn = connect(home / "coldlab.db")
    row = conn.execute("SELECT * FROM runs").fetchone()
    assert row["status"] == "interrupted" and row["epoch"] < 12
    assert checkpoints(home / "runs" / f"{row['id']:05d}")
    skipped = cli("run", str(path), "--home", str(home), "--only", "zoom")
    assert "pass --resume" in skipped.stderr
    resumed = cli("run", str(path), "--home", str(home), "--only", "zoom", "--resume", timeout=1800)
    assert resumed.returncode == 0, resumed.stderr
    assert [p["step"] for p in metric_series(conn, row["id"])["train_loss"]] == list(range(1, 13))


def test_out_of_memory_fails_that_run_with_a_hint_and_the_worker_moves_on(tmp_path, monkeypatch):
    from coldlab.engine import worker as worker_module

    home = tmp_path / "home"
    conn = connect(home / "coldlab.db")
    first, _ = enqueue(conn, "tiny", "oom", spec(tmp_path), epochs=2)
    second, _ = enqueue(conn, "tiny", "ok", spec(tmp_path, name="zoom", epochs=1), epochs=1)
    original = Trainer.run

    def run(self, *, resume=True):
        if self.spec["name"] == "ddpm":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, resume=resume)

    monkeypatch.setattr(Trainer, "run", run)
    counts = worker_module.run_worker(home, "cpu")
    assert counts == {"failed": 1, "finished": 1}
    failed = get_run(conn, first)
    assert failed["status"] == "failed" and "CUDA out of memory" in failed["error"] and "batch_size" in failed["error"]
    assert get_run(conn, second)["status"] == "finished"
