"""The dashboard with Textual's Pilot against a temporary store: live updates, queue control, bad input,
columns by priority, sort, filter, compare, confirmations, keys scoped to their screen, and snapshots of the
main screens with frozen data at 80x24 (pytest-textual-snapshot; ``--snapshot-update`` rewrites them)."""

from __future__ import annotations

import os
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


def runs_table(app):
    from coldlab.tui.widgets.runs_table import RunsTable

    return app.main.query_one("#runs", RunsTable)


def cell(app, run_id, column):
    return runs_table(app).cell_text(run_id, column)


async def settle(pilot, app, polls=2):
    start = app.polls
    for _ in range(100):
        await pilot.pause(0.05)
        if app.polls >= start + polls:
            return


def message(app) -> str:
    return str(app.main.query_one("#message", Static).content)


async def wait_for(pilot, condition, what, steps=6000):
    """Pause until ``condition()`` holds (a subprocess, a worker thread): synchronised on state, with a
    generous bound only so a broken dashboard fails instead of hanging."""
    for _ in range(steps):
        if condition():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"never happened: {what}")


WIDE = (220, 50)  # every column fits

async def test_table_and_sparklines_follow_a_writer(home):
    conn, run_id = start_running(home)
    app = app_for(home)
    async with app.run_test(size=WIDE) as pilot:
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
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot, app)
        await pilot.press("a")
        await pilot.pause(0.1)
        for ch in str(bad):
            await pilot.press(ch)
        await pilot.press("enter")
        # validated in a subprocess: the dashboard keeps polling meanwhile (nothing loads on the UI thread)
        polls = app.polls
        await wait_for(pilot, lambda: "oops" in message(app), "the error line")
        assert app.polls > polls
        assert "bad.toml" in message(app) and "T" in message(app) and "Traceback" not in message(app)
        app.add_file(str(tmp_path / "missing.toml"))
        await wait_for(pilot, lambda: "missing.toml" in message(app) and "validating" not in message(app), "the missing-file line")
        app.add_file(str(good))
        await wait_for(pilot, lambda: "queued 1 run" in message(app), "the queued line")
        await settle(pilot, app)
        assert cell(app, 4, "name") == "fresh" and cell(app, 4, "status") == "queued"
        assert app.is_running


async def test_cancel_resume_and_reorder_go_through_the_queue(home):
    conn, run_id = start_running(home)
    app = app_for(home)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot, app)
        await pilot.press("c")
        await pilot.press("n")  # asked first: no changes nothing
        assert tuple(conn.execute("SELECT cancel_requested, status FROM runs WHERE id = 1").fetchone()) == (0, "running")
        await pilot.press("c")
        assert "Cancel run 1" in str(app.screen.query_one("#question", Static).content)
        await pilot.press("y")  # run 1 is running: the worker is asked to stop
        assert tuple(conn.execute("SELECT cancel_requested, status FROM runs WHERE id = 1").fetchone()) == (1, "running")
        await settle(pilot, app)
        assert "cancelling" in cell(app, 1, "status")
        await pilot.press("down")
        await settle(pilot, app)
        assert app.selected == 2
        await pilot.press("plus")
        assert conn.execute("SELECT priority FROM runs WHERE id = 2").fetchone()[0] == 1
        await pilot.press("c", "y")  # a queued run is cancelled at once
        assert conn.execute("SELECT status FROM runs WHERE id = 2").fetchone()[0] == "cancelled"
        await pilot.press("r")
        assert conn.execute("SELECT status FROM runs WHERE id = 2").fetchone()[0] == "queued"
        await pilot.press("up")
        await settle(pilot, app)
        await pilot.press("r")  # a running run cannot be requeued: an error line, no crash
        assert "cannot be requeued" in message(app)


async def test_delete_asks_first_and_removes_the_run_and_its_folder(home):
    folder = home / "runs" / "00003"
    folder.mkdir(parents=True)
    (folder / "grid-0001.png").write_bytes(b"x")
    app = app_for(home)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot, app)
        await pilot.press("down", "down")
        await settle(pilot, app)
        assert app.selected == 3
        await pilot.press("d", "escape")  # escape: no
        assert connect(home / "coldlab.db").execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 3
        await pilot.press("d", "y")
        await settle(pilot, app)
        assert [r[0] for r in connect(home / "coldlab.db").execute("SELECT id FROM runs ORDER BY id")] == [1, 2]
        assert not folder.exists() and 3 not in runs_table(app).row_ids()


