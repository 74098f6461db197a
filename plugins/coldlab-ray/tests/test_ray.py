"""coldlab-ray against a real Ray instance on this machine (marked ``cluster``: Ray takes a while to
start). A worker killed with SIGKILL mid-run, a Ray node removed mid-run and Ctrl-C on ``coldlab run``:
every run ends as it must, with no duplicate metric rows and the metrics of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

ray = pytest.importorskip("ray")

from coldlab import plugins  # noqa: E402
from coldlab.home import Home  # noqa: E402
from coldlab.store import connect, get_run, list_runs, metric_series  # noqa: E402

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
    monkeypatch.setenv("COLDLAB_LOAD_PLUGINS", "coldlab-ray")
    monkeypatch.setattr(plugins, "_HOST", None)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    path = tmp_path / "exp.toml"
    path.write_text(TOML)
    return path


def assert_all_equal_to_an_uninterrupted_run(conn, cut):
    """Every run finished, no metric row twice, and every run's losses equal those of one that ran through
    (the ``cut`` runs were killed or interrupted on the way)."""
    dup = conn.execute("SELECT run_id, name, step, COUNT(*) FROM metrics GROUP BY run_id, name, step HAVING COUNT(*) > 1").fetchall()
    assert dup == []
    runs = list_runs(conn)
    assert all(r["status"] == "finished" for r in runs), [dict(r) for r in runs]
    series = {r["id"]: [p["value"] for p in metric_series(conn, r["id"])["train_loss"]] for r in runs}
    whole = [r["id"] for r in runs if r["id"] not in cut and r["attempts"] == 1]
    assert whole and set(cut) and all(len(v) == EPOCHS for v in series.values())
    assert all(series[i] == series[whole[0]] for i in series), series


def running_worker(conn, min_epoch=2):
    """Wait (on the store) for a run past ``min_epoch``; its row."""
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        for r in list_runs(conn, status="running"):
            if r["epoch"] >= min_epoch and r["epoch"] < EPOCHS - 2:
                return r
        time.sleep(0.2)
    raise AssertionError("no run got going")


def coldlab_run(path, home, store, *extra):
    env = {**os.environ, "COLDLAB_LOAD_PLUGINS": "coldlab-ray", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "coldlab", "run", str(path), "--home", str(home), "--store", store, "--executor", "ray", "--workers", "2"]
    return subprocess.Popen([*cmd, "--executor-option", "num_cpus=2", *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_worker_killed_with_sigkill_mid_run(tmp_path, pg_url, study):
    path = study
    run = coldlab_run(path, tmp_path / "home", pg_url)
    conn = connect(pg_url)
    victim = running_worker(conn)
    pid = int(victim["worker"].split(":")[1])
    os.kill(pid, signal.SIGKILL)
    out, _ = run.communicate(timeout=1200)
    assert run.returncode == 0, out
    assert "killed by SIGKILL" in out
    row = get_run(conn, victim["id"])
    assert (row["deaths"], row["attempts"]) == (1, 2), dict(row)
    assert_all_equal_to_an_uninterrupted_run(conn, [victim["id"]])


def test_a_ray_node_removed_mid_run(tmp_path, pg_url, study):
    from ray.cluster_utils import Cluster

    from coldlab.engine.launcher import run_file

    path = study
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    result = {}
    try:
        runner = threading.Thread(
            target=lambda: result.setdefault("code", run_file(str(path), home=Home(tmp_path / "home", pg_url), executor={"name": "ray"}, workers=2))
        )
        runner.start()
        conn = connect(pg_url)
        running_worker(conn)
        while len(list_runs(conn, status="running")) < 2:  # both nodes busy: the removed one holds a run
            time.sleep(0.2)
        held = [r["id"] for r in list_runs(conn, status="running")]
        cluster.remove_node(nodes[0])
        runner.join(timeout=1200)
        assert result.get("code") == 0
        cut = [r["id"] for r in list_runs(conn) if r["deaths"]]
        assert len(cut) == 1 and cut[0] in held  # the removed node's run, charged once
        assert_all_equal_to_an_uninterrupted_run(conn, cut)
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_ctrl_c_interrupts_the_runs_with_a_checkpoint(tmp_path, pg_url, study):
    path = study
    home = tmp_path / "home"
    run = coldlab_run(path, home, pg_url)
    conn = connect(pg_url)
    running_worker(conn)
    run.send_signal(signal.SIGINT)
    out, _ = run.communicate(timeout=600)
    assert run.returncode == 1, out
    rows = list_runs(conn)
    interrupted = [r for r in rows if r["status"] == "interrupted"]
    assert interrupted and all(r["status"] in ("interrupted", "queued", "finished") for r in rows), [dict(r) for r in rows]
    for r in interrupted:
        assert list((home / "runs" / f"{r['id']:05d}").glob("checkpoint-*")), r["name"]
    assert "--resume" in out
    resumed = coldlab_run(path, home, pg_url, "--resume")
    out, _ = resumed.communicate(timeout=1200)
    assert resumed.returncode == 0, out
    assert_all_equal_to_an_uninterrupted_run(conn, [r["id"] for r in interrupted])
