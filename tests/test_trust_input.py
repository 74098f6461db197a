"""Records a lab can trust, from the user's side: bad input is one located line (exit 2), user
strings are shown literally everywhere, and what a run stored stays true when HOME moves."""

import json
import shutil
import sqlite3
import subprocess
import sys

import pytest

from coldlab.cli import main
from coldlab.home import Home
from coldlab.store import connect, enqueue, list_runs

BASE = """
[defaults]
dataset = { name = "synthetic", train = 64, test = 16, size = 16 }
network = { name = "cnn", channels = [8, 8], time_hidden = [16] }
degradation = { name = "gaussian", schedule = { name = "linear", T = 10 } }
sampler = "ddpm"
train = { epochs = 1, batch_size = 16, log_every = 2 }
eval = { every = 1, grid = 4 }
"""


def experiment(name="a", study="s", extra=""):
    return f'\n[[experiment]]\nstudy = "{study}"\nname = "{name}"\n{extra}\n'


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


BAD_SETTINGS = [
    ("train = { epochs = -1 }", "train: epochs", "must be at least 1, got -1"),
    ("train = { batch_size = 0 }", "train: batch_size", "must be at least 1, got 0"),
    ("train = { log_every = 0 }", "train: log_every", "must be at least 1"),
    ("eval = { grid = 0 }", "eval: grid", "must be at least 1"),
    ("train = { ema = 2.0 }", "train: ema", "must be in [0, 1), got 2.0"),
    ("train = { val_fraction = -0.5 }", "train: val_fraction", "must be in [0, 1)"),
    ("train = { max_train_images = -1 }", "train: max_train_images", "must be at least 0"),
    ("train = { epochs = 9223372036854775808 }", "train: epochs", "too large: integers must fit in 64 bits"),
    ("train = { lr = 0.0 }", "train: lr", "must be above 0"),
    ('degradation = { name = "gaussian", schedule = { name = "linear", T = 0 } }', "degradation: schedule: T", "at least 1"),
    ('sampler = { name = "ddim", steps = -5 }', "sampler: steps", "must be at least 1, got -5"),
    ("seeds = [-1]", "seeds", "whole numbers from 0"),
]


@pytest.mark.parametrize("setting, where, message", BAD_SETTINGS, ids=[w for _, w, _ in BAD_SETTINGS])
def test_out_of_range_settings_are_one_located_line(tmp_path, capsys, setting, where, message):
    path = tmp_path / "exp.toml"
    path.write_text(BASE + experiment(extra=setting))
    code, _, err = run_cli(capsys, "run", path, "--home", tmp_path / "h")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"coldlab: error: {path}: a: {where}: ") and message in err
    assert not (tmp_path / "h" / "coldlab.db").exists() or not list_runs(connect(tmp_path / "h" / "coldlab.db"))


def test_plugin_parameters_declare_ranges_too(registry):
    from coldlab import ColdlabError

    with pytest.raises(ColdlabError, match=r"schedule 'cosine' parameter 'max_beta' must be in \(0, 1\], got 2.0"):
        registry.build("schedule", {"name": "cosine", "max_beta": 2.0})
    rows = {r["name"]: r for r in registry.describe("sampler", "ddim")}
    assert rows["steps"]["range"] == "at least 1"


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe[[experiment]]\n", "not UTF-8 text"),
    (None, "is a folder, not a file"),
])
def test_unreadable_files_are_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "folder.toml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    code, _, err = run_cli(capsys, "run", path, "--home", tmp_path / "h")
    assert code == 2 and err.count("\n") == 1 and message in err and str(path) in err


def test_negative_workers_is_a_usage_error(tmp_path, capsys):
    path = tmp_path / "exp.toml"
    path.write_text(BASE + experiment())
    with pytest.raises(SystemExit) as ended:
        main(["run", str(path), "--workers", "-2"])
    err = capsys.readouterr().err
    assert ended.value.code == 2 and err.count("\n") == 1 and "--workers: must be at least 1, got -2" in err


def test_run_names_that_collide_across_seeds_are_an_error(tmp_path, capsys):
    path = tmp_path / "exp.toml"
    path.write_text(BASE + experiment("a", extra="seeds = [1, 2]") + experiment("a-seed1"))
    code, _, err = run_cli(capsys, "run", path, "--home", tmp_path / "h")
    assert code == 2 and "run name 'a-seed1' of experiment 'a' (seed 1) is also the name of experiment 'a-seed1'" in err
    assert f"{path}: a: seeds:" in err