async def test_the_filter_takes_ls_where_expressions_and_words(home):
    conn, _ = start_running(home)
    conn.execute("INSERT INTO tags (run_id, tag) VALUES (3, 'baseline')")
    conn.commit()
    app = app_for(home)

    async def apply(pilot, text):
        await pilot.press("slash")
        box = app.main.query_one("#filter")
        box.value = text
        await pilot.press("enter")
        await settle(pilot, app)
        return [str(i) for i in runs_table(app).row_ids()]

    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot, app)
        assert runs_table(app).row_count == 3
        shown: list[int] = []  # the table's row count at each change: no empty table while the matches are read
        real = runs_table(app)._render_rows
        runs_table(app)._render_rows = lambda: (shown.append(len(runs_table(app).rows_shown)), real())[1]
        assert await apply(pilot, "status = running") == ["1"]
        assert shown and 0 not in shown and shown[-1] == 1
        assert str(app.main.query_one("HeaderTitle", Static).content).endswith("1 of 3 runs")
        assert await apply(pilot, "tag = baseline") == ["3"]
        assert cell(app, 3, "tags") == "baseline"  # tags shown
        assert await apply(pilot, 'status != running and study = "000"') == ["2"]
        assert await apply(pilot, "blur") == ["3"]  # a word: in the study or the name
        assert await apply(pilot, "metric.fid <") == ["3"]  # a bad expression: the line, and the filter kept
        assert "--where 'metric.fid <': no value" in message(app)
        assert await apply(pilot, "") == ["1", "2", "3"]
        assert str(app.main.query_one("HeaderTitle", Static).content).endswith(" 3 runs")


async def test_columns_by_priority_fit_80_columns_and_sort_by_any_column(frozen_home):
    from coldlab.tui.widgets.runs_table import fit_columns

    assert [c.key for c, _ in fit_columns(78)] == ["id", "name", "status", "progress", "val", "fid", "eta"]
    assert [c.key for c, _ in fit_columns(200)] == ["id", "study", "name", "tags", "status", "device", "progress", "train", "val", "fid", "eta"]
    conn = connect(frozen_home / "coldlab.db")
    record_evaluation(conn, 2, origin="training", epoch=1, step=5, sampler={"name": "ddpm"}, settings={},
                      results=[("classifier-fid", 3.0, {})], key="run2:training:1", series=True)
    conn.close()
    app = app_for(frozen_home)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        table = runs_table(app)
        assert [c.key for c in table.columns_shown] == ["id", "name", "status", "progress", "val", "fid", "eta"]
        assert sum(width + 2 for _, width in table.layout_shown) <= 80
        assert not app.main.query_one("#detail").display  # narrow: the table alone
        keys = lambda: [str(i) for i in table.row_ids()]  # noqa: E731  (display order)
        table.sort_by("fid")
        await pilot.pause(0.1)
        assert keys() == ["2", "1", "3"]  # 3.0 < 12.5; no FID last
        table.sort_by("fid")  # again: reversed
        await pilot.pause(0.1)
        assert keys()[:2] == ["1", "2"]
        await pilot.press("s")  # the next column
        await pilot.pause(0.1)
        assert table.sort_key == "eta"
        await pilot.press("enter")  # the selected run's detail instead of the table
        await pilot.pause(0.1)
        assert app.main.query_one("#detail").display and not app.main.query_one("#left").display


