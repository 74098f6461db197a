"""The HTML report in a real browser (marked ``slow`` and ``browser``: it needs Chromium, from Debian's
``chromium`` package, and the ``playwright`` package, which drives it without downloading a browser).
The page loads without console errors, sorts its comparison table by a metric, filters it, and moves a
run's epoch slider."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch

from coldlab.store import claim, connect, enqueue, finish, record_artifact, record_evaluation, record_metrics

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = os.environ.get("COLDLAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
FIDS = {"r1": 30.0, "r2": 10.0, "r3": 20.0}


@pytest.fixture
def report(tmp_path):
    """A store of three runs with grids at epochs 1-3 and an FID each, exported (no model figures)."""
    home = tmp_path / "home"
    conn = connect(home / "coldlab.db")
    for name, fid in FIDS.items():
        spec = {"name": name, "study": "b", "dataset": {"name": "synthetic"}, "degradation": {"name": "zoom"}, "sampler": {"name": "cold-improved"},
                "network": {"name": "cnn"}, "prior": {"name": "gaussian"}, "train": {"epochs": 3}, "eval": {}}
        run_id, _ = enqueue(conn, "b", name, spec, epochs=3)
        claim(conn, "w", "cpu")
        folder = home / "runs" / f"{run_id:05d}"
        folder.mkdir(parents=True)
        for epoch in (1, 2, 3):
            grid = folder / f"grid-{epoch:04d}.png"
            plt.imsave(grid, torch.full((8, 8), epoch / 4).numpy(), cmap="gray", vmin=0, vmax=1)
            record_artifact(conn, run_id, "grid", f"runs/{run_id:05d}/{grid.name}", epoch=epoch, step=epoch)
            record_metrics(conn, run_id, [("train_loss", epoch, epoch, 1.0 / epoch, None), ("val_loss", epoch, epoch, 1.1 / epoch, None)])
            record_evaluation(
                conn, run_id, origin="training", epoch=epoch, step=epoch, sampler={"name": "ddpm"}, settings={},
                results=[("fid", fid * (4 - epoch) / 3, {})], key=f"run{run_id}:training:{epoch}", series=True,
            )
        finish(conn, run_id, "w", "finished")
    out = tmp_path / "report"
    done = subprocess.run([sys.executable, "-m", "coldlab", "export", "--home", str(home), "--out", str(out), "--no-model-figures"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return out / "report.html"


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install chromium)")
def test_the_report_sorts_filters_and_steps_through_epochs_in_chromium(report):
    playwright = pytest.importorskip("playwright.sync_api")
    args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        page = browser.new_page()
        problems = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(Path(report).resolve().as_uri())

        def names():
            return page.eval_on_selector_all("#table-b tbody tr", "rows => rows.filter(r => r.style.display !== 'none').map(r => r.cells[0].textContent)")

        assert sorted(names()) == ["r1", "r2", "r3"]
        header = page.locator("#table-b th", has_text="fid (final)")
        header.click()
        assert names() == ["r2", "r3", "r1"]  # final FIDs 10/3, 20/3, 30/3: ascending
        assert header.get_attribute("aria-sort") == "ascending"
        header.click()
        assert names() == ["r1", "r3", "r2"]
        page.fill("input.filter[data-for='table-b']", "r3")
        assert names() == ["r3"]
        page.fill("input.filter[data-for='table-b']", "")
        assert len(names()) == 3

        slider = page.locator("#epochs-run1 input[type=range]")
        shown = "el => el.querySelector('img.shown').getAttribute('data-epoch')"
        assert page.eval_on_selector("#epochs-run1", shown) == "3"  # the newest first
        slider.fill("0")
        assert page.eval_on_selector("#epochs-run1", shown) == "1"
        assert page.text_content("#epochs-run1 output") == "epoch 1"
        assert page.eval_on_selector_all("#epochs-run1 img.shown", "els => els.length") == 1
        browser.close()
    assert problems == []
