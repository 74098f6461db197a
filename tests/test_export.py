"""``coldlab export``: tables equal the store, figures are PNGs with the expected series, the HTML
report is self-contained and references everything, bad selections give one-line errors."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import statistics
import types
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch

from test_engine import cli

STUDY = """
[defaults]
dataset = { name = "synthetic", train = 96, test = 16, size = 16 }
network = { name = "cnn", channels = [8, 8], time_hidden = [16] }
train = { epochs = 2, batch_size = 16, log_every = 2, val_fraction = 0.25 }
eval = { every = 1, grid = 4, samples = 16, batch_size = 16, metrics = ["fid", "test-loss", { name = "class-histogram", epochs = 1 }, { name = "ks-normality", every = 5 }] }

[[experiment]]
study = "cmp"
name = "ddpm"
seeds = [0, 1]
degradation = { name = "gaussian", schedule = { name = "linear", T = 20 } }
sampler = "ddpm"

[[experiment]]
study = "cmp"
name = "zoom"
degradation = { name = "zoom", final_size = 4 }
prior = "centre-pixels"
sampler = "cold-improved"
eval = { metrics = ["test-loss", { name = "class-histogram", epochs = 1 }] }

[[experiment]]
study = "other"
name = "blur"
degradation = { name = "blur", schedule = { name = "constant", C = 1.0, T = 10 } }
prior = "flat-gaussian"
sampler = "cold-improved"
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A small store (2 studies, one experiment at two seeds, one re-evaluation) exported once."""
    folder = tmp_path_factory.mktemp("export")
    home, out = folder / "home", folder / "out"
    (folder / "study.toml").write_text(STUDY)
    env = {"COLDLAB_INCEPTION_WEIGHTS": "", "TORCH_HOME": str(folder / "no-hub")}
    run = cli("run", str(folder / "study.toml"), "--home", str(home), env=env, timeout=3600)
    assert run.returncode == 0, run.stderr[-3000:]
    again = cli("eval", "1", "--home", str(home), "--sampler", "ddim", "--steps", "5", "--metrics", "test-loss", env=env, timeout=1800)
    assert again.returncode == 0, again.stderr[-2000:]
    done = cli("export", "--home", str(home), "--out", str(out), env=env, timeout=3600)
    assert done.returncode == 0, done.stderr[-3000:]
    conn = sqlite3.connect(home / "coldlab.db")
    conn.row_factory = sqlite3.Row
    manifest = json.loads((out / "manifest.json").read_text())
    return types.SimpleNamespace(home=home, out=out, conn=conn, manifest=manifest, stderr=done.stderr)


def store_values(conn, study, metric):
    """experiment -> final training values of a metric per run, straight from SQL."""
    rows = conn.execute(
        """SELECT r.name, v.value FROM runs r JOIN evaluations e ON e.run_id = r.id JOIN evaluation_values v ON v.evaluation_id = e.id
           WHERE r.study = ? AND v.name = ? AND e.origin = 'training'
           AND e.epoch = (SELECT MAX(e2.epoch) FROM evaluations e2 JOIN evaluation_values v2 ON v2.evaluation_id = e2.id
                          WHERE e2.run_id = r.id AND v2.name = ? AND e2.origin = 'training')""", (study, metric, metric)).fetchall()
    out = {}
    for name, value in rows:
        out.setdefault(re.sub(r"-seed\d+$", "", name), []).append(value)
    return out


def read_csv(path):
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_table_numbers_equal_the_store(exported):
    rows = {r["experiment"]: r for r in read_csv(exported.out / "table-cmp.csv")}
    expected = store_values(exported.conn, "cmp", "test-loss")
    assert set(expected) == {"ddpm", "zoom"} and len(expected["ddpm"]) == 2
    for experiment, values in expected.items():
        assert float(rows[experiment]["test-loss (final)"]) == pytest.approx(statistics.fmean(values), rel=1e-12)
    assert float(rows["ddpm"]["test-loss (final) std"]) == pytest.approx(statistics.stdev(expected["ddpm"]), rel=1e-9)
    data = json.loads((exported.out / "table-cmp.json").read_text())[0]
    ddpm = next(r for r in data["rows"] if r["experiment"] == "ddpm")
    assert sorted(ddpm["test-loss:final"]["values"]) == sorted(expected["ddpm"])
    epochs = {r["name"]: r["epoch"] for r in exported.conn.execute("SELECT name, epoch FROM runs")}
    assert rows["zoom"]["epochs"] == f"{epochs['zoom']}/2"


def test_seeds_are_pooled_as_mean_plus_minus_std_and_the_best_is_marked(exported):
    md = (exported.out / "table-cmp.md").read_text()
    ddpm_line = next(line for line in md.splitlines() if line.startswith("| ddpm |"))
    assert "±" in ddpm_line
    expected = store_values(exported.conn, "cmp", "test-loss")
    best = min(expected, key=lambda k: statistics.fmean(expected[k]))
    rows = {r["experiment"]: r for r in read_csv(exported.out / "table-cmp.csv")}
    assert rows[best]["test-loss (final) best"] == "1" and sum(r["test-loss (final) best"] == "1" for r in rows.values()) == 1
    best_line = next(line for line in md.splitlines() if line.startswith(f"| {best} |"))
    assert best_line.count("**") >= 2
    tex = (exported.out / "table-cmp.tex").read_text()
    assert tex.startswith("\\begin{tabular}") and "\\textbf{" in tex and "$\\pm$" in tex


def test_unavailable_metrics_show_as_such_with_the_reason(exported):
    md = (exported.out / "table-cmp.md").read_text()
    ddpm_line = next(line for line in md.splitlines() if line.startswith("| ddpm |"))
    assert "unavailable" in ddpm_line
    assert "fid unavailable: no Inception weights" in md
    assert "no Inception weights" in (exported.out / "report.html").read_text()


def test_a_re_evaluation_is_a_row_of_its_own(exported):
    rows = read_csv(exported.out / "table-cmp.csv")
    extra = [r for r in rows if "(evaluation" in r["experiment"]]
    assert len(extra) == 1 and extra[0]["sampler"].startswith("ddim") and extra[0]["steps"] == "5"
    value = exported.conn.execute("SELECT v.value FROM evaluations e JOIN evaluation_values v ON v.evaluation_id = e.id "
                                  "WHERE e.origin = 'eval' AND v.name = 'test-loss'").fetchone()[0]
    assert float(extra[0]["test-loss (final)"]) == pytest.approx(value, rel=1e-12)


def figures(exported, study):
    entry = next(s for s in exported.manifest["studies"] if s["study"] == study)
    return {Path(f["path"]).name: f for f in entry["figures"]}


def test_every_figure_is_a_png_with_the_expected_series(exported):
    runs = {r["id"]: r for r in exported.conn.execute("SELECT id, study, name FROM runs")}
    cmp_ids = sorted(i for i, r in runs.items() if r["study"] == "cmp")
    figs = figures(exported, "cmp")
    for name in figs:
        path = exported.out / "figures" / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert plt.imread(path).ndim == 3
    with_val = [i for i in cmp_ids if exported.conn.execute("SELECT 1 FROM metrics WHERE run_id = ? AND name = 'val_loss'", (i,)).fetchone()]
    assert len(figs["loss-cmp.png"]["series"]) == len(cmp_ids) + len(with_val)
    tl_runs = {str(r[0]) for r in exported.conn.execute(
        "SELECT DISTINCT e.run_id FROM evaluations e JOIN evaluation_values v ON v.evaluation_id = e.id JOIN runs r ON r.id = e.run_id "
        "WHERE r.study = 'cmp' AND v.name = 'test-loss' AND e.origin = 'training' AND v.value IS NOT NULL")}
    assert set(figs["metric-test-loss-cmp.png"]["series"]) == tl_runs
    assert "metric-fid-cmp.png" not in figs  # never computed: nothing to draw, and nothing made up
    assert set(figs["grids-cmp.png"]["series"]) == {str(i) for i in cmp_ids}
    assert set(figs["grids-epochs-cmp.png"]["series"]) == {str(i) for i in cmp_ids}  # epochs 1 and 2, side by side
    assert set(figs["classes-cmp.png"]["series"]) == {str(i) for i in cmp_ids}
    ks_runs = {str(i) for i in cmp_ids if runs[i]["name"].startswith("ddpm")}
    assert set(figs["ks-cmp.png"]["series"]) == ks_runs
    assert len(figs["schedules-cmp.png"]["series"]) == 1  # one distinct schedule (the zoom has none)
    for i in cmp_ids:
        for kind in ("loss", "degradation", "reconstructions", "trajectory", "prior", "best-worst"):
            assert f"{kind}-run{i}.png" in figs, (kind, i)
    assert figs["best-worst-run1.png"]["series"] == ["best", "worst"]
    recon = figs[f"reconstructions-run{cmp_ids[0]}.png"]["series"]
    assert recon == ["t=5", "t=10", "t=15", "t=20"]


def test_the_html_report_is_self_contained_and_references_everything(exported):
    page = (exported.out / "report.html").read_text()
    for study in exported.manifest["studies"]:
        assert f"id='study-{study['study']}'" in page
        for f in study["figures"]:
            assert f'data-file="{Path(f["path"]).name}"' in page
        assert f"data-table='{study['tables']['md']}'" in page
    sliders = re.findall(r"<div class='epochs' id='epochs-run(\d+)'>(.*?)</div>", page)
    slider_images = sum(body.count("<img ") for _, body in sliders)
    assert page.count('src="data:image/png;base64,') == sum(len(s["figures"]) for s in exported.manifest["studies"]) + slider_images
    assert not re.search(r"""(src|href)=["']https?:""", page)
    for name in ("ddpm", "zoom", "blur"):
        assert f">{name}" in page
    # the comparison table: metrics first, sortable (numbers carried in data-value), with a filter box
    head = re.search(r'<table class="comparison sortable" id="table-cmp"><thead><tr>(.*?)</tr>', page).group(1)
    labels = re.findall(r">([^<]+)</th>", head)
    assert labels[:2] == ["experiment", "runs"] and labels[2].endswith("(final)")  # a metric before losses and settings
    assert labels.index("final train loss") < labels.index("degradation")
    assert "data-for='table-cmp'" in page and 'data-value="' in page and "<script>" in page
    # a section per run: its own figures and its grids with an epoch slider
    for run_id in (1, 2):
        section = re.search(rf"<section class='run' id='run-{run_id}'>(.*?)</section>", page, re.S).group(1)
        assert f'data-file="loss-run{run_id}.png"' in section
        assert re.findall(r'data-epoch="(\d+)"', section) == ["1", "2"] and "type='range'" in section