async def test_the_runs_table_draws_each_row_once_and_scrolls_with_its_cursor(tmp_path):
    """The line-API table: a poll that changes nothing draws no row again, a mark draws only the marked row,
    a sort only reorders drawn rows; the cursor keys scroll so the cursor stays visible; a header click sorts
    and a click on a row moves the cursor (again: selects it); user strings are shown literally."""
    conn = connect(tmp_path / "coldlab.db")
    for i in range(60):
        name = "[bold]x[/bold]\nnew-line" if i == 0 else f"run-{i:02d}"
        enqueue(conn, "s", name, {**CONFIG, "name": name}, epochs=4)
    conn.close()
    app = app_for(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        table = runs_table(app)
        lines = lambda: [table.render_line(y).text for y in range(table.size.height)]  # noqa: E731
        assert lines()[0].split()[:3] == ["id", "▲", "name"] and "[bold]x[/bold] new-line" in lines()[1]
        drawn = table.strips_made
        await settle(pilot, app, polls=3)
        lines()
        assert table.strips_made == drawn  # nothing changed: every row came from the cache
        await pilot.press("space")  # mark run 1: its row is drawn again, and only it
        lines()
        assert table.strips_made == drawn + 1 and lines()[1].split()[:2] == ["●", "1"]
        await pilot.press("end")
        assert table.selected_id == 60 and app.selected == 60 and table.scroll_offset.y > 0
        assert lines()[-1].split()[0] == "60"  # the cursor's row is on screen
        await pilot.press("home")
        assert table.selected_id == 1 and table.scroll_offset.y == 0
        x = next(x for x in range(80) if (c := table.column_at(x)) is not None and c.key == "name")
        await pilot.click("#runs", offset=(x, 0))  # the header: sort by name
        await wait_for(pilot, lambda: table.sort_key == "name", "sorted by name")
        assert table.sort_key == "name" and table.row_ids()[:3] == [1, 2, 3] and "name ▲" in lines()[0]
        await pilot.click("#runs", offset=(x, 0))  # again: reversed
        await wait_for(pilot, lambda: table.sort_reverse, "reversed")
        assert table.sort_reverse and table.row_ids()[:2] == [60, 59] and "name ▼" in lines()[0]
        assert table.selected_id == 1 and lines()[-1].split()[:2] == ["●", "1"]  # the cursor stays on its run, in view
        await pilot.press("home")
        await pilot.click("#runs", offset=(x, 3))  # a row: the cursor moves there
        await wait_for(pilot, lambda: app.selected == 58, "the clicked run selected")
        assert table.selected_id == 58 and app.selected == 58 and not app.main.has_class("-detail")
        await pilot.click("#runs", offset=(x, 3))  # the cursor's row again: selected (narrow: its detail)
        await wait_for(pilot, lambda: app.main.has_class("-detail"), "the run's detail")


async def test_keys_act_only_on_the_screen_that_shows_them(frozen_home, monkeypatch):
    monkeypatch.setenv("COLDLAB_LOAD_PLUGINS", "")
    app = app_for(frozen_home)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot, app)
        await pilot.press("p")
        await wait_for(pilot, lambda: app.screen.query_one("#plugins", DataTable).row_count > 0, "the plugins (read in a subprocess)")
        await pilot.press("c", "y", "r", "w", "d", "y")  # the Plugins screen has none of these keys
        assert type(app.screen).__name__ == "PluginsScreen"
        assert connect(frozen_home / "coldlab.db").execute("SELECT cancel_requested FROM runs WHERE id = 1").fetchone()[0] == 0
        assert connect(frozen_home / "coldlab.db").execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 3


async def test_a_home_without_a_store_says_how_to_queue_a_study(tmp_path):
    app = app_for(tmp_path / "empty")
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot, app)
        text = str(app.main.query_one("#empty", Static).content)
        assert "No store at" in text and "coldlab run experiments.toml --home" in text and "Press a" in text
        assert not (tmp_path / "empty" / "coldlab.db").exists()  # reading never creates it


async def test_the_detail_steps_through_a_runs_grids_epoch_by_epoch(home):
    import matplotlib.pyplot as plt
    import numpy as np

    conn = connect(home / "coldlab.db")
    folder = home / "runs" / "00001"
    folder.mkdir(parents=True)
    for epoch in (1, 2, 3):
        path = folder / f"grid-{epoch:04d}.png"
        plt.imsave(path, np.full((62, 62), epoch / 4), cmap="gray", vmin=0, vmax=1)
        conn.execute("INSERT INTO artifacts (run_id, kind, path, epoch, step, created) VALUES (1, 'grid', ?, ?, 0, ?)",
                     (f"runs/00001/grid-{epoch:04d}.png", epoch, float(epoch)))
    conn.commit()
    app = app_for(home)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot, app)
        image = app.main.query_one("#grid")
        assert image.path.name == "grid-0003.png" and "(newest)" in image.caption
        await pilot.press("left_square_bracket")
        assert image.path.name == "grid-0002.png" and "samples at epoch 2 (2 of 3)" in message(app)
        await pilot.press("left_square_bracket", "left_square_bracket")
        assert image.path.name == "grid-0001.png"
        await settle(pilot, app)  # a poll does not jump back to the newest
        assert image.path.name == "grid-0001.png"
        await pilot.press("right_square_bracket", "right_square_bracket")
        assert image.path.name == "grid-0003.png"


