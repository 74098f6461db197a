"""coldlab-slurm with submitit's local mode (marked ``cluster``): a job preempted with SIGUSR2 (what
SLURM sends before the time limit, and submitit turns into a requeue) or a worker sent SIGTERM (what
SLURM sends when it preempts or cancels): the run goes back to the queue, not ``interrupted``, and
finishes in the next job with the metrics of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("submitit")

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))  # the core's PostgreSQL fixtures (tests/pg.py)
from pg import pg_server, pg_url  # noqa: E402,F401

from coldlab_slurm import sbatch_options  # noqa: E402

import coldlab  # noqa: E402

pytestmark = pytest.mark.cluster

EPOCHS = 16
TOML = (
    """
[defaults]
dataset = { name = "synthetic", train = 1024, test = 16, size = 16 }
network = { name = "cnn", channels = [8, 8], time_hidden = [16] }
degradation = { name = "gaussian", schedule = { name = "linear", T = 20 } }
sampler = "ddpm"
train = { epochs = EPOCHS, batch_size = 16, log_every = 2, val_fraction = 0.25 }
eval = { every = 4, grid = 4 }

[executor]
name = "slurm"
cluster = "local"
time_min = 30
""".replace("EPOCHS", str(EPOCHS))
    + "".join(f'\n[[experiment]]\nstudy = "slurm"\nname = "r{i}"\n' for i in range(2))
)


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def preempt(tmp_path, pg_url, signum, target):
    """``coldlab run`` with one local job; once run r0 is a few epochs in, ``signum`` goes to ``target``
    (the job's task process, or the worker process itself). Returns (output, exit code, the store)."""
    path = tmp_path / "exp.toml"
    path.write_text(TOML)
    env = {**os.environ, "COLDLAB_LOAD_PLUGINS": "coldlab-slurm", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "coldlab", "run", str(path), "--home", str(tmp_path / "home"), "--store", pg_url, "--workers", "1"]
    run = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    store = coldlab.open(tmp_path / "home", store=pg_url)
    deadline = time.monotonic() + 900
    while not (going := [r for r in store.runs("status = running", "id = 1") if 3 <= r.epoch < EPOCHS - 3]):
        assert time.monotonic() < deadline and run.poll() is None, run.stdout.read() if run.poll() is not None else "timed out"
        time.sleep(0.2)
    worker_pid = int(going[0].worker.split(":")[1])
    os.kill(parent_of(worker_pid) if target == "task" else worker_pid, signum)
    out, _ = run.communicate(timeout=1200)
    return out, run.returncode, store


def assert_requeued_and_finished(tmp_path, store):
    r0, r1 = store.runs()
    assert (r0.status, r0.attempts, r0.deaths, r0.error) == ("finished", 2, 0, None), r0
    assert "preempted: checkpointed and queued again" in (tmp_path / "home" / "runs" / "00001" / "run.log").read_text()
    assert r1.status == "finished" and r1.attempts == 1
    loss = {r.id: [p["value"] for p in r.series("train_loss")] for r in (r0, r1)}
    assert len(loss[1]) == EPOCHS and loss[1] == loss[2]  # the preempted run equals the one that ran through


def test_sigusr2_to_the_job_requeues_the_run_and_the_job(tmp_path, pg_url):
    out, code, store = preempt(tmp_path, pg_url, signal.SIGUSR2, "task")
    assert code == 0, out
    assert_requeued_and_finished(tmp_path, store)
    logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "home" / "logs" / "slurm").rglob("*_log.*"))
    assert "Requeued job" in logs  # submitit's requeue, not a new job
    assert len(list((tmp_path / "home" / "logs").glob("slurm-worker-*.log"))) == 2  # the job ran twice


def test_sigterm_to_the_worker_gives_the_run_back_and_a_new_job_takes_it(tmp_path, pg_url):
    out, code, store = preempt(tmp_path, pg_url, signal.SIGTERM, "worker")
    assert code == 0, out
    assert_requeued_and_finished(tmp_path, store)


def test_sbatch_options_and_a_sqlite_store_is_refused(tmp_path):
    assert sbatch_options(["--qos=high", "--exclusive", "--constraint=a100"]) == {"qos": "high", "exclusive": True, "constraint": "a100"}
    path = tmp_path / "exp.toml"
    path.write_text(TOML)
    env = {**os.environ, "COLDLAB_LOAD_PLUGINS": "coldlab-slurm"}
    done = subprocess.run(
        [sys.executable, "-m", "coldlab", "run", str(path), "--home", str(tmp_path / "home")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2 and "the slurm executor runs workers on other machines" in done.stderr and f"{path}: executor" in done.stderr
