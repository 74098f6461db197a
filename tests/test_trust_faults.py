"""Records a lab can trust, under faults: crafted files, a store that fails the heartbeat, worker
processes that die, a full disk, a crash before --resume. Every test synchronises on store state."""

import errno
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from coldlab import ColdlabError
from coldlab.config import load_experiments
from coldlab.engine import worker as worker_module
from coldlab.engine.checkpoint import checkpoints
from coldlab.engine.trainer import Reporter, Trainer
from coldlab.engine.worker import StoreReporter, run_one
from coldlab.home import Home
from coldlab.plugins import get_registry
from coldlab.store import claim, connect, enqueue, finish, get_run, heartbeat, requeue, running_seconds, worker_died
from test_engine import TOML as ENGINE_TOML

TOML = ENGINE_TOML[: ENGINE_TOML.index('[[experiment]]\nstudy = "tiny"\nname = "zoom"')]  # its ddpm experiment only


class Payload:
    """Unpickling this runs code: what a crafted checkpoint would do."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def spec(tmp_path, **train):
    path = tmp_path / "exp.toml"
    path.write_text(TOML)
    s = load_experiments(path)[0].to_dict()
    s["train"].update(train)
    return s


def queued(tmp_path, **train):
    home = Home(tmp_path / "home")
    conn = home.connect()
    s = spec(tmp_path, **train)
    run_id, _ = enqueue(conn, s["study"], s["name"], s, epochs=s["train"]["epochs"])
    return home, conn, run_id


# ---- data is never code -------------------------------------------------------------------------------
def test_a_planted_pickle_checkpoint_is_refused_and_does_not_run(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    marker = tmp_path / "pwned"
    torch.save({"model": Payload(marker)}, folder / "checkpoint-0099.pt")
    trainer = Trainer(spec(tmp_path), folder, registry=get_registry(), reporter=Reporter())
    with pytest.raises(ColdlabError, match=r"refused to load .*checkpoint-0099\.pt: it holds Python objects") as err:
        trainer.run()
    assert "\n" not in str(err.value) and not marker.exists()


def test_coldlab_eval_refuses_planted_weights_in_one_line(tmp_path):
    home, conn, run_id = queued(tmp_path, epochs=1)
    folder = home.run_dir(run_id)
    folder.mkdir(parents=True)
    marker = tmp_path / "pwned"
    torch.save({"model": Payload(marker), "epoch": 1, "step": 1}, folder / "weights-0001.pt")
    out = subprocess.run([sys.executable, "-m", "coldlab", "eval", str(run_id), "--home", str(home.root)],
                         capture_output=True, text=True, timeout=1800)
    assert out.returncode == 2 and "Traceback" not in out.stderr and out.stderr.count("\n") == 1, out.stderr
    assert "refused to load" in out.stderr and not marker.exists()


def test_what_coldlab_saves_loads_with_weights_only(tmp_path):
    trainer = Trainer(spec(tmp_path, epochs=1, ema=0.9), tmp_path / "run", registry=get_registry(), reporter=Reporter())
    trainer.run()
    for path in (tmp_path / "run").glob("*.pt"):
        torch.load(path, weights_only=True)  # raises if anything but tensors and plain data was saved


# ---- the heartbeat and the lease -------------------------------------------------------------------------
def test_the_heartbeat_survives_store_errors(tmp_path):
    home, conn, run_id = queued(tmp_path)
    claim(conn, "w1", "cpu", lease_s=30)
    failures, renewed = [3], threading.Event()

    def flaky(*args, **kw):
        if failures[0]:
            failures[0] -= 1
            raise ColdlabError("database is locked (injected)")
        owned = heartbeat(*args, **kw)
        renewed.set()
        return owned

    home.run_dir(run_id).mkdir(parents=True)
    reporter = StoreReporter(home, run_id, "w1", threading.Event(), lease_s=0.3, beat=flaky)
    try:
        assert renewed.wait(60), "the heartbeat thread died on its first error"
    finally:
        reporter.close()
    assert reporter.beat_errors == 3 and not reporter.lost
    assert "heartbeat failed" in home.run_log(run_id).read_text()


def test_a_worker_that_cannot_renew_its_lease_stops_without_a_checkpoint(tmp_path):
    home, conn, run_id = queued(tmp_path, epochs=2)
    row = claim(conn, "w1", "cpu")
    ticks = []

    def clock():  # time stands still for the first 3 steps, then the lease has run out
        ticks.append(1)
        return 1000.0 if len(ticks) <= 4 else 1e9

    def down(*args, **kw):
        raise ColdlabError("the store is unreachable (injected)")

    factory = lambda *a, **k: StoreReporter(*a, **k, clock=clock, beat=down)  # noqa: E731
    status = run_one(home, row, "w1", "cpu", threading.Event(), reporter_factory=factory)
    assert status == "lost"
    assert checkpoints(home.run_dir(run_id)) == []  # nothing written into a folder another worker may own
    after = get_run(conn, run_id)
    assert after["status"] == "queued" and after["worker"] is None  # back in the queue, not trained twice
    assert "lost its lease" in home.run_log(run_id).read_text()
    assert worker_module.run_worker(home, "cpu", worker="w2") == {"finished": 1}
    assert get_run(conn, run_id)["attempts"] == 2


def test_worker_deaths_requeue_then_fail_the_run(tmp_path):
    home, conn, run_id = queued(tmp_path)
    for death in (1, 2):
        claim(conn, f"host:{death}:cpu", "cpu")
        assert worker_died(conn, "host:", "killed by SIGSEGV", prefix=True) == [(run_id, "queued")]
    claim(conn, "host:3:cpu", "cpu")
    assert worker_died(conn, "host:3:cpu", "killed by SIGSEGV") == [(run_id, "failed")]
    row = get_run(conn, run_id)
    assert row["status"] == "failed" and row["error"] == "worker died 3 times (last: killed by SIGSEGV)"
    requeue(conn, run_id)  # --resume gives it its attempts back
    assert get_run(conn, run_id)["deaths"] == 0


def test_running_time_counts_only_attempts(tmp_path):
    home, conn, run_id = queued(tmp_path)
    claim(conn, "w", "cpu", now=1000.0)
    conn.execute("UPDATE runs SET heartbeat = 1010.0 WHERE id = ?", (run_id,))
    claim(conn, "w2", "cpu", now=5000.0)  # the first worker's lease ran out: 10 s of running counted, not the wait
    row = get_run(conn, run_id)
    assert row["run_seconds"] == pytest.approx(10.0) and running_seconds(row, now=5004.0) == pytest.approx(14.0)
    finish(conn, run_id, "w2", "finished", now=5006.0)
    assert running_seconds(get_run(conn, run_id)) == pytest.approx(16.0)


# ---- a plugin that kills its worker ------------------------------------------------------------------------
POISON = '''
import os, signal
import torch
from coldlab import Network, hookimpl


class PoisonNet(Network):
    """Kills the process that runs it, as a segfaulting extension would."""

    def __init__(self, params, shape, num_classes=0):
        super().__init__(params, shape, num_classes)
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, z, t, y=None):
        os.kill(os.getpid(), signal.SIGSEGV)


@hookimpl
def register_networks(register):
    register("poison-net", PoisonNet)
'''


def test_a_poison_run_fails_after_max_attempts_worker_deaths_and_the_others_finish(tmp_path, plugin_env, capfd):
    from coldlab.engine.launcher import run_file

    plugin_env("poison-plugin", "poison_plugin", POISON)
    path = tmp_path / "exp.toml"
    path.write_text(TOML + """