async def test_on_a_sixel_terminal_the_detail_shows_the_grid_as_pixels(home, monkeypatch):
    """Where the terminal speaks Sixel (xterm -ti vt340; textual-image's terminal query decides this before the
    app starts), the grid is textual-image's Sixel widget: it writes the image itself, a DCS sequence whose
    colour registers are the grid's pixels (three flat grey grids here: 25 %, 50 %, 75 %)."""
    import matplotlib.pyplot as plt
    import numpy as np
    from textual.geometry import Region
    from textual_image.widget.sixel import Image as SixelImage

    import coldlab.tui.widgets.sample_image as sample_image

    monkeypatch.setattr(sample_image, "_GRAPHICS", SixelImage)
    conn = connect(home / "coldlab.db")
    (home / "runs" / "00001").mkdir(parents=True)
    for epoch in (1, 2, 3):
        plt.imsave(home / "runs" / "00001" / f"grid-{epoch:04d}.png", np.full((62, 62), epoch / 4), cmap="gray", vmin=0, vmax=1)
        conn.execute("INSERT INTO artifacts (run_id, kind, path, epoch, step, created) VALUES (1, 'grid', ?, ?, 0, ?)",
                     (f"runs/00001/grid-{epoch:04d}.png", epoch, float(epoch)))
    conn.commit()
    app = app_for(home)

    def sixel() -> str:
        pixels = app.main.query_one("#grid").query_one(".image-pixels", SixelImage)
        impl = pixels.children[0] if pixels.children else None
        if impl is None or not impl.size.area:  # not laid out yet
            return ""
        return "".join(seg.text for line in impl.render_lines(Region(0, 0, *impl.size)) for seg in line)

    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot, app)
        await wait_for(pilot, lambda: "\x1bP" in sixel(), "the grid written as Sixel")
        assert ";2;75;75;75" in sixel() and ";2;25;25;25" not in sixel()  # the newest grid, epoch 3
        await pilot.press("left_square_bracket", "left_square_bracket")
        await wait_for(pilot, lambda: ";2;25;25;25" in sixel(), "epoch 1's grid")
        assert not app.main.query(".image-blocks")  # no half blocks on such a terminal


def test_a_kitty_too_old_for_unicode_placeholders_gets_half_blocks(monkeypatch):
    """textual-image's Kitty-protocol widget places images with Unicode placeholders: Kitty 0.26 (Debian 12's)
    shows a box in every cell instead (seen under Xvfb), so the dashboard asks the terminal's version first."""
    import textual_image.renderable
    from textual_image.renderable.sixel import Image as Sixel
    from textual_image.renderable.tgp import Image as TGP

    import coldlab.tui.widgets.sample_image as sample_image

    shown = sample_image.kitty_placeholders_shown
    assert not shown("kitty(0.26.5)") and shown("kitty(0.28.0)") and shown("kitty(0.35.2)")
    assert shown(None) and shown("WezTerm 20240203-110809-5046fc22") and shown("XTerm(379)")

    def chosen(renderable, version):  # what prepare() picks when textual-image chose ``renderable``
        monkeypatch.setattr(sample_image, "_GRAPHICS", None)
        monkeypatch.setattr(textual_image.renderable, "Image", renderable)
        monkeypatch.setattr(sample_image, "terminal_version", lambda: version)
        return sample_image.prepare()

    monkeypatch.setenv("COLDLAB_TUI_IMAGES", "auto")
    assert not chosen(TGP, "kitty(0.26.5)") and chosen(TGP, "kitty(0.31.0)") and chosen(TGP, None)
    assert chosen(Sixel, "XTerm(379)")
    monkeypatch.setenv("COLDLAB_TUI_IMAGES", "blocks")
    assert not chosen(Sixel, "XTerm(379)")