def test_a_selection_exports_only_what_was_asked(exported, tmp_path):
    out = tmp_path / "one"
    done = cli("export", "--home", str(exported.home), "--out", str(out), "--study", "other", "--format", "md,json",
               "--no-model-figures", timeout=1800)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["study"] for s in manifest["studies"]] == ["other"]
    assert sorted(p.name for p in out.iterdir()) == ["figures", "manifest.json", "table-other.json", "table-other.md"]
    assert not any("reconstructions" in f["path"] for f in manifest["studies"][0]["figures"])


@pytest.mark.parametrize("args, message", [
    (["--runs", "999"], "--runs: no run with id 999"),
    (["--study", "nope"], "--study: no runs of study 'nope'"),
    (["--format", "pdf"], "--format: unknown format 'pdf'"),
])
def test_bad_selections_are_one_line_errors(exported, tmp_path, args, message):
    done = cli("export", "--home", str(exported.home), "--out", str(tmp_path / "x"), *args, timeout=900)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_an_empty_store_is_a_clear_error(tmp_path):
    from coldlab.store import connect

    connect(tmp_path / "coldlab.db").close()
    done = cli("export", "--home", str(tmp_path), "--out", str(tmp_path / "x"), timeout=900)
    assert done.returncode == 2 and "nothing to export" in done.stderr and "Traceback" not in done.stderr
    missing = cli("export", "--home", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x"), timeout=900)
    assert missing.returncode == 2 and "no store at" in missing.stderr


def test_a_column_where_every_row_ties_marks_no_best():
    from coldlab.report.tables import Cell, Column, Table

    table = Table("s", [Column("m", "m", higher_is_better=True)], [{"m": Cell([0.0])}, {"m": Cell([0.0])}], [])
    assert table.best("m") == set()
    table.rows.append({"m": Cell([1.0])})
    assert table.best("m") == {2}


def test_epoch_axes_have_whole_ticks_and_a_single_epoch_shows_both_losses(tmp_path, monkeypatch):
    """A one- or two-epoch run: ticks at whole epochs only, and its train and validation points drawn as
    visible markers (hollow validation markers, so both show where they coincide), in front of the step curve."""
    from coldlab.report import figures as figs
    from coldlab.report.collect import RunRecord

    drawn = {}

    def keep(fig, path):
        drawn[path.name] = fig
        return path

    monkeypatch.setattr(figs, "save", keep)
    series = {
        "train_loss_step": [{"step": s, "epoch": 1, "value": 1.0 / s, "detail": None} for s in range(1, 9)],
        "train_loss": [{"step": 1, "epoch": 1, "value": 0.3, "detail": None}],
        "val_loss": [{"step": 1, "epoch": 1, "value": 0.3, "detail": None}],
    }
    evals = [{"id": e, "origin": "training", "epoch": e, "values": {"fid": {"value": 10.0 / e, "detail": {}}}} for e in (1, 2)]
    run = RunRecord(1, "s", "one", "finished", None, {}, 1, 1, 1.0, series, evals, [])
    figs.losses("s", [run], tmp_path)
    figs.metric_histories("s", [run], ["fid"], tmp_path)
    for name in ("loss-s.png", "metric-fid-s.png"):
        ticks = [t for t in drawn[name].axes[0].get_xticks() if drawn[name].axes[0].get_xlim()[0] <= t <= drawn[name].axes[0].get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), (name, ticks)
    study_lines = {line.get_label().rsplit(" ", 1)[-1]: line for line in drawn["loss-s.png"].axes[0].get_lines()}
    train, val = study_lines["train"], study_lines["val"]
    assert train.get_marker() == "o" and val.get_marker() == "o" and train.get_markersize() >= 7
    assert val.get_markerfacecolor() == "none" and train.get_markerfacecolor() != "none"
    per_run = {line.get_label(): line for line in drawn["loss-run1.png"].axes[0].get_lines()}
    assert per_run["train_loss"].get_marker() == "o" and per_run["val_loss"].get_markerfacecolor() == "none"
    assert per_run["train_loss"].get_zorder() > per_run["train_loss_step"].get_zorder()


def test_reconstructions_show_every_original_beside_its_degraded_and_restored_image(tmp_path, monkeypatch):
    from coldlab.engine import figure_data
    from coldlab.report import figures_model, mosaic
    from coldlab.report.collect import RunRecord

    drawn = {}
    monkeypatch.setattr(figures_model, "save", lambda fig, path: drawn.setdefault("fig", fig) and path)
    originals = torch.stack([torch.full((1, 4, 4), v) for v in (0.1, 0.4, 0.7, 0.9)])

    class Ctx:
        codec = None

        def reconstructions(self, t, n):
            return originals[:n], 1 - originals[:n], torch.zeros(n)

        encode = decode = to_unit = staticmethod(lambda x: x)

        def generator(self, k):
            return torch.Generator().manual_seed(k)

    class Degradation:
        T = 20

        def degrade(self, x, t, noise):
            return x * 0.5

        def sample_noise(self, x, g):
            return None

    parts = types.SimpleNamespace(degradation=Degradation())
    data = {**figure_data.reconstructions(parts, Ctx(), images=4), "epoch": torch.tensor(1), "latent": torch.tensor(False)}
    assert data["reconstructions"].dtype == torch.uint8 and data["reconstruction_t"].tolist() == [5, 10, 15, 20]
    tiles, cols, rows = figures_model.reconstruction_tiles(data)
    assert cols == ["x", "z_t", "back"] * 4 and rows == ["t=5", "t=10", "t=15", "t=20"]
    for row in tiles:
        for i, v in enumerate((0.1, 0.4, 0.7, 0.9)):  # image i's own original, not the first's
            assert [float(tile.float().mean()) / 255 for tile in row[3 * i : 3 * i + 3]] == pytest.approx([v, v * 0.5, 1 - v], abs=0.003)
    run = RunRecord(3, "s", "r", "finished", None, {"sampler": {"name": "ddpm"}}, 1, 1, 1.0, {}, [], [])
    fig = figures_model.reconstructions(run, data, tmp_path)
    [ax] = drawn["fig"].axes  # one picture, not an axes per image
    canvas, _, _ = mosaic.compose(tiles, block=3)
    assert ax.get_images()[0].get_array().shape == canvas.shape
    left = 3 * (4 + mosaic.GAP) - mosaic.GAP + mosaic.BLOCK_GAP  # the second triple's original, first row
    assert float(canvas[:4, left : left + 4].mean()) == pytest.approx(0.4, abs=0.003)
    assert [t.get_text() for t in ax.get_xticklabels()] == cols and "each as a triple" in fig.caption


def test_grids_across_epochs_put_runs_in_rows_and_epochs_in_columns(tmp_path, monkeypatch):
    from coldlab.report import figures as figs
    from coldlab.report import mosaic
    from coldlab.report.collect import RunRecord

    drawn = {}
    monkeypatch.setattr(figs, "save", lambda fig, path: drawn.setdefault(path.name, fig) and path)

    def run(run_id, epochs):
        arts = []
        for e in epochs:
            path = tmp_path / f"run{run_id}-grid-{e}.png"
            plt.imsave(path, torch.full((4, 4), e / 10).numpy(), cmap="gray", vmin=0, vmax=1)
            arts.append({"kind": "grid", "path": str(path), "epoch": e, "created": float(e)})
        return RunRecord(run_id, "s", f"r{run_id}", "finished", None, {}, 8, 8, 1.0, {}, [], arts)

    runs = [run(1, range(1, 9)), run(2, [e for e in range(1, 9) if e != 8])]
    assert figs.grid_epochs(runs) == [1, 2, 4, 5, 7, 8]  # six of eight, first and last kept
    [fig] = figs.grids_by_epoch("s", runs, tmp_path)
    [ax] = drawn["grids-epochs-s.png"].axes
    assert fig.series == ["1", "2"]
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"epoch {e}" for e in (1, 2, 4, 5, 7, 8)]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["r1\n#1", "r2\n#2"]
    canvas = ax.get_images()[0].get_array()
    step = 4 + mosaic.GAP
    assert [float(canvas[:4, c * step : c * step + 4, 0].mean()) for c in range(5)] == pytest.approx([e / 10 for e in (1, 2, 4, 5, 7)], abs=0.01)
    assert float(canvas[step:, 5 * step :, :].min()) == 1.0 and ax.texts[0].get_text() == "no grid"  # run 2 has no epoch-8 grid
    assert figs.grids_by_epoch("s", [run(3, [1])], tmp_path) == []  # one epoch: the final-grid figure shows it