def test_a_rejected_file_queues_nothing(tmp_path, capsys):
    from coldlab.config import load_experiments
    from coldlab.engine.queueing import queue_runs

    home = Home(tmp_path / "h")
    first = tmp_path / "first.toml"
    first.write_text(BASE + experiment("b"))
    conn = home.connect()
    list(queue_runs(conn, load_experiments(first)))
    changed = tmp_path / "changed.toml"
    changed.write_text(BASE + experiment("new") + experiment("b", extra="train = { epochs = 3 }"))
    code, _, err = run_cli(capsys, "run", changed, "--home", home.root)
    assert code == 2 and f"{changed}: b: experiment 'b' changed since it was queued as run 1" in err
    assert [r["name"] for r in list_runs(conn)] == ["b"]  # 'new' was not queued either


async def test_the_dashboard_refuses_a_changed_experiment_as_the_cli_does(tmp_path):
    from coldlab.config import load_experiments
    from coldlab.engine.queueing import queue_runs
    from coldlab.tui.app import ColdlabApp

    home = Home(tmp_path / "h")
    first = tmp_path / "first.toml"
    first.write_text(BASE + experiment("b"))
    list(queue_runs(home.connect(), load_experiments(first)))
    changed = tmp_path / "changed.toml"
    changed.write_text(BASE + experiment("new") + experiment("b", extra="train = { epochs = 3 }"))
    app = ColdlabApp(home.root, poll_s=0.1, show_devices=False, show_timing=False)
    async with app.run_test(size=(120, 40)) as pilot:
        app.add_file(str(changed))  # validated and queued by `coldlab run --queue-only` in a subprocess
        for _ in range(6000):  # synchronised on the message bar, bounded only so a broken app fails
            message = str(app.main.query_one("#message").render())
            if "validating" not in message:
                break
            await pilot.pause(0.1)
    assert "experiment 'b' changed since it was queued" in message
    assert [r["name"] for r in list_runs(home.connect())] == ["b"]


MARKUP = "[/red]oops[bold"


def test_names_with_rich_markup_are_shown_literally(tmp_path, capsys):
    home = Home(tmp_path / "h")
    conn = home.connect()
    enqueue(conn, MARKUP, MARKUP, {"name": MARKUP}, epochs=1)
    conn.execute("UPDATE runs SET error = ?", (MARKUP,))
    code, out, err = run_cli(capsys, "ls", "--home", home.root)
    assert code == 0 and "oops" in out and err == "", err
    code, out, err = run_cli(capsys, "show", "1", "--home", home.root)
    assert code == 0 and out.count(MARKUP) >= 2, out


def test_a_home_path_with_hash_and_question_mark_opens_its_own_store(tmp_path, capsys):
    home = Home(tmp_path / "we#ird?home")
    enqueue(home.connect(), "s", "only-run", {}, epochs=1)
    code, out, _ = run_cli(capsys, "ls", "--home", home.root, "--json")
    assert code == 0 and [r["name"] for r in json.loads(out)] == ["only-run"]
    assert not (tmp_path / "we").exists()


def test_ctrl_c_at_any_moment_of_a_command_is_one_line(tmp_path, capsys, monkeypatch):
    from coldlab.engine import launcher

    def interrupted(*args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(launcher, "run_file", interrupted)
    code, _, err = run_cli(capsys, "run", tmp_path / "exp.toml")
    assert code == 130 and err == "coldlab: interrupted\n"


def test_a_closed_pipe_ends_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "coldlab", "plugins", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # `| head` that has read all it wanted
    err = proc.stderr.read().decode()
    proc.wait(timeout=900)
    assert "Traceback" not in err and "BrokenPipe" not in err, err


@pytest.mark.parametrize("command", [["--help"], ["ls"], ["show", "1"]])
def test_quick_commands_do_not_import_torch(tmp_path, command):
    home = Home(tmp_path / "h")
    enqueue(home.connect(), "s", "r", {}, epochs=1)
    code = ("import sys\nfrom coldlab.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules, file=sys.stderr)")
    args = command + (["--home", str(home.root)] if command[0] != "--help" else [])
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600)
    assert out.stderr.strip().splitlines()[-1] == "False", out.stderr