def test_half_blocks_show_the_first_samples_at_a_legible_size(tmp_path):
    from PIL import Image
    from coldlab.tui.render import LEGIBLE, legible_grid

    grid = Image.new("RGB", (2 + 8 * 30, 2 + 8 * 30))  # save_grid's layout: 8 x 8 samples of 28 px, padding 2
    grid.paste((255, 255, 255), (2, 2, 30, 30))  # the first sample white
    grid.save(tmp_path / "g.png")
    text, across = legible_grid(tmp_path / "g.png", 64, 60)
    assert across == 60 // LEGIBLE == 4  # four samples across, not all eight squeezed into 60 columns
    lines = text.plain.split("\n")
    assert len(lines[0]) <= 4 * LEGIBLE and len(lines[0]) >= 4 * LEGIBLE - 4
    assert len(lines) == round(len(lines[0]) * (2 + 4 * 30) / (2 + 4 * 30) / 2)  # 4 x 4 samples, square


# ---- snapshots (pytest-textual-snapshot: SVGs under tests/__snapshots__; --snapshot-update rewrites them) ----
@pytest.fixture
def frozen_home(home):
    conn, run_id = start_running(home)
    record_metrics(conn, run_id, [("train_loss_step", i + 1, 1, 1.0 / (i + 1), None) for i in range(10)])
    record_evaluation(conn, run_id, origin="training", epoch=1, step=10, sampler={"name": "ddpm"}, settings={},
                      results=[("classifier-fid", 12.5, {})], key=f"run{run_id}:training:1", series=True)
    conn.close()
    return home


@pytest.mark.parametrize("keys", [(), ("question_mark",), ("p",)], ids=["main", "help", "plugins"])
def test_screens_match_their_snapshots(frozen_home, keys, monkeypatch, snap_compare, tmp_path_factory):
    monkeypatch.setenv("COLDLAB_LOAD_PLUGINS", "")  # the plugins subprocess lists the built-in ones only
    monkeypatch.setenv("COLDLAB_TUI_IMAGES", "blocks")
    frozen_home = frozen_home.rename(tmp_path_factory.mktemp("snap") / "HOME")  # the title shows the folder's name
    app = app_for(frozen_home)

    async def ready(pilot):
        await settle(pilot, app)
        for key in keys:
            await pilot.press(key)
        if keys == ("p",):
            await wait_for(pilot, lambda: app.screen.query_one("#plugins", DataTable).row_count > 0, "the plugins")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


def test_the_compare_screen_matches_its_snapshot(frozen_home, monkeypatch, snap_compare, tmp_path_factory):
    """Compare at 160 x 45: metrics, config diff, the three plots side by side (drawn in a worker thread), the
    grids' row; everything on one screen."""
    from coldlab.tui.widgets.curves import OverlayPlot

    monkeypatch.setenv("COLDLAB_TUI_IMAGES", "blocks")
    frozen_home = frozen_home.rename(tmp_path_factory.mktemp("snap") / "HOME")
    app = app_for(frozen_home)

    async def ready(pilot):
        await settle(pilot, app)
        await pilot.press("space", "down", "space", "m")
        await wait_for(pilot, lambda: app.screen.query("#compare") and app.screen.query_one("#compare", DataTable).row_count > 0, "the tables")
        plots = list(app.screen.query(OverlayPlot).results(OverlayPlot))
        await wait_for(pilot, lambda: all("no values yet" in p.drawn or "#1" in p.drawn for p in plots), "the plots drawn")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=(160, 45), run_before=ready)


