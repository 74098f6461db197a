"""``coldlab run FILE --dry-run``: the runs that would be queued, their steps and sampling work, and an
estimated time from a calibration, with nothing written."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from coldlab.engine import plan
from coldlab.home import Home
from test_engine import TOML, cli

# synthetic data: 96 training images, a quarter held out -> 72 images, batch 16 -> 5 steps an epoch, 2 epochs.
# Evaluations at epochs 1 and 2, each a 4-image grid: ddpm visits all 20 steps (4 x 20), zoom's T is
# 16 - 4 = 12 (4 x 12); and 24 validation images an epoch.
EXPECTED = {"ddpm": (10, 2, 2 * 4 * 20 + 2 * 24), "zoom": (10, 2, 2 * 4 * 12 + 2 * 24)}


def run_plan(tmp_path, monkeypatch, **kw):
    monkeypatch.setattr(plan, "calibrate", lambda spec, registry, device, home: plan.Calibration(2.0, 0.01, 16))
    path = tmp_path / "exp.toml"
    path.write_text(TOML)
    out = io.StringIO()
    code = plan.plan_file(str(path), Home(tmp_path / "home"), only=None, smoke_run=False, epochs=None, devices=["cpu"] * kw.pop("workers", 1),
                          resume=False, console=Console(file=out, width=200), as_json=True, **kw)
    return code, json.loads(out.getvalue())


def test_the_plan_counts_steps_and_network_evaluations_and_prices_them(tmp_path, monkeypatch):
    code, result = run_plan(tmp_path, monkeypatch)
    assert code == 0 and not (tmp_path / "home").exists()  # nothing created
    rows = {r["name"]: r for r in result["runs"]}
    for name, (steps, evaluations, network) in EXPECTED.items():
        r = rows[name]
        assert (r["state"], r["runs"], r["train_images"], r["steps"], r["evaluations"], r["network_evaluations"]) == (
            "new", True, 72, steps, evaluations, network)
        assert r["seconds"] == pytest.approx(steps * 2.0 + network * 0.01)
    assert result["total_seconds"] == pytest.approx(sum(r["seconds"] for r in rows.values()))
    _, two = run_plan(tmp_path, monkeypatch, workers=2)
    assert two["wall_seconds"] == pytest.approx(max(r["seconds"] for r in rows.values()))


def test_wall_time_puts_the_longest_runs_first():
    assert plan.wall_time([5, 4, 3, 3, 3], 2) == 10  # 5, 4, then each 3 onto the least loaded: 5+3 | 4+3+3
    assert plan.wall_time([5, 4, 3, 3, 3], 1) == 18


def test_a_dry_run_reads_the_store_but_never_writes_it(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(TOML)
    home = tmp_path / "home"
    env = {"COLDLAB_OFFLINE": "1"}
    done = cli("run", str(path), "--home", str(home), "--only", "ddpm", "--epochs", "1", env=env)
    assert done.returncode == 0, done.stderr
    before = (home / "coldlab.db").read_bytes()
    out = cli("run", str(path), "--home", str(home), "--epochs", "1", "--dry-run", "--json", env=env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    rows = {r["name"]: r for r in result["runs"]}
    assert rows["ddpm"]["state"] == "finished" and not rows["ddpm"]["runs"] and rows["ddpm"]["seconds"] is None
    assert rows["zoom"]["state"] == "new" and rows["zoom"]["seconds"] > 0  # calibrated on the CPU for real
    assert result["total_seconds"] == rows["zoom"]["seconds"]
    assert (home / "coldlab.db").read_bytes() == before
    changed = path.read_text().replace("T = 20", "T = 30")
    path.write_text(changed)
    bad = cli("run", str(path), "--home", str(home), "--epochs", "1", "--dry-run", env=env)
    assert bad.returncode == 2 and "changed since it was queued" in bad.stderr and len(bad.stderr.strip().splitlines()) <= 2
    table = cli("run", str(path), "--home", str(tmp_path / "other"), "--dry-run", "--no-calibrate", env=env)
    assert table.returncode == 0 and "tiny/zoom" in table.stdout and "2 runs would run" in table.stdout
    assert cli("run", str(path), "--json", env=env).returncode == 2  # --json goes with --dry-run


def test_the_calibration_key_ignores_what_costs_nothing(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(TOML)
    from coldlab.config import load_experiments

    ddpm = next(r for r in load_experiments(path) if r.name == "ddpm").to_dict()
    other = json.loads(json.dumps(ddpm))
    other["train"]["seed"], other["train"]["lr"] = 5, 0.1
    other["degradation"]["schedule"]["beta_max"] = 0.05
    assert plan.calibration_key(ddpm) == plan.calibration_key(other)
    other["degradation"]["schedule"]["T"] = 40
    assert plan.calibration_key(ddpm) != plan.calibration_key(other)
