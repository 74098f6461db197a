"""The everyday workflow: sweeps, search, tags and notes, archive and removal, diff, provenance, the Python
API and trackers — through the CLI (``coldlab.cli.main``, in process) and ``coldlab.open``."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess

import pytest

import coldlab
from coldlab import ColdlabError
from coldlab.cli import main
from coldlab.config import load_experiments
from coldlab.home import Home
from coldlab.search import matches, parse
from coldlab.store import connect, enqueue, record_metrics
from coldlab.store.queue import claim, finish

SWEEP = """
[defaults]
dataset = { name = "synthetic", train = 48, test = 8, size = 16 }
network = { name = "cnn", channels = [8], time_hidden = [8] }
train = { epochs = 1, batch_size = 16, log_every = 1 }
eval = { samples = 4, grid = 4, metrics = [{ name = "rmse", images = 4 }] }

[[experiment]]
study = "sw"
name = "ddpm"
degradation = { name = "gaussian", schedule = { name = "linear", T = 10 } }
sampler = "ddpm"
seeds = [0, 1]
sweep = { "degradation.schedule.beta_max" = [0.02, 0.1], "train.lr" = [1e-3, 2e-3] }
"""


def write(tmp_path, text, name="exp.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


# ---- sweeps -------------------------------------------------------------------------------
def test_sweep_expands_the_product_times_seeds_with_readable_names_and_values(tmp_path):
    runs = load_experiments(write(tmp_path, SWEEP))
    assert len(runs) == 2 * 2 * 2
    assert runs[0].name == "ddpm-beta_max=0.02-lr=0.001-seed0"
    assert {r.experiment for r in runs} == {"ddpm"}
    for r in runs:  # the value set is the value the run uses
        assert r.degradation["schedule"]["beta_max"] == r.params["degradation.schedule.beta_max"]
        assert r.train["lr"] == r.params["train.lr"]
    assert sorted({(r.params["degradation.schedule.beta_max"], r.params["train.lr"]) for r in runs}) == [
        (0.02, 0.001), (0.02, 0.002), (0.1, 0.001), (0.1, 0.002)
    ]
    assert "params" not in runs[0].to_dict()  # swept values are fields of the run, not of its spec


def test_zip_mode_pairs_values_and_a_whole_component_can_be_swept(tmp_path):
    text = SWEEP.replace('"train.lr" = [1e-3, 2e-3] }', '"sampler" = ["ddpm", { name = "ddim", steps = 3 }] }\nsweep_mode = "zip"')
    runs = load_experiments(write(tmp_path, text))
    pairs = sorted({(r.params["degradation.schedule.beta_max"], r.sampler["name"]) for r in runs})
    assert pairs == [(0.02, "ddpm"), (0.1, "ddim")]
    assert {r.name for r in runs} >= {"ddpm-beta_max=0.1-sampler=ddim(steps=3)-seed1"}
    # a sampler given by name becomes a table when a sweep sets one of its parameters
    runs = load_experiments(write(tmp_path, SWEEP.replace('"train.lr" = [1e-3, 2e-3]', '"sampler.steps" = [2, 4]')))
    assert sorted({r.sampler["steps"] for r in runs}) == [2, 4] and {r.sampler["name"] for r in runs} == {"ddpm"}


@pytest.mark.parametrize(
    ("sweep", "expected"),
    [
        ('sweep = { "degradation.schedule.beta_mx" = [0.1] }', "sweep: degradation.schedule.beta_mx: degradation.schedule.beta_mx = 0.1: unknown parameter 'beta_mx'"),
        ('sweep = { "train.lr" = [1e-3, -1.0] }', "sweep: train.lr: train.lr = -1.0: train settings parameter 'lr' must be above 0"),
        ('sweep = { "trian.lr" = [1e-3] }', "sweep: trian.lr: trian.lr = 0.001: unknown key 'trian' (did you mean 'train'?)"),
        ('sweep = { "train.lr" = [] }', "sweep: train.lr: must be a non-empty list"),
        ('sweep = { "train.lr" = [1e-3, 1e-3] }', "sweep: train.lr: repeats a value"),
        ('sweep = { "seeds" = [1] }', "sweep: seeds: 'seeds' cannot be swept"),
        ('sweep = { "train.seed" = [1] }', "sweep: train.seed: 'train.seed' cannot be swept (hint: use seeds = [...]"),
        ('sweep = { "train.lr" = [1e-3], "train.ema" = [0.9, 0.99] }\nsweep_mode = "zip"', "sweep: sweep_mode = 'zip' needs lists of one length"),
        ('sweep = { "train.lr" = [1e-3] }\nsweep_mode = "cross"', "sweep_mode: sweep_mode must be one of product, zip"),
        ('sweep = [1]', "sweep: 'sweep' must be a table"),
    ],
)
def test_a_bad_sweep_is_one_located_line(tmp_path, sweep, expected):
    path = write(tmp_path, SWEEP.split("sweep = ")[0] + sweep + "\n")
    with pytest.raises(ColdlabError) as err:
        load_experiments(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ddpm: ") and "\n" not in message
    assert expected in message, message


@pytest.fixture(scope="module")
def swept_home(tmp_path_factory):
    """The sweep above, run for real by `coldlab run` (8 runs of one epoch on 48 synthetic images), with the
    tensorboard tracker."""
    tmp = tmp_path_factory.mktemp("sweep")
    path = write(tmp, SWEEP.replace('seeds = [0, 1]', 'seeds = [0, 1]\ntrackers = ["tensorboard"]'))
    home = tmp / "home"
    assert main(["run", str(path), "--home", str(home)]) == 0
    return home, path


def test_swept_runs_store_experiment_and_values_and_the_report_groups_and_plots_them(swept_home, tmp_path, capsys):
    home, _ = swept_home
    store = coldlab.open(home)
    runs = store.runs()
    assert len(runs) == 8 and {r.experiment for r in runs} == {"ddpm"} and {r.seed for r in runs} == {0, 1}
    assert all(r.status == "finished" for r in runs)
    code, _, _ = run_cli(capsys, "export", "--home", home, "--out", tmp_path / "rep", "--no-model-figures", "--format", "json,html")
    assert code == 0
    table = json.loads((tmp_path / "rep" / "table-sw.json").read_text())[0]
    assert len(table["rows"]) == 4  # one row per combination, the two seeds pooled
    for row in table["rows"]:
        members = [r for r in runs if str(r.id) in row["runs"].split(", ")]
        assert len(members) == 2 and {json.dumps(m.params) for m in members} == {json.dumps(members[0].params)}
        assert row["param:train.lr"] == f"{members[0].params['train.lr']:g}"
        rmse = [m.metrics["rmse"] for m in members]
        assert row["rmse:final"]["n"] == 2 and row["rmse:final"]["mean"] == pytest.approx(sum(rmse) / 2)
    manifest = json.loads((tmp_path / "rep" / "manifest.json").read_text())
    titles = {f["title"] for f in manifest["studies"][0]["figures"]}
    assert {"rmse against train.lr, study sw", "rmse against degradation.schedule.beta_max, study sw"} <= titles
    sweep_fig = next(f for f in manifest["studies"][0]["figures"] if f["title"] == "rmse against train.lr, study sw")
    assert sorted(sweep_fig["series"]) == ["ddpm (beta_max=0.02)", "ddpm (beta_max=0.1)"]


def test_the_tensorboard_tracker_writes_the_runs_scalars_and_grids(swept_home):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    home, _ = swept_home
    run = coldlab.open(home).runs()[0]
    events = EventAccumulator(str(Home(home).run_dir(run.id) / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert {"train_loss", "val_loss", "rmse", "train_loss_step"} <= set(tags["scalars"])
    assert [e.value for e in events.Scalars("val_loss")] == pytest.approx([p["value"] for p in run.series("val_loss")])
    assert [e.value for e in events.Scalars("rmse")] == pytest.approx([run.metrics["rmse"]])
    assert "grid" in tags["images"]


def test_smoke_applies_to_sweeps(tmp_path, capsys):
    from coldlab.engine.budget import smoke

    runs = load_experiments(write(tmp_path, SWEEP))
    capped = [smoke(r.to_dict()) for r in runs]
    assert all(c["name"].endswith("-smoke") and c["eval"]["samples"] <= 16 for c in capped)
    assert {c["train"]["lr"] for c in capped} == {1e-3, 2e-3}  # the swept values survive


# ---- a store built by hand: search, tags, notes, archive, rm, diff -------------------------------
HAND = """
[defaults]
study = "st"
dataset = { name = "synthetic", train = 48, test = 8, size = 16 }
network = { name = "cnn", channels = [8] }
degradation = { name = "gaussian", schedule = { name = "linear", T = 10 } }
sampler = { name = "ddpm" }
train = { epochs = 1 }
""" + "".join(
    f'[[experiment]]\nname = "{n}"\ntrain = {{ lr = {lr} }}\n' + ('sampler = { name = "ddim", steps = 5 }\n' if n == "b" else "")
    for n, lr in (("a", 1e-4), ("b", 2e-4), ("c", 3e-4), ("d", 4e-4), ("e", 5e-4), ("f", 6e-4))
)


def _spec(tmp_path, name):
    path = tmp_path / "hand.toml"
    path.write_text(HAND)
    return next(r for r in load_experiments(path) if r.name == name).to_dict()


@pytest.fixture
def home(tmp_path):
    """Four runs: a (fid 30), b (fid 50), c (fid 10, failed), d (queued, no metrics)."""
    home = Home(tmp_path / "h")
    conn = connect(home.db)
    for name, lr, fid, status in (("a", 1e-4, 30.0, "finished"), ("b", 2e-4, 50.0, "finished"), ("c", 3e-4, 10.0, "failed"), ("d", 4e-4, None, None)):
        run_id, _ = enqueue(conn, "st", name, _spec(tmp_path, name), epochs=1, params={"train.lr": lr})
        if status:
            claim(conn, "w", "cpu")
            record_metrics(conn, run_id, [("fid", 1, 1, fid, None), ("val_loss", 1, 1, fid / 100, None)])
            finish(conn, run_id, "w", status, "boom" if status == "failed" else None)
        home.run_dir(run_id).mkdir(parents=True)
        (home.run_dir(run_id) / "run.log").write_text("x")
    conn.close()
    return home


def ids(capsys, home, *args):
    code, out, err = run_cli(capsys, "ls", "--home", home.root, "--json", *args)
    assert code == 0, err
    return [r["id"] for r in json.loads(out)]


def test_ls_where_sort_limit_and_columns(home, capsys):
    assert ids(capsys, home, "--where", "metric.fid < 40") == [1, 3]
    assert ids(capsys, home, "--where", "metric.fid<40", "--where", "status = finished") == [1]
    assert ids(capsys, home, "--where", "config.sampler.name = ddim") == [2]
    assert ids(capsys, home, "--where", "config.train.lr >= 2e-4") == [2, 3, 4]
    assert ids(capsys, home, "--where", "param.train.lr = 0.0001") == [1]
    assert ids(capsys, home, "--where", "config.network.channels = [8]") == [1, 2, 3, 4]
    assert ids(capsys, home, "--where", "name ~ [ab]") == [1, 2]
    assert ids(capsys, home, "--where", "status != queued", "--sort", "metric.fid") == [3, 1, 2]
    assert ids(capsys, home, "--sort", "metric.fid", "--desc") == [2, 1, 3, 4]  # a run without the metric last
    assert ids(capsys, home, "--sort=-metric.fid", "--limit", "2") == [2, 1]
    code, out, _ = run_cli(capsys, "ls", "--home", home.root, "--columns", "id,metric.fid", "config.train.lr")
    assert code == 0 and "metric.fid" in out and "config.train.lr" in out and "3.000e-04" in out and "│ study" not in out


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("metric.fid >> 3", "--where 'metric.fid >> 3': bad operator '>>'"),
        ("metric.fid", "--where 'metric.fid': no operator"),
        ("foo.bar = 1", "unknown field 'foo.bar'"),
        ("metric = 3", "'metric' needs a key"),
        ("metric.fid < abc", "'<' needs a number, got 'abc'"),
        ("status = finishd", "unknown status 'finishd' (did you mean 'finished'?)"),
        ("tag < 3", "tags take = != or ~"),
        ("name =", "no value after '='"),
    ],
)
def test_a_bad_where_is_one_line_naming_the_token(home, capsys, expr, message):
    code, out, err = run_cli(capsys, "ls", "--home", home.root, "--where", expr)
    assert code == 2 and out == ""
    assert err.startswith("coldlab: error: ") and err.count("\n") == 1 and message in err, err


def test_expressions_are_parsed_never_evaluated():
    record = {"id": 1, "tags": [], "config": {"a": "__import__('os')"}, "metrics": {}, "params": {}, "provenance": {}}
    cond = parse("config.a = __import__('os')")
    assert cond.value == "__import__('os')" and matches(cond, record)
    assert parse("note ~ '*x y*'").value == "*x y*"
    assert parse("config.x = '1e-4'").value == "1e-4" and parse("config.x = 1e-4").value == 1e-4


def test_tags_and_notes_through_the_cli_shown_by_ls_and_show_and_searched(home, capsys):
    assert run_cli(capsys, "tag", "1", "2", "+baseline", "+[red]x", "--home", home.root)[0] == 0
    code, out, _ = run_cli(capsys, "tag", "2", "-baseline", "+best", "--home", home.root)
    assert code == 0 and out.strip() == "run 2: [red]x best"
    assert ids(capsys, home, "--where", "tag = baseline") == [1]
    assert ids(capsys, home, "--where", "tag != baseline") == [2, 3, 4]
    assert ids(capsys, home, "--where", "tag ~ b*") == [1, 2]
    assert run_cli(capsys, "note", "1", "lr too low? [bold]check[/bold]", "--home", home.root)[0] == 0
    code, out, _ = run_cli(capsys, "show", "1", "--home", home.root)
    assert "note: lr too low? [bold]check[/bold]" in out and "tags: [red]x baseline" in out  # Rich markup shown as typed
    assert json.loads(run_cli(capsys, "show", "1", "--home", home.root, "--json")[1])["tags"] == ["[red]x", "baseline"]
    assert ids(capsys, home, "--where", "note ~ *too low*") == [1]
    assert run_cli(capsys, "note", "1", "", "--home", home.root)[0] == 0
    assert json.loads(run_cli(capsys, "show", "1", "--home", home.root, "--json")[1])["note"] is None
    for bad, message in ((["7", "+x"], "no run with id 7"), (["1", "x"], "'x' is neither a run id nor +TAG"), (["1", "+a b"], "bad tag 'a b'"),
                         (["1"], "no tags given"), (["1", "+a", "-a"], "tag 'a' is both added and removed")):
        code, _, err = run_cli(capsys, "tag", *bad, "--home", home.root)
        assert code == 2 and message in err and err.count("\n") == 1, err


def test_archive_hides_runs_from_ls_and_export_reversibly(home, tmp_path, capsys):
    assert run_cli(capsys, "archive", "1", "2", "--home", home.root)[0] == 0
    assert ids(capsys, home) == [3, 4]
    assert ids(capsys, home, "--all") == [1, 2, 3, 4]
    assert [r.id for r in coldlab.open(home.root).runs()] == [3, 4] and len(coldlab.open(home.root).runs(archived=True)) == 4
    code, _, err = run_cli(capsys, "export", "--home", home.root, "--out", tmp_path / "r", "--no-model-figures", "--format", "json")
    assert code == 0, err
    assert json.loads((tmp_path / "r" / "manifest.json").read_text())["studies"][0]["runs"] == [3, 4]
    assert run_cli(capsys, "export", "--home", home.root, "--out", tmp_path / "r2", "--no-model-figures", "--format", "json", "--all")[0] == 0
    assert json.loads((tmp_path / "r2" / "manifest.json").read_text())["studies"][0]["runs"] == [1, 2, 3, 4]
    assert run_cli(capsys, "archive", "--undo", "1", "--home", home.root)[0] == 0
    assert ids(capsys, home) == [1, 3, 4]


def test_export_where_selects_runs(home, tmp_path, capsys):
    code, _, err = run_cli(capsys, "export", "--home", home.root, "--out", tmp_path / "r", "--no-model-figures", "--format", "json", "--where", "metric.fid >= 30")
    assert code == 0, err
    assert json.loads((tmp_path / "r" / "manifest.json").read_text())["studies"][0]["runs"] == [1, 2]
    code, _, err = run_cli(capsys, "export", "--home", home.root, "--out", tmp_path / "r", "--where", "metric.fid > 1000")
    assert code == 2 and "no run matches 'metric.fid > 1000'" in err


def test_rm_deletes_rows_and_folders_refuses_running_runs_and_never_reuses_ids(home, capsys):
    conn = connect(home.db)
    enqueue(conn, "st", "e", _spec(home.root.parent, "e"), epochs=1)
    claim(conn, "w", "cpu")  # d (id 4) is claimed first: it is running
    conn.close()
    code, _, err = run_cli(capsys, "rm", "2", "4", "--home", home.root)
    assert code == 2 and "run 4 (d) is running" in err
    assert home.run_dir(2).exists() and 2 in ids(capsys, home)  # refused: nothing removed
    code, _, err = run_cli(capsys, "rm", "2", "5", "--home", home.root)
    assert code == 0 and "removed run 2 (st/b)" in err
    assert not home.run_dir(2).exists() and not home.run_dir(5).exists()
    assert ids(capsys, home, "--all") == [1, 3, 4]
    conn = connect(home.db)
    assert conn.execute("SELECT COUNT(*) FROM metrics WHERE run_id = 2").fetchone()[0] == 0
    new_id, _ = enqueue(conn, "st", "f", _spec(home.root.parent, "f"), epochs=1)
    conn.close()
    assert new_id == 6  # 5, the highest id, was removed: it is not given out again
    code, _, err = run_cli(capsys, "rm", "99", "--home", home.root)
    assert code == 2 and "no run with id 99" in err


def test_rm_refuses_a_run_another_run_depends_on(tmp_path, capsys):
    home = Home(tmp_path / "h")
    conn = connect(home.db)
    ae, _ = enqueue(conn, "s", "vae", {"kind": "autoencoder"})
    ldm, _ = enqueue(conn, "s", "ldm", {}, depends_on=ae)
    conn.close()
    code, _, err = run_cli(capsys, "rm", str(ae), "--home", home.root)
    assert code == 2 and f"run {ldm} (ldm) uses run {ae}" in err and f"coldlab rm {ae} {ldm}" in err
    assert run_cli(capsys, "rm", str(ae), str(ldm), "--home", home.root)[0] == 0


def test_diff_shows_changed_keys_metrics_and_provenance(home, capsys):
    conn = connect(home.db)
    conn.execute("UPDATE runs SET provenance = ? WHERE id = 1", (json.dumps({"ran": {"host": "a", "torch": "2.1"}}),))
    conn.execute("UPDATE runs SET provenance = ? WHERE id = 2", (json.dumps({"ran": {"host": "b", "torch": "2.1"}}),))
    conn.close()
    code, out, _ = run_cli(capsys, "diff", "1", "2", "--home", home.root, "--json")
    assert code == 0
    diff = json.loads(out)
    assert set(diff["config"]) >= {"name", "sampler.name", "train.lr"} and diff["config"]["sampler.name"] == ["ddpm", "ddim"]
    assert diff["config"]["train.lr"] == [1e-4, 2e-4] and diff["config"]["name"] == ["a", "b"]
    assert all(k.startswith(("name", "sampler.", "train.lr")) for k in diff["config"])
    assert diff["params"] == {"train.lr": [1e-4, 2e-4]}
    assert diff["metrics"]["fid"] == [30.0, 50.0]
    assert diff["provenance"] == {"ran.host": ["a", "b"]}
    code, out, _ = run_cli(capsys, "diff", "1", "4", "--home", home.root, "--json")
    assert json.loads(out)["metrics"]["fid"] == [30.0, None]
    code, out, _ = run_cli(capsys, "diff", "1", "2", "--home", home.root)
    assert code == 0 and "sampler.name" in out and "ddim" in out and "ran.host" in out


# ---- provenance -------------------------------------------------------------------------------
def test_provenance_records_the_repository_file_command_versions_and_host(tmp_path, monkeypatch):
    from coldlab.engine.launcher import enqueue_file
    from rich.console import Console

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    path = write(repo, SWEEP.replace("seeds = [0, 1]\n", "").replace(', "train.lr" = [1e-3, 2e-3]', ""))
    subprocess.run([*git, "add", "exp.toml"], check=True)
    subprocess.run([*git, "commit", "-qm", "study"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    path.write_text(path.read_text() + "\n# edited\n")  # uncommitted: dirty
    monkeypatch.setattr("sys.argv", ["/venv/bin/coldlab", "run", str(path)])
    home = Home(tmp_path / "h")
    enqueue_file(str(path), home, only=None, smoke_run=False, epochs=None, resume=False, console=Console(quiet=True))
    queued = coldlab.open(home.root).runs()[0].provenance["queued"]
    assert queued["git"] == {"commit": commit, "branch": "main", "dirty": True, "root": str(repo.resolve())}
    assert queued["study_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert queued["command"] == f"coldlab run {path}"
    assert queued["packages"]["coldlab"] == coldlab.__version__ and queued["host"] == socket.gethostname()
    outside = write(tmp_path, SWEEP.replace("study = \"sw\"", "study = \"out\""), "other.toml")
    enqueue_file(str(outside), home, only=None, smoke_run=False, epochs=None, resume=False, console=Console(quiet=True))
    assert coldlab.open(home.root).runs("study = out")[0].provenance["queued"]["git"] is None


def test_a_worker_records_where_the_run_ran(swept_home, capsys):
    import torch

    home, _ = swept_home
    ran = coldlab.open(home).runs()[0].provenance["ran"]
    assert ran["host"] == socket.gethostname() and ran["device"] == "cpu" and ran["torch"] == torch.__version__
    code, out, _ = run_cli(capsys, "show", "1", "--home", home)
    assert f"ran on {socket.gethostname()}, cpu" in out and "queued from" in out


# ---- the Python API ----------------------------------------------------------------------------
def test_open_gives_runs_series_evaluations_artifacts_and_samples(swept_home):
    import torch

    home, _ = swept_home
    store = coldlab.open(home)
    chosen = store.runs("param.train.lr = 0.002", "seed = 1", sort="-metric.rmse")
    assert len(chosen) == 2 and all(r.params["train.lr"] == 0.002 and r.seed == 1 for r in chosen)
    assert chosen[0].metrics["rmse"] >= chosen[1].metrics["rmse"]
    run = chosen[0]
    assert [p["step"] for p in run.series("train_loss_step")] == sorted(p["step"] for p in run.series("train_loss_step"))
    assert run.evaluations()[0]["values"]["rmse"]["value"] == pytest.approx(run.metrics["rmse"])
    grids = run.artifacts("grid")
    assert grids and all(p.exists() for p in grids)
    with pytest.raises(ColdlabError, match="has no samples"):
        run.samples()  # rmse does not generate samples
    samples = torch.randint(0, 255, (3, 1, 4, 4), dtype=torch.uint8)
    from coldlab.store import record_artifact

    torch.save(samples, Home(home).run_dir(run.id) / "samples-0001.pt")
    conn = connect(Home(home).db)
    record_artifact(conn, run.id, "samples", f"runs/{run.id:05d}/samples-0001.pt", epoch=1)
    conn.close()
    assert torch.equal(run.samples(), samples)
    with pytest.raises(ColdlabError, match="no run with id 999"):
        store.run(999)
    with pytest.raises(ColdlabError, match="no store at"):
        coldlab.open(home / "nowhere")


def test_a_table_of_the_report_in_five_lines_of_pandas(swept_home, tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    home, _ = swept_home
    # the README's example
    store = coldlab.open(home)
    frame = store.frame("study = sw", "status = finished")
    table = frame.groupby(["experiment", "param.train.lr", "param.degradation.schedule.beta_max"])["metric.rmse"].agg(["mean", "std"])
    assert isinstance(table, pd.DataFrame) and len(table) == 4
    run_cli(capsys, "export", "--home", home, "--out", tmp_path / "r", "--no-model-figures", "--format", "json")
    for row in json.loads((tmp_path / "r" / "table-sw.json").read_text())[0]["rows"]:
        lr = float(row["param:train.lr"])
        beta = float(row["param:degradation.schedule.beta_max"])
        assert table.loc[("ddpm", lr, beta), "mean"] == pytest.approx(row["rmse:final"]["mean"])
        assert table.loc[("ddpm", lr, beta), "std"] == pytest.approx(row["rmse:final"]["std"])
    series = store.runs()[0].series_frame("val_loss")
    assert list(series.columns) == ["metric", "step", "epoch", "value"] and len(series) == 1


# ---- trackers ----------------------------------------------------------------------------------
BROKEN_TRACKER = '''
import coldlab

CALLS = []

class Boom(coldlab.Tracker):
    def start(self, run):
        CALLS.append(("start", run.name, dict(run.params)))
    def log_metrics(self, values, step):
        raise RuntimeError("tracker server down")

class Fine(coldlab.Tracker):
    def start(self, run):
        self.path = run.folder / "fine.jsonl"
    def log_metrics(self, values, step):
        with open(self.path, "a") as fh:
            fh.write(repr((step, sorted(values))) + "\\n")
    def end(self, status):
        with open(self.path, "a") as fh:
            fh.write("end " + status + "\\n")

@coldlab.hookimpl
def register_trackers(register):
    register("boom", Boom)
    register("fine", Fine)
'''


def test_a_failing_tracker_is_logged_and_never_fails_the_run(tmp_path, plugin_env, capsys):
    plugin_env("coldlab-boom", "coldlab_boom", BROKEN_TRACKER)
    text = SWEEP.replace("seeds = [0, 1]\n", "").replace(', "train.lr" = [1e-3, 2e-3]', "").replace('[0.02, 0.1]', "[0.02]")
    path = write(tmp_path, text.replace('sampler = "ddpm"', 'sampler = "ddpm"\ntrackers = ["boom", "fine"]'))
    home = tmp_path / "h"
    assert main(["run", str(path), "--home", str(home)]) == 0
    run = coldlab.open(home).runs()[0]
    assert run.status == "finished"
    log = (Home(home).run_log(run.id)).read_text()
    assert "tracker boom failed in log_metrics (RuntimeError: tracker server down); it is off for the rest of this attempt" in log
    assert log.count("tracker boom failed") == 1
    lines = (Home(home).run_dir(run.id) / "fine.jsonl").read_text().splitlines()
    assert lines[-1] == "end finished" and any("'val_loss'" in line for line in lines)


def test_an_unknown_or_unavailable_tracker_is_a_located_error(tmp_path, monkeypatch):
    path = write(tmp_path, SWEEP.replace('seeds = [0, 1]', 'trackers = ["tensorbord"]'))
    with pytest.raises(ColdlabError, match=r"ddpm: trackers: unknown tracker 'tensorbord' \(did you mean 'tensorboard'\?\)"):
        load_experiments(path)
    from coldlab.default_plugins.trackers import TensorBoardTracker

    monkeypatch.setattr(TensorBoardTracker, "unavailable", classmethod(lambda cls: "the tensorboard tracker needs the tensorboard package"))
    path = write(tmp_path, SWEEP.replace('seeds = [0, 1]', 'trackers = ["tensorboard"]'))
    with pytest.raises(ColdlabError, match="ddpm: trackers: tensorboard: the tensorboard tracker needs the tensorboard package"):
        load_experiments(path)


def test_the_readme_five_line_table_runs_as_written(tmp_path, capsys, monkeypatch):
    """The README's pandas example, as written, on a store of the README's study (values recorded by hand)."""
    pytest.importorskip("pandas")
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = re.search(r"in five lines:\n\n```python\n(.*?)```", readme, re.S).group(1)
    assert len(code.strip().splitlines()) == 5
    monkeypatch.chdir(tmp_path)
    spec = load_experiments(Path(__file__).resolve().parents[1] / "experiments.toml", only=["cosine-max-beta"])
    conn = connect(Home("coldlab-runs").db)
    values = {0.02: [10.0, 14.0], 0.1: [20.0, 22.0], 0.999: [40.0, 40.5]}
    for run in spec:
        for seed, fid in enumerate(values[run.params["degradation.schedule.max_beta"]]):
            run_id, _ = enqueue(conn, run.study, f"{run.name}-seed{seed}", run.to_dict(), experiment=run.experiment, seed=seed, params=run.params)
            claim(conn, "w", "cpu")
            record_metrics(conn, run_id, [("classifier-fid", 5, 1, fid, None)])
            finish(conn, run_id, "w", "finished")
    conn.close()
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "12" in printed and "2.828427" in printed and "40.25" in printed and "0.353553" in printed, printed


def test_trackers_are_not_part_of_the_experiment_and_a_requeue_takes_the_new_list(tmp_path):
    from rich.console import Console

    from coldlab.engine.launcher import enqueue_file

    single = SWEEP.replace("seeds = [0, 1]\n", "").replace(', "train.lr" = [1e-3, 2e-3]', "").replace("[0.02, 0.1]", "[0.02]")
    home = Home(tmp_path / "h")
    quiet = Console(quiet=True)
    enqueue_file(str(write(tmp_path, single)), home, only=None, smoke_run=False, epochs=None, resume=False, console=quiet)
    conn = connect(home.db)
    assert conn.execute("SELECT trackers FROM runs").fetchone()[0] is None
    with_tb = single.replace('sampler = "ddpm"', 'sampler = "ddpm"\ntrackers = ["tensorboard"]')
    enqueue_file(str(write(tmp_path, with_tb)), home, only=None, smoke_run=False, epochs=None, resume=False, console=quiet)  # not "changed"
    assert [t["name"] for t in json.loads(conn.execute("SELECT trackers FROM runs").fetchone()[0])] == ["tensorboard"]
    assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
    conn.close()