def test_the_core_and_the_dashboard_data_import_without_textual():
    code = ("import sys; sys.modules['textual'] = None\n"
            "import coldlab, coldlab.cli, coldlab.tui.data, coldlab.tui.render, coldlab.report\n"
            "assert not any(m.startswith('textual') for m in sys.modules if sys.modules[m] is not None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    code = "import sys, coldlab.tui.app; assert 'torch' not in sys.modules, 'the dashboard imported torch'"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


async def test_compare_overlays_the_marked_visible_runs_and_exports_them(frozen_home):
    from coldlab.tui.widgets.curves import OverlayPlot

    conn = connect(frozen_home / "coldlab.db")
    record_evaluation(conn, 2, origin="training", epoch=1, step=5, sampler={"name": "ddpm"}, settings={},
                      results=[("classifier-fid", 20.0, {}), ("fid", None, {"unavailable": "no Inception weights"})],
                      key="run2:training:1", series=True)
    conn.execute("UPDATE runs SET config = ? WHERE id = 2", ('{"dataset": {"name": "synthetic"}, "degradation": {"name": "blur"}, '
                 '"sampler": {"name": "cold-improved"}, "network": {"name": "cnn"}, "prior": {"name": "gaussian"}, '
                 '"train": {"epochs": 4}, "eval": {}, "name": "cold-zoom"}',))
    conn.commit()
    conn.close()
    app = app_for(frozen_home)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot, app)
        await pilot.press("space", "down", "space", "down", "space")  # fast: each mark is the row under the cursor
        assert app.marked == {1, 2, 3}
        await pilot.press("slash")
        app.main.query_one("#filter").value = 'study = "000"'
        await pilot.press("enter")
        await settle(pilot, app)
        await pilot.press("m")  # run 3 is marked but hidden by the filter: left out, and said so
        await wait_for(pilot, lambda: app.screen.query_one("#compare", DataTable).row_count > 0, "the compare tables")
        title = str(app.screen.query_one("#compare-title", Static).content)
        assert "#1" in title and "#2" in title and "#3" not in title and "1 marked run(s) hidden by the filter left out" in title
        table = app.screen.query_one("#compare", DataTable)
        rows = {str(table.get_row_at(i)[0]): [str(c) for c in table.get_row_at(i)[1:]] for i in range(table.row_count)}
        assert rows["classifier-fid"] == [format_number(12.5), format_number(20.0)]
        assert rows["fid"] == ["", "unavailable"]
        diff = app.screen.query_one("#compare-diff", DataTable)
        diffs = {str(diff.get_row_at(i)[0]): [str(c) for c in diff.get_row_at(i)[1:]] for i in range(diff.row_count)}
        assert diffs == {"degradation.name": ["zoom", "blur"]}  # the only key that differs
        fid = app.screen.query_one("#plot-fid", OverlayPlot)
        assert fid.labels() == ["#1 ddpm-linear", "#2 cold-zoom"]  # one legend entry per run, on shared axes
        await wait_for(pilot, lambda: "#2 cold-zoom" in fid.drawn, "the FID plot drawn (off the UI thread)")
        assert "#1 ddpm-linear" in fid.drawn and "FID" in fid.drawn
        assert fid.series["#1 ddpm-linear"] == ([1.0], [12.5]) and fid.series["#2 cold-zoom"] == ([1.0], [20.0])
        train = app.screen.query_one("#plot-train_loss", OverlayPlot)
        assert set(train.series) == {"#1 ddpm-linear", "#2 cold-zoom"}
        assert train.region.y == fid.region.y and train.region.right <= fid.region.x  # wide: side by side
        await pilot.resize_terminal(80, 40)
        await wait_for(pilot, lambda: train.region.y < fid.region.y, "the narrow layout")
        assert fid.region.width >= 70  # narrow: one above the other, each the screen's width
        await pilot.resize_terminal(*WIDE)
        await pilot.press("e")
        await wait_for(pilot, lambda: "exported to" in str(app.screen.query_one("#compare-message", Static).content), "the export")
        text = str(app.screen.query_one("#compare-message", Static).content)
        report = Path(text.split("exported to ", 1)[1].strip())
        assert report.exists() and "run 1" in report.read_text() and "run 2" in report.read_text()
        await pilot.press("escape")
        assert type(app.screen).__name__ == "MainScreen"


async def test_the_compare_config_diff_keeps_every_run_on_screen(frozen_home):
    """A long value (a list of metric settings) is cut to its share of the width, so every compared run's column
    stays on screen; values read as in ``coldlab diff`` (JSON, not Python reprs)."""
    import json

    conn = connect(frozen_home / "coldlab.db")
    long = {**CONFIG, "name": "cold-zoom", "eval": {"metrics": [{"name": f"metric-{i}", "download": False} for i in range(12)]}}
    conn.execute("UPDATE runs SET config = ? WHERE id = 2", (json.dumps(long),))
    conn.commit()
    conn.close()
    app = app_for(frozen_home)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot, app)
        await pilot.press("space", "down", "space", "m")
        await wait_for(pilot, lambda: app.screen.query("#compare-diff") and app.screen.query_one("#compare-diff", DataTable).row_count > 0, "the diff")
        diff = app.screen.query_one("#compare-diff", DataTable)
        rows = {str(diff.get_row_at(i)[0]): [str(c) for c in diff.get_row_at(i)[1:]] for i in range(diff.row_count)}
        first, second = rows["eval.metrics"]
        assert first == "(absent)" and second.startswith('[{"name": "metric-0", "download": false') and second.endswith("…")
        assert diff.virtual_size.width <= 100  # both runs' columns on screen


