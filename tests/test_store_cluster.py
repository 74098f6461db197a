"""coldlab on a PostgreSQL store as a user drives it: ``coldlab run --store``, the dashboard, the
executor table and options, the refusal of a remote executor on SQLite, and (marked ``cluster``) a
worker riding out the database stopped for 10 s mid-run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from coldlab import ColdlabError
from coldlab.config import load_experiments
from coldlab.engine.executor_spec import executor_spec, parse_option
from coldlab.engine.trainer import Trainer
from coldlab.home import Home
from coldlab.plugins import get_registry
from coldlab.store import claim, connect, enqueue, get_run, list_runs, metric_series, record_metrics
from test_engine import TOML, Recorder

EPOCHS = 24
DDPM_ONLY = TOML[: TOML.index('[[experiment]]\nstudy = "tiny"\nname = "zoom"')]


def cli(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "coldlab", *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, **kw)


def test_coldlab_run_ls_show_and_export_on_a_postgres_store(tmp_path, pg_url):
    toml = tmp_path / "exp.toml"
    toml.write_text(TOML)
    home = tmp_path / "home"
    done = cli("run", str(toml), "--home", str(home), "--store", pg_url, "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "2/2 runs finished; store: postgresql://" in done.stderr
    assert not (home / "coldlab.db").exists()  # HOME holds the run folders only
    listed = cli("ls", "--json", "--home", str(home), env={"COLDLAB_STORE": pg_url})
    runs = json.loads(listed.stdout)
    assert [(r["name"], r["status"], r["epoch"]) for r in runs] == [("ddpm", "finished", 2), ("zoom", "finished", 2)]
    conn = connect(pg_url)
    assert [p["step"] for p in metric_series(conn, 1)["train_loss"]] == [1, 2]
    workers = {r[0] for r in conn.execute("SELECT provenance FROM runs")}
    assert all(json.loads(w)["ran"]["device"] == "cpu" for w in workers)
    out = tmp_path / "report"
    exported = cli("export", "--out", str(out), "--home", str(home), "--store", pg_url, "--no-model-figures", "--format", "md,json")
    assert exported.returncode == 0, exported.stderr
    table = (out / "table-tiny.md").read_text()
    assert "ddpm" in table and "zoom" in table
    again = cli("run", str(toml), "--home", str(home), "--store", pg_url)
    assert "ddpm already finished (run 1)" in again.stderr


def test_workstations_queue_once_and_each_run_a_worker(tmp_path, pg_url):
    """No scheduler: queue with --queue-only, then `coldlab worker --store URL` on each box (two here, at once)."""
    toml = tmp_path / "exp.toml"
    toml.write_text(TOML)
    home = tmp_path / "home"
    queued = cli("run", str(toml), "--home", str(home), "--store", pg_url, "--queue-only")
    assert queued.returncode == 0 and "queued 2 run(s) (1, 2); start workers with: coldlab worker --home" in queued.stderr
    assert [r["status"] for r in list_runs(connect(pg_url))] == ["queued", "queued"]
    cmd = [sys.executable, "-m", "coldlab", "worker", "--home", str(home), "--store", pg_url, "--device", "cpu"]
    boxes = [subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    said = [b.communicate(timeout=600)[1] for b in boxes]
    assert [b.returncode for b in boxes] == [0, 0], said
    runs = list_runs(connect(pg_url))
    assert [(r["status"], r["attempts"]) for r in runs] == [("finished", 1), ("finished", 1)]


def test_a_remote_executor_refuses_a_sqlite_store(tmp_path, plugin_env):
    plugin_env(
        "coldlab-farway",
        "coldlab_farway",
        "from coldlab import Executor, hookimpl\n"
        "class Farway(Executor):\n    remote = True\n    def start(self, home, devices, logs):\n        raise AssertionError('never started')\n"
        "@hookimpl\ndef register_executors(register):\n    register('farway', Farway)\n",
    )
    toml = tmp_path / "exp.toml"
    toml.write_text(DDPM_ONLY)
    done = cli("run", str(toml), "--home", str(tmp_path / "home"), "--executor", "farway")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    line = done.stderr.strip()
    assert line.count("\n") == 0
    assert "the farway executor runs workers on other machines, which cannot share the SQLite store" in line
    assert "hint: give a PostgreSQL store every node reaches (--store postgresql://" in line
    assert not (tmp_path / "home" / "coldlab.db").exists()  # refused before anything was queued


def test_executor_table_and_options(tmp_path):
    toml = tmp_path / "exp.toml"
    toml.write_text(DDPM_ONLY + '\n[executor]\nname = "local"\ndetach = true\n')
    assert load_experiments(toml)[0].name == "ddpm"  # [executor] is a known top-level table
    in_file = (str(toml), "executor")
    assert executor_spec(toml, None, None) == ({"name": "local", "detach": True}, {"": in_file, "detach": in_file})
    assert executor_spec(toml, None, ["detach=false"]) == ({"name": "local", "detach": False}, {"": in_file, "detach": ("--executor-option",)})
    assert executor_spec(toml, "other", None) == ("other", {"": ("--executor",)})  # another executor: the table's parameters do not apply
    assert executor_spec(None, None, None) == ("local", {"": ()})
    assert parse_option("partition=gpu") == ("partition", "gpu") and parse_option('extra=["--qos=high"]') == ("extra", ["--qos=high"])
    assert parse_option("time_min=90") == ("time_min", 90)
    with pytest.raises(ColdlabError, match="bad --executor-option 'partition'"):
        parse_option("partition")
    toml.write_text(DDPM_ONLY + '\n[executor]\nname = "local"\ndetach = "often"\n')
    bad = cli("run", str(toml), "--home", str(tmp_path / "home"))
    assert bad.returncode == 2 and f"{toml}: executor: detach" in bad.stderr and "Traceback" not in bad.stderr
    opt = cli("run", str(toml), "--home", str(tmp_path / "home"), "--executor-option", "detach=true", "--executor-option", "speed=3")
    assert opt.returncode == 2 and "error: --executor-option: speed: " in opt.stderr and "Traceback" not in opt.stderr


async def test_the_dashboard_reads_a_postgres_store(tmp_path, pg_url):
    pytest.importorskip("textual")
    from textual.widgets import Sparkline

    from coldlab.tui.widgets.runs_table import RunsTable

    from coldlab.tui.app import ColdlabApp

    conn = connect(pg_url)
    for name in ("ddpm-linear", "cold-zoom"):
        enqueue(conn, "000", name, {"name": name, "train": {"epochs": 4}}, epochs=4)
    row = claim(conn, "host:1:cpu", "cpu")
    record_metrics(conn, row["id"], [("train_loss_step", i + 1, 1, v, None) for i, v in enumerate([1.0, 0.5, 0.25])])
    app = ColdlabApp(Home(tmp_path, pg_url), poll_s=0.1, show_devices=False, show_timing=False)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(200):
            await pilot.pause(0.05)
            if app.polls >= 2:
                break
        table = app.query_one("#runs", RunsTable)
        assert table.cell_text(row["id"], "status") == "running" and table.cell_text(2, "status") == "queued"
        for _ in range(200):  # the selected run's detail comes with the poll after the first
            if app.query_one("#spark-train_loss", Sparkline).data:
                break
            await pilot.pause(0.05)
        assert app.query_one("#spark-train_loss", Sparkline).data == [1.0, 0.5, 0.25]
        table.move_cursor(row=1)
        await pilot.press("c", "y")  # cancel the queued run (asked first): the write goes to PostgreSQL
        for _ in range(200):
            await pilot.pause(0.05)
            if get_run(conn, 2)["status"] == "cancelled":
                break
    assert get_run(conn, 2)["status"] == "cancelled"


def _connections(admin_url: str, database: str) -> int:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as c:
        return int(c.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)).fetchone()[0])


@pytest.mark.cluster
def test_a_worker_rides_out_postgres_stopped_for_10_s(tmp_path, pg_server, pg_url):
    """The database stops for 10 s mid-run (shorter than the 30 s lease): the worker pauses, reconnects
    and finishes the run in its first attempt, with the metrics of an uninterrupted run. It holds two
    connections meanwhile (its loop and its heartbeat)."""
    if pg_server.folder is None:
        pytest.skip("an external server is not stopped by the tests")
    toml = tmp_path / "exp.toml"
    toml.write_text(DDPM_ONLY)
    spec = load_experiments(toml)[0].to_dict()
    spec["train"]["epochs"], spec["dataset"]["train"] = EPOCHS, 1024  # long enough to stop the database mid-run
    reference = Recorder()
    Trainer(spec, tmp_path / "reference", registry=get_registry(), reporter=reference).run()
    expected = [v for n, _, _, v, _ in reference.rows if n == "train_loss"]

    conn = connect(pg_url)
    run_id, _ = enqueue(conn, spec["study"], spec["name"], spec, epochs=EPOCHS)
    home = tmp_path / "home"
    log = open(tmp_path / "worker.log", "w")
    cmd = [sys.executable, "-m", "coldlab", "worker", "--home", str(home), "--store", pg_url, "--device", "cpu"]
    worker = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    database, held = pg_url.rsplit("/", 1)[1], 0
    try:
        while (row := get_run(conn, run_id))["epoch"] < EPOCHS // 3:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            held = max(held, _connections(pg_server.admin_url, database) - 1)  # less this test's own
            time.sleep(0.2)
        assert row["status"] == "running"  # mid-run
        conn.close()
        pg_server.stop("fast")
        time.sleep(10)  # the outage itself
        pg_server.start()
        assert worker.wait(timeout=900) == 0, (tmp_path / "worker.log").read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
        log.close()
    conn = connect(pg_url)
    row = get_run(conn, run_id)
    assert (row["status"], row["attempts"], row["deaths"]) == ("finished", 1, 0), dict(row)
    assert [p["value"] for p in metric_series(conn, run_id)["train_loss"]] == expected
    assert 1 <= held <= 2  # its loop and its heartbeat
    assert "retrying" in (tmp_path / "worker.log").read_text()