[[experiment]]
study = "tiny"
name = "poison"
network = "poison-net"
degradation = { name = "gaussian", schedule = { name = "linear", T = 20 } }
sampler = "ddpm"
""")
    home = Home(tmp_path / "home")
    code = run_file(str(path), home=home, max_attempts=2)  # `coldlab run --max-attempts 2`
    err = capfd.readouterr().err
    conn = home.connect(readonly=True)
    rows = {r["name"]: r for r in conn.execute("SELECT * FROM runs")}
    assert rows["poison"]["status"] == "failed" and rows["poison"]["error"] == "worker died 2 times (last: killed by SIGSEGV)"
    assert rows["ddpm"]["status"] == "finished"
    assert code == 1 and err.count("killed by SIGSEGV") >= 2 and "Traceback" not in err


def test_a_broken_plugin_is_reported_by_coldlab_plugins_only(tmp_path, plugin_env):
    plugin_env("broken-plugin", "broken_plugin", "raise ImportError('this plugin is broken')\n")
    home = tmp_path / "home"
    connect(home / "coldlab.db").close()
    env = {**os.environ}
    ls = subprocess.run([sys.executable, "-m", "coldlab", "ls", "--home", str(home)], capture_output=True, text=True, env=env)
    assert ls.returncode == 0 and ls.stderr == ""
    listed = subprocess.run([sys.executable, "-m", "coldlab", "plugins", "--json"], capture_output=True, text=True, env=env)
    [broken] = [p for p in json.loads(listed.stdout)["plugins"] if p["package"] == "broken-plugin"]
    assert "this plugin is broken" in broken["error"]


# ---- disk full ---------------------------------------------------------------------------------------------
def test_disk_full_fails_the_run_in_one_line(tmp_path, monkeypatch):
    from coldlab.engine import checkpoint

    home, conn, run_id = queued(tmp_path)
    row = claim(conn, "w1", "cpu")

    def full(obj, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(checkpoint, "save_atomic", full)
    assert run_one(home, row, "w1", "cpu", threading.Event()) == "failed"
    after = get_run(conn, run_id)
    assert after["status"] == "failed" and "\n" not in after["error"]
    assert after["error"].startswith("could not write ") and "No space left on device" in after["error"]
    assert "free some disk space" in after["error"]


# ---- --resume right after a crash --------------------------------------------------------------------------
def test_resume_after_a_crash_reclaims_the_dead_local_worker_at_once(tmp_path, capfd):
    from coldlab.engine.launcher import run_file
    from coldlab.engine.queueing import queue_runs

    path = tmp_path / "exp.toml"
    path.write_text(TOML.replace("epochs = 2", "epochs = 1"))
    home = Home(tmp_path / "home")
    conn = home.connect()
    [(_, _, run_id, _)] = list(queue_runs(conn, load_experiments(path)))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer runs: the crashed worker
    claim(conn, f"{socket.gethostname()}:{gone.pid}:cpu", "cpu", lease_s=3600)
    code = run_file(str(path), home=home, resume=True)
    err = capfd.readouterr().err
    assert code == 0, err
    assert "its worker process is gone; queued again" in err and get_run(conn, run_id)["status"] == "finished"


def test_a_run_held_by_a_live_worker_elsewhere_is_named_with_its_lease(tmp_path, capfd):
    from coldlab.engine.launcher import run_file
    from coldlab.engine.queueing import queue_runs

    path = tmp_path / "exp.toml"
    path.write_text(TOML)
    home = Home(tmp_path / "home")
    conn = home.connect()
    list(queue_runs(conn, load_experiments(path)))
    claim(conn, "gpu-node-7:4242:cuda:0", "cuda:0", lease_s=600)
    run_file(str(path), home=home, resume=True)
    err = capfd.readouterr().err
    assert "ddpm is running on worker gpu-node-7:4242:cuda:0 (its lease runs" in err


def test_torn_files_are_removed_and_a_corrupt_checkpoint_is_skipped_with_a_log_line(tmp_path):
    class Log(Reporter):
        lines: list = []

        def log(self, line):
            self.lines.append(line)

    folder = tmp_path / "run"
    first = Trainer(spec(tmp_path, epochs=1), folder, registry=get_registry(), reporter=Reporter())
    first.run()
    (folder / "checkpoint-0002.pt").write_bytes(b"PK\x03\x04 torn")
    (folder / "weights-0002.pt.123.tmp").write_bytes(b"half")
    reporter = Log()
    again = Trainer(spec(tmp_path, epochs=1), folder, registry=get_registry(), reporter=reporter)
    assert again.loop.restore() and again.epoch == 1
    assert not list(folder.glob("*.tmp"))
    assert any("skipped unreadable checkpoint checkpoint-0002.pt" in line for line in reporter.lines)
    assert any("weights-0002.pt.123.tmp" in line for line in reporter.lines)


def test_step_losses_reach_the_reporter_as_they_are_logged(tmp_path):
    seen = []

    class Live(Reporter):
        def metrics(self, rows):
            seen.append([r[:2] for r in rows])

        def progress(self, epoch, step, total):
            seen.append(("step", step))

    Trainer(spec(tmp_path, epochs=1), tmp_path / "run", registry=get_registry(), reporter=Live()).run()
    # the loss of step 2 is written right after step 2, not at the end of the epoch
    assert seen.index([("train_loss_step", 2)]) < seen.index(("step", 3))
