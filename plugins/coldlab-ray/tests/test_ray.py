"""coldlab-ray against a real Ray instance on this machine (marked ``cluster``: Ray takes a while to
start). A worker killed with SIGKILL mid-run, a Ray node removed mid-run and Ctrl-C on ``coldlab run``:
every run ends as it must, with no duplicate metric rows and the metrics of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))  # the core's PostgreSQL fixtures (tests/pg.py)
from pg import pg_server, pg_url  # noqa: E402,F401

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
""".replace("EPOCHS", str(EPOCHS))
    + "".join(f'\n[[experiment]]\nstudy = "ray"\nname = "r{i}"\n' for i in range(3))
)


@pytest.fixture
def study(tmp_path, monkeypatch):
    """The experiments file: three runs with the same settings, so an uninterrupted one is the reference
    for the others (computed by the same workers: Ray runs tasks with one thread, and another thread
    count changes the float rounding of a loss, not the training)."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    path = tmp_path / "exp.toml"
    path.write_text(TOML)
    return path


def assert_all_equal_to_an_uninterrupted_run(store, cut):
    """Every run finished, no metric row twice, and every run's losses equal those of one that ran through
    (the ``cut`` runs were killed or interrupted on the way)."""
    runs = store.runs()
    assert all(r.status == "finished" for r in runs), [(r.name, r.status, r.error) for r in runs]
    for r in runs:
        for name, points in r.series().items():
            steps = [p["step"] for p in points]
            assert len(steps) == len(set(steps)), (r.name, name)
    series = {r.id: [p["value"] for p in r.series("train_loss")] for r in runs}
    whole = [r.id for r in runs if r.id not in cut and r.attempts == 1]
    assert whole and set(cut) and all(len(v) == EPOCHS for v in series.values())
    assert all(series[i] == series[whole[0]] for i in series), series


def running(store, min_epoch=2, count=1):
    """Wait (on the store) until ``count`` runs are past ``min_epoch`` and not near their end; those runs."""
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        going = [r for r in store.runs("status = running") if min_epoch <= r.epoch < EPOCHS - 2]
        if len(going) >= count:
            return going
        time.sleep(0.2)
    raise AssertionError("the runs did not get going")


def coldlab_run(path, home, store, *extra, env=None):
    env = {**os.environ, "COLDLAB_LOAD_PLUGINS": "coldlab-ray", "PYTHONUNBUFFERED": "1", **(env or {})}
    cmd = [sys.executable, "-m", "coldlab", "run", str(path), "--home", str(home), "--store", store, "--executor", "ray", "--workers", "2", *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_worker_killed_with_sigkill_mid_run(tmp_path, pg_url, study):
    run = coldlab_run(study, tmp_path / "home", pg_url, "--executor-option", "num_cpus=2")
    store = coldlab.open(tmp_path / "home", store=pg_url)
    victim = running(store)[0]
    os.kill(int(victim.worker.split(":")[1]), signal.SIGKILL)
    out, _ = run.communicate(timeout=1200)
    assert run.returncode == 0, out
    assert "killed by SIGKILL" in out
    after = store.run(victim.id)
    assert (after.deaths, after.attempts) == (1, 2)
    assert_all_equal_to_an_uninterrupted_run(store, [victim.id])


def test_a_ray_node_removed_mid_run(tmp_path, pg_url, study):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        run = coldlab_run(study, tmp_path / "home", pg_url, env={"RAY_ADDRESS": cluster.address})
        store = coldlab.open(tmp_path / "home", store=pg_url)
        held = {r.id for r in running(store, count=2)}  # both nodes busy: the removed one holds a run
        cluster.remove_node(nodes[0])
        out, _ = run.communicate(timeout=1200)
        assert run.returncode == 0, out
        cut = [r.id for r in store.runs() if r.deaths]
        assert len(cut) == 1 and cut[0] in held  # the removed node's run, charged once
        assert_all_equal_to_an_uninterrupted_run(store, cut)
    finally:
        cluster.shutdown()


def test_ctrl_c_interrupts_the_runs_with_a_checkpoint(tmp_path, pg_url, study):
    home = tmp_path / "home"
    run = coldlab_run(study, home, pg_url, "--executor-option", "num_cpus=2")
    store = coldlab.open(home, store=pg_url)
    running(store)
    run.send_signal(signal.SIGINT)
    out, _ = run.communicate(timeout=600)
    assert run.returncode == 1, out
    runs = store.runs()
    interrupted = [r for r in runs if r.status == "interrupted"]
    assert interrupted and all(r.status in ("interrupted", "queued", "finished") for r in runs), [(r.name, r.status) for r in runs]
    for r in interrupted:
        assert list((home / "runs" / f"{r.id:05d}").glob("checkpoint-*")), r.name
    assert "--resume" in out
    resumed = coldlab_run(study, home, pg_url, "--resume", "--executor-option", "num_cpus=2")
    out, _ = resumed.communicate(timeout=1200)
    assert resumed.returncode == 0, out
    assert_all_equal_to_an_uninterrupted_run(store, [r.id for r in interrupted])