def test_gpus_are_named_as_the_workers_see_them_under_cuda_visible_devices():
    """nvidia-smi counts every GPU of the machine; a worker started here numbers only the visible ones, in
    CUDA_VISIBLE_DEVICES's order, so the panel names them the same way (indices or UUID prefixes; CUDA ignores
    everything from the first entry that names no GPU on)."""
    from coldlab.tui.data import parse_gpus, visible_gpus

    smi = ("0, GPU-aaaa1111, NVIDIA H200, 1024, 143771, 5\n1, GPU-bbbb2222, NVIDIA H200, 2048, 143771, 97\n"
           "2, GPU-cccc3333, NVIDIA H200, [N/A], 143771, [N/A]\n")
    gpus = parse_gpus(smi)
    assert [(g["index"], g["memory_used"], g["utilisation"]) for g in gpus] == [(0, 1024 * 2**20, "5%"), (1, 2048 * 2**20, "97%"), (2, 0.0, "n/a")]
    named = lambda env: [(g["device"], g["index"]) for g in visible_gpus(gpus, env)]  # noqa: E731
    assert named(None) == [("cuda:0", 0), ("cuda:1", 1), ("cuda:2", 2)]
    assert named("2,0") == [("cuda:0", 2), ("cuda:1", 0)]
    assert named("GPU-bbbb") == [("cuda:0", 1)]
    assert named("1,7,0") == [("cuda:0", 1)]  # 7 names no GPU: 0 is not visible either
    assert named("") == [] and named("-1") == []


async def test_devices_panel_says_which_run_uses_each_device(frozen_home):
    app = app_for(frozen_home)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot, app)
        app._apply_devices([{"device": "cpu", "name": "2 cores", "memory_used": 2 ** 30, "memory_total": 4 * 2 ** 30,
                             "utilisation": "load 0.50"}])
        text = str(app.main.query_one("#devices", Static).content)
        assert "cpu (2 cores): 1.0/4.0 GiB load 0.50" in text and "runs: #1" in text


async def test_a_worker_started_from_the_dashboard_trains_and_outlives_it(tmp_path):
    conn = connect(tmp_path / "coldlab.db")
    spec = {"study": "w", "name": "tiny", "dataset": {"name": "synthetic", "size": 8, "train": 32, "test": 8},
            "network": {"name": "cnn", "channels": [4, 4]}, "degradation": {"name": "zoom", "final_size": 4},
            "prior": "gaussian", "sampler": "cold-improved", "train": {"epochs": 1, "batch_size": 16}, "eval": {"every": 1, "grid": 4, "samples": 4}}
    enqueue(conn, "w", "tiny", spec, epochs=1)
    app = app_for(tmp_path)
    async with app.run_test(size=WIDE) as pilot:
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
    async with app.run_test(size=WIDE) as pilot:
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
    from coldlab.tui.data import load_rows
    from coldlab.tui.widgets.runs_table import cell

    conn = connect(tmp_path / "coldlab.db")
    ae, _ = enqueue(conn, "s", "vae", {})
    enqueue(conn, "s", "ldm", {}, depends_on=ae)
    rows = {r.name: r for r in load_rows(conn)}
    assert cell(rows["ldm"], "status")[0] == f"queued (after {ae})" and cell(rows["vae"], "status")[0] == "queued"


async def test_help_lists_every_key_literally(home):
    app = app_for(home)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot, app)
        await pilot.press("question_mark")
        await pilot.pause(0.2)
        text = str(app.screen.query_one(Static).render())
        assert "[  Earlier grid" in text and "]  Later grid" in text and "space  Mark for compare" in text  # "[" is a key, not markup
