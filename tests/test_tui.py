"""The dashboard with Textual's Pilot against a temporary store: live updates, queue control,
bad input, and text snapshots of the main screens with frozen data (80x24)."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("textual")  # the dashboard is optional at run time; the dev install has it

from coldlab.store import claim, connect, enqueue, finish, record_evaluation, record_metrics  # noqa: E402
from coldlab.tui.app import ColdlabApp  # noqa: E402
from coldlab.formatting import format_number  # noqa: E402
from coldlab.tui.data import load_snapshot  # noqa: E402
from textual.widgets import DataTable, Sparkline, Static  # noqa: E402

SNAPSHOTS = Path(__file__).parent / "snapshots"
FROZEN = 1_700_000_000.0
CONFIG = {"dataset": {"name": "synthetic"}, "degradation": {"name": "zoom"}, "sampler": {"name": "cold-improved"},
          "network": {"name": "cnn"}, "prior": {"name": "gaussian"}, "train": {"epochs": 4}, "eval": {}}


@pytest.fixture
def home(tmp_path):
    conn = connect(tmp_path / "coldlab.db")
    for study, name in (("000", "ddpm-linear"), ("000", "cold-zoom"), ("002", "blur")):
        enqueue(conn, study, name, {**CONFIG, "name": name}, epochs=4)
    conn.close()
    return tmp_path


def start_running(home, now=FROZEN):
    """Claim run 1 as a worker would, and record some progress."""
    conn = connect(home / "coldlab.db")
    row = claim(conn, "host:1:cpu", "cpu", now=now)
    conn.execute("UPDATE runs SET epoch = 1, step = 10, total_steps = 40, started = ?, attempt_started = ? WHERE id = ?",
                 (now - 30, now - 30, row["id"]))
    conn.commit()
    return conn, row["id"]


def app_for(home, **kw):
    return ColdlabApp(home, poll_s=0.1, clock=lambda: FROZEN, show_devices=False, show_timing=False, **kw)


def cell(app, run_id, column):
    return str(app.query_one("#runs", DataTable).get_cell(str(run_id), column))


async def settle(pilot, app, polls=2):
    start = app.polls
    for _ in range(100):
        await pilot.pause(0.05)
        if app.polls >= start + polls:
            return


async def test_table_and_sparklines_follow_a_writer(home):
    conn, run_id = start_running(home)
    app = app_for(home)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        assert cell(app, run_id, "status") == "running" and cell(app, 2, "status") == "queued"
        assert app.selected == run_id
        losses = [1.0, 0.8, 0.5]
        record_metrics(conn, run_id, [("train_loss_step", i + 1, 1, v, None) for i, v in enumerate(losses)])
        record_evaluation(conn, run_id, origin="training", epoch=1, step=3, sampler={"name": "ddpm"}, settings={},
                          results=[("fid", 42.5, {}), ("classifier-fid", 3.0, {})], key=f"run{run_id}:training:1", series=True)
        await settle(pilot, app)
        assert cell(app, run_id, "train") == format_number(0.5)
        assert cell(app, run_id, "fid") == format_number(42.5)
        assert app.query_one("#spark-train_loss", Sparkline).data == losses
        assert app.query_one("#spark-fid", Sparkline).data == [42.5]
        record_metrics(conn, run_id, [("train_loss_step", 4, 2, 0.25, None), ("val_loss", 4, 2, 0.3, None)])
        conn.execute("UPDATE runs SET epoch = 2, step = 20 WHERE id = ?", (run_id,))
        conn.commit()
        await settle(pilot, app)
        assert app.query_one("#spark-train_loss", Sparkline).data == losses + [0.25]
        assert app.query_one("#spark-val_loss", Sparkline).data == [0.3]
        assert cell(app, run_id, "val") == format_number(0.3) and cell(app, run_id, "progress").startswith("2/4")
        assert cell(app, run_id, "eta") == "0m30s"  # 20 of 40 steps in 30 s
        finish(conn, run_id, "host:1:cpu", "finished")
        await settle(pilot, app)
        assert cell(app, run_id, "status") == "finished"


async def test_polls_never_overlap_and_the_store_is_read_only(home, monkeypatch):
    import coldlab.tui.app as app_module
    import threading
    import time

    active, seen = [0], []
    lock = threading.Lock()
    real = app_module.load_snapshot

    def slow(*args, **kw):
        with lock:
            active[0] += 1
            seen.append(active[0])
        time.sleep(0.3)
        try:
            return real(*args, **kw)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(app_module, "load_snapshot", slow)
    app = ColdlabApp(home, poll_s=0.05, clock=lambda: FROZEN, show_devices=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(1.0)
    assert seen and max(seen) == 1  # ticks every 50 ms, reads of 300 ms: never two at once
    snap = load_snapshot(home, 1)
    assert len(snap.rows) == 3
    with pytest.raises(Exception, match="readonly|read-only"):
        connect(home / "coldlab.db", readonly=True).execute("DELETE FROM runs")


async def test_a_bad_toml_shows_an_error_and_the_app_keeps_running(home, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[experiment]]\nstudy = "x"\nname = "oops"\ndataset = "mnist"\nnetwork = "cnn"\n'
                   'degradation = { name = "gaussian", schedule = { name = "linear", T = -3 } }\nsampler = "ddpm"\n')
    good = tmp_path / "good.toml"
    good.write_text('[[experiment]]\nstudy = "new"\nname = "fresh"\ndataset = { name = "synthetic", train = 32, test = 8, size = 16 }\n'
                    'network = { name = "cnn", channels = [4, 4] }\ndegradation = "zoom"\nsampler = "cold-improved"\n')
    app = app_for(home)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        await pilot.press("a")
        await pilot.pause(0.1)
        for ch in str(bad):
            await pilot.press(ch)
        await pilot.press("enter")
        await pilot.pause(0.2)
        message = str(app.query_one("#message", Static).content)
        assert "bad.toml" in message and "oops" in message and "T" in message
        app.add_file(str(tmp_path / "missing.toml"))
        assert "missing.toml" in str(app.query_one("#message", Static).content)
        app.add_file(str(good))
        await settle(pilot, app)
        assert cell(app, 4, "name") == "fresh" and cell(app, 4, "status") == "queued"
        assert app.is_running


async def test_cancel_resume_and_reorder_go_through_the_queue(home):
    conn, run_id = start_running(home)
    app = app_for(home)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        await pilot.press("c")  # run 1 is running: the worker is asked to stop
        assert tuple(conn.execute("SELECT cancel_requested, status FROM runs WHERE id = 1").fetchone()) == (1, "running")
        await settle(pilot, app)
        assert "cancelling" in cell(app, 1, "status")
        await pilot.press("down")
        await settle(pilot, app)
        assert app.selected == 2
        await pilot.press("plus")
        assert conn.execute("SELECT priority FROM runs WHERE id = 2").fetchone()[0] == 1
        await pilot.press("c")  # a queued run is cancelled at once
        assert conn.execute("SELECT status FROM runs WHERE id = 2").fetchone()[0] == "cancelled"
        await pilot.press("r")
        assert conn.execute("SELECT status FROM runs WHERE id = 2").fetchone()[0] == "queued"
        await pilot.press("up")
        await settle(pilot, app)
        await pilot.press("r")  # a running run cannot be requeued: an error line, no crash
        assert "cannot be requeued" in str(app.query_one("#message", Static).content)


async def test_filters_by_study_and_status(home):
    app = app_for(home)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        assert app.query_one("#runs", DataTable).row_count == 3
        app.query_one("#study-filter").value = "002"
        await pilot.pause(0.2)
        assert [k.value for k in app.query_one("#runs", DataTable).rows] == ["3"]
        app.query_one("#study-filter").value = ""
        app.query_one("#status-filter").value = "running"
        await pilot.pause(0.2)
        assert app.query_one("#runs", DataTable).row_count == 0


# ---- snapshots (text of the screen; pytest-textual-snapshot is not installable offline here) ----
def screen_text(app) -> str:
    svg = app.export_screenshot()
    rows: dict[float, list[tuple[float, str]]] = {}
    for m in re.finditer(r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', svg):
        rows.setdefault(float(m.group(2)), []).append((float(m.group(1)), html.unescape(m.group(3))))
    lines = []
    for y in sorted(rows):
        line = ""
        for x, text in sorted(rows[y]):
            line = line.ljust(int(round(x / 12.2))) + text
        lines.append(line.replace("\xa0", " ").rstrip())
    return "\n".join(lines) + "\n"


def check_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("COLDLAB_UPDATE_SNAPSHOTS") or not path.exists():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        if not os.environ.get("COLDLAB_UPDATE_SNAPSHOTS"):
            pytest.fail(f"snapshot {path.name} was missing and has been written: check it and run again")
    assert text == path.read_text(), f"screen differs from {path} (COLDLAB_UPDATE_SNAPSHOTS=1 rewrites it)"


@pytest.fixture
def frozen_home(home):
    conn, run_id = start_running(home)
    record_metrics(conn, run_id, [("train_loss_step", i + 1, 1, 1.0 / (i + 1), None) for i in range(10)])
    record_evaluation(conn, run_id, origin="training", epoch=1, step=10, sampler={"name": "ddpm"}, settings={},
                      results=[("classifier-fid", 12.5, {})], key=f"run{run_id}:training:1", series=True)
    conn.close()
    return home


@pytest.mark.parametrize("keys, name", [((), "main"), (("question_mark",), "help"), (("p",), "plugins")])
async def test_screens_match_their_snapshots(frozen_home, keys, name, monkeypatch):
    monkeypatch.setenv("COLDLAB_LOAD_PLUGINS", "")
    from coldlab import plugins

    monkeypatch.setattr(plugins, "_HOST", None)
    app = app_for(frozen_home)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        for key in keys:
            await pilot.press(key)
        await pilot.pause(0.3)
        text = screen_text(app)
    check_snapshot(name, text.replace(frozen_home.name, "HOME"))


def test_the_core_and_the_dashboard_data_import_without_textual():
    code = ("import sys; sys.modules['textual'] = None\n"
            "import coldlab, coldlab.cli, coldlab.tui.data, coldlab.tui.render, coldlab.report\n"
            "assert not any(m.startswith('textual') for m in sys.modules if sys.modules[m] is not None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


async def test_compare_shows_marked_runs_side_by_side_and_exports_them(frozen_home):
    conn = connect(frozen_home / "coldlab.db")
    record_evaluation(conn, 2, origin="training", epoch=1, step=5, sampler={"name": "ddpm"}, settings={},
                      results=[("classifier-fid", 20.0, {}), ("fid", None, {"unavailable": "no Inception weights"})],
                      key="run2:training:1", series=True)
    conn.close()
    app = app_for(frozen_home)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        await pilot.press("space")
        await pilot.press("down")
        await settle(pilot, app)
        await pilot.press("space")
        assert app.marked == {1, 2}
        await pilot.press("m")
        for _ in range(50):
            await pilot.pause(0.1)
            table = app.screen.query_one("#compare", DataTable)
            if table.row_count:
                break
        rows = {str(table.get_row_at(i)[0]): [str(c) for c in table.get_row_at(i)[1:]] for i in range(table.row_count)}
        assert rows["classifier-fid"] == [format_number(12.5), format_number(20.0)]
        assert rows["fid"] == ["", "unavailable"]
        await pilot.press("e")
        for _ in range(100):
            await pilot.pause(0.1)
            if "exported to" in str(app.screen.query_one("#compare-message", Static).content):
                break
        message = str(app.screen.query_one("#compare-message", Static).content)
        assert "exported to" in message
        report = Path(message.split("exported to ", 1)[1].strip())
        assert report.exists() and "run 1" in report.read_text() and "run 2" in report.read_text()


async def test_devices_panel_says_which_run_uses_each_device(frozen_home):
    app = app_for(frozen_home)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        app._apply_devices([{"device": "cpu", "name": "2 cores", "memory_used": 2 ** 30, "memory_total": 4 * 2 ** 30,
                             "utilisation": "load 0.50"}])
        text = str(app.query_one("#devices", Static).content)
        assert "cpu (2 cores): 1.0/4.0 GiB load 0.50" in text and "runs: #1" in text


async def test_a_worker_started_from_the_dashboard_trains_and_outlives_it(tmp_path):
    conn = connect(tmp_path / "coldlab.db")
    spec = {"study": "w", "name": "tiny", "dataset": {"name": "synthetic", "size": 8, "train": 32, "test": 8},
            "network": {"name": "cnn", "channels": [4, 4]}, "degradation": {"name": "zoom", "final_size": 4},
            "prior": "gaussian", "sampler": "cold-improved", "train": {"epochs": 1, "batch_size": 16}, "eval": {"every": 1, "grid": 4, "samples": 4}}
    enqueue(conn, "w", "tiny", spec, epochs=1)
    app = app_for(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, app)
        app.start_worker("cpu")
        handle = app.workers_started[0]
        assert os.getsid(handle.proc.pid) != os.getsid(0)  # its own session: closing the dashboard does not stop it
    assert handle.proc.wait(timeout=900) == 0
    assert conn.execute("SELECT status FROM runs WHERE name = 'tiny'").fetchone()[0] == "finished"
    tail = load_snapshot(tmp_path, 1).detail.log_tail
    assert "claimed by" in tail[0] and any("train_loss" in line for line in tail) and tail[-1].endswith("finished")


async def test_stopping_a_device_interrupts_its_worker_and_the_run_can_resume(tmp_path):
    conn = connect(tmp_path / "coldlab.db")
    spec = {"study": "w", "name": "long", "dataset": {"name": "synthetic", "size": 16, "train": 2000, "test": 8},
            "network": {"name": "cnn", "channels": [8, 8]}, "degradation": {"name": "zoom", "final_size": 4},
            "prior": "gaussian", "sampler": "cold-improved", "train": {"epochs": 50, "batch_size": 16}, "eval": {"every": 50}}
    enqueue(conn, "w", "long", spec, epochs=50)
    app = app_for(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        app.start_worker("cpu")
        for _ in range(300):
            await pilot.pause(0.1)
            if conn.execute("SELECT step FROM runs WHERE id = 1").fetchone()[0] > 0:
                break
        await settle(pilot, app)
        assert app.stop_workers("cpu") >= 1
    assert app.workers_started[0].proc.wait(timeout=900) is not None
    status, epoch = conn.execute("SELECT status, epoch FROM runs WHERE id = 1").fetchone()
    assert status == "interrupted" and epoch < 50


def test_a_run_waiting_for_another_says_which(tmp_path):
    from coldlab.tui.app import row_cells
    from coldlab.tui.data import load_rows

    conn = connect(tmp_path / "coldlab.db")
    ae, _ = enqueue(conn, "s", "vae", {})
    enqueue(conn, "s", "ldm", {}, depends_on=ae)
    rows = {r.name: r for r in load_rows(conn)}
    assert str(row_cells(rows["ldm"])[4]) == f"queued (after {ae})" and str(row_cells(rows["vae"])[4]) == "queued"