def test_studies_come_in_the_order_of_their_first_run(tmp_path):
    from coldlab.report.collect import ExportData, RunRecord

    runs = [RunRecord(i, study, f"r{i}", "finished", None, {}, 1, 1, 1.0, {}, [], []) for i, study in ((1, "zeta"), (2, "alpha"), (3, "zeta"), (4, "mid"))]
    assert list(ExportData(tmp_path, runs).studies()) == ["zeta", "alpha", "mid"]  # by run id, not by name
    assert [r.id for r in ExportData(tmp_path, runs).studies()["zeta"]] == [1, 3]


FIGURE_TOML = """
[[experiment]]
study = "f"
name = "ddpm"
dataset = { name = "synthetic", train = 64, test = 16, size = 8 }
network = { name = "cnn", channels = [4, 4] }
degradation = { name = "gaussian", schedule = { name = "linear", T = 12 } }
sampler = "ddpm"
train = { epochs = 2, batch_size = 16, ema = 0.9 }
eval = { every = 2, grid = 4, samples = 4 }
"""


def test_model_figures_are_drawn_from_the_tensors_the_run_stored_and_equal_a_rebuild(tmp_path, monkeypatch):
    """The run stores its model-figure tensors after its last epoch; export draws those without rebuilding the
    run, and what a rebuild from the saved weights computes (a store made before the file existed) is the same."""
    from coldlab import open as open_store
    from coldlab.engine import run as engine_run
    from coldlab.files import load_tensors
    from coldlab.plugins import get_registry
    from coldlab.report import figures_model
    from coldlab.report.collect import collect

    (tmp_path / "f.toml").write_text(FIGURE_TOML)
    done = cli("run", str(tmp_path / "f.toml"), "--home", str(tmp_path / "h"), timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    [run] = collect(tmp_path / "h").runs
    stored = run.artifact("figures")
    assert stored is not None and stored.name == "figures-0002.pt"
    data = load_tensors(stored)
    assert data["trajectory"].shape == (len(data["trajectory_t"]), 4, 1, 8, 8) and int(data["epoch"]) == 2

    def no_rebuild(*args, **kw):
        raise AssertionError("export rebuilt the run")

    monkeypatch.setattr(engine_run.RunComponents, "from_spec", no_rebuild)
    warnings = []
    figs = figures_model.model_figures([run], tmp_path / "h", get_registry(), tmp_path / "out", warnings.append)
    assert warnings == [] and [f.path.name for f in figs] == ["degradation-run1.png", "reconstructions-run1.png", "trajectory-run1.png", "prior-run1.png"]
    monkeypatch.undo()
    rebuilt = figures_model.computed_data(run, tmp_path / "h", get_registry())
    assert set(rebuilt) == set(data)
    for key in data:
        assert torch.equal(rebuilt[key], data[key]), key
    assert open_store(tmp_path / "h").runs()[0].status == "finished"