def test_missing_data_offline_says_what_to_put_where_and_exits_1(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLDLAB_DATA", str(tmp_path / "no-data"))
    path = tmp_path / "exp.toml"
    path.write_text(BASE.replace('{ name = "synthetic", train = 64, test = 16, size = 16 }', '"mnist"') + experiment())
    code, _, err = run_cli(capsys, "run", path, "--home", tmp_path / "h", "--smoke")
    assert code == 1, err
    assert "skipped 1 run(s) (a-smoke): dataset 'mnist' not found under" in err
    assert f"put the files at {tmp_path / 'no-data'}/MNIST/raw/" in err and "COLDLAB_OFFLINE" in err
    assert "nothing ran" in err


# ---- records that stay true ------------------------------------------------------------------------------
def finished_home(tmp_path, study="s", name="a"):
    """A HOME (given relative to the working folder, as `coldlab run` is often called) with one finished run."""
    from coldlab.config import load_experiments
    from coldlab.engine.queueing import queue_runs
    from coldlab.engine.worker import run_worker

    path = tmp_path / "exp.toml"
    path.write_text(BASE + experiment(name, study))
    home = Home("h")
    list(queue_runs(home.connect(), load_experiments(path)))
    assert run_worker(home, "cpu") == {"finished": 1}
    return home


def figure_files(manifest):
    return sorted(f["path"] for s in manifest["studies"] for f in s["figures"])


def test_a_moved_home_keeps_every_figure(tmp_path, monkeypatch):
    from coldlab.report.export import export

    monkeypatch.chdir(tmp_path)
    home = finished_home(tmp_path)
    stored = [r[0] for r in home.connect().execute("SELECT path FROM artifacts")]
    assert stored and all(p.startswith("runs/00001/") for p in stored)
    before = export(home, tmp_path / "out1", model_figures=False, warn=lambda m: None)
    shutil.move("h", tmp_path / "elsewhere")
    monkeypatch.chdir(tmp_path / "out1")
    after = export(Home(tmp_path / "elsewhere"), tmp_path / "out2", model_figures=False, warn=lambda m: None)
    assert figure_files(after) == figure_files(before) and any("grids" in f for f in figure_files(after))


def test_the_migration_makes_stored_artifact_paths_relative(tmp_path):
    from coldlab.store.migrations import MIGRATIONS

    raw = sqlite3.connect(tmp_path / "coldlab.db")
    raw.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)")
    for name, fn in MIGRATIONS[:3]:
        fn(raw)
        raw.execute("INSERT INTO migrations VALUES (?, 0)", (name,))
    raw.execute("INSERT INTO runs (study, name, config, created, started, finished) VALUES ('s', 'a', '{}', 0, 10, 25)")
    raw.execute("INSERT INTO artifacts VALUES (1, 'grid', '/old/cwd/h/runs/00001/grid-0001.png', 1, 4, 0)")
    raw.execute("INSERT INTO artifacts VALUES (1, 'samples', 'h/runs/00001/samples-0001.pt', 1, 4, 0)")
    raw.commit()
    raw.close()
    conn = connect(tmp_path / "coldlab.db")
    assert sorted(r[0] for r in conn.execute("SELECT path FROM artifacts")) == ["runs/00001/grid-0001.png", "runs/00001/samples-0001.pt"]
    assert conn.execute("SELECT run_seconds FROM runs").fetchone()[0] == 15.0


def test_unsafe_study_and_run_names_export_with_safe_files_and_literal_titles(tmp_path, monkeypatch):
    from coldlab.report.export import export

    monkeypatch.chdir(tmp_path)
    home = finished_home(tmp_path, study="a/b $x$", name="cost_$5 & ^~{#%}")
    manifest = export(home, tmp_path / "out", model_figures=False, warn=lambda m: None)
    [study] = manifest["studies"]
    files = [study["tables"][f] for f in ("md", "csv", "latex", "json")] + figure_files(manifest)
    for name in files:
        assert (tmp_path / "out" / name).is_file() and "/" not in name.removeprefix("figures/") and "$" not in name
    tex = (tmp_path / "out" / study["tables"]["latex"]).read_text()
    assert r"cost\_\$5 \& \textasciicircum{}\textasciitilde{}\{\#\%\}" in tex
    assert any("a/b $x$" in f["title"] for f in study["figures"])
    report = (tmp_path / "out" / "report.html").read_text()
    assert "a/b $x$" in report and "cost_$5 &amp; ^~{#%}" in report


def test_figure_titles_are_literal_and_log_ticks_keep_their_math(tmp_path):
    import matplotlib.pyplot as plt

    from coldlab.report.figures import save

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [0.1, 0.05, 0.04], label="run $a$")
    ax.set(title="study $x$ costs $5", yscale="log")
    legend = ax.legend()
    save(fig, tmp_path / "f.png")
    assert not ax.title.get_parse_math() and not legend.get_texts()[0].get_parse_math()
    assert all(t.get_parse_math() for t in ax.yaxis.get_ticklabels(which="both"))  # 10^{-1} stays typeset
