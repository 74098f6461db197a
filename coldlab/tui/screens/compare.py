"""Compare the marked runs that the filter shows: final metrics side by side, the config keys that differ,
train loss, validation loss and FID of every run overlaid on shared axes with a legend (x: epoch), and the
runs' sample grids side by side at the same epoch (``[`` / ``]``). ``e`` exports them as a report."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from coldlab.formatting import format_number
from coldlab.home import Home
from coldlab.tui.messages import CompareLoaded, Said
from coldlab.tui.widgets.curves import OverlayPlot, draw_plot
from coldlab.tui.widgets.sample_image import SampleImage

PLOTS = (("train_loss", "train loss (epoch mean)"), ("val_loss", "validation loss"), ("fid", "FID (classifier FID where no Inception FID)"))


def config_diff(runs: list[Any]) -> dict[str, list[Any]]:
    """Dotted config key -> each run's value, for the keys whose values are not all equal (as ``coldlab diff``;
    the run's own name and study left out: they always differ)."""
    from coldlab.diff import differing

    return {k: v for k, v in differing([r.config for r in runs]).items() if k not in ("name", "study")} if runs else {}


def curve(run: Any, name: str) -> tuple[list[float], list[float]]:
    """(epochs, values) of a run's series or metric; FID falls back to classifier FID."""
    if name in ("train_loss", "val_loss"):
        points = [p for p in run.series.get(name, []) if p["value"] is not None and p["epoch"] is not None]
        return [float(p["epoch"]) for p in points], [float(p["value"]) for p in points]
    history = run.metric_history("fid") or run.metric_history("classifier-fid")
    return [float(e) for e, _ in history], [float(v) for _, v in history]


class CompareScreen(Screen[None]):
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]  # narrow: the plots one above the other
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("e", "export", "Export selection"),
        Binding("left_square_bracket", "epoch(-1)", "Earlier grids", key_display="["),
        Binding("right_square_bracket", "epoch(1)", "Later grids", key_display="]"),
    ]

    def __init__(self, home: Home, run_ids: list[int], left_out: int = 0) -> None:
        super().__init__()
        self.store, self.run_ids, self.left_out = home, run_ids, left_out
        self.runs: list[Any] = []
        self.epochs: list[int] = []
        self.epoch_at = -1
        self._loading = False

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            hidden = f"  ({self.left_out} marked run(s) hidden by the filter left out)" if self.left_out else ""
            yield Static(Text(f"runs {', '.join(map(str, self.run_ids))}{hidden} — loading ..."), id="compare-title")
            yield DataTable(id="compare", zebra_stripes=True)
            yield Static(Text("config: what differs", style="bold"), classes="section")
            yield DataTable(id="compare-diff", zebra_stripes=True)
            with Horizontal(id="compare-plots"):  # side by side from 120 columns, so the grids come into view
                for key, title in PLOTS:
                    yield OverlayPlot(title, "epoch", id=f"plot-{key}", classes="compare-plot")
            yield Static("", id="compare-epoch", classes="section")
            yield Horizontal(id="compare-grids")
            yield Static("", id="compare-message")
        yield Footer()

    def on_screen_resume(self) -> None:
        # read the runs once the screen is drawn (Textual draws it while handling the resume, in the step that
        # handles this message): a reader thread started sooner would hold the GIL for half of the time the
        # first drawing takes, doubling that stall
        if not self.runs and not self._loading:
            self._loading = True
            asyncio.get_running_loop().call_soon(self._start_loading)

    def _start_loading(self) -> None:
        plots = {key: self.query_one(f"#plot-{key}", OverlayPlot) for key, _ in PLOTS}
        self.load({key: p.plot_size for key, p in plots.items()}, next(iter(plots.values())).plot_theme)

    @work(thread=True, exclusive=True)
    def load(self, sizes: dict[str, tuple[int, int]], theme: str) -> None:
        """Read the runs and draw their curves at the plots' sizes (all off the UI thread)."""
        from coldlab.report.collect import collect

        runs = collect(self.store, run_ids=self.run_ids).runs
        plots = {}
        for key, title in PLOTS:
            series = {f"#{r.id} {r.name}": curve(r, key) for r in runs}
            plots[key] = (series, draw_plot(title, "epoch", series, *sizes[key], theme) if all(sizes[key]) else None)
        self.post_message(CompareLoaded(runs, config_diff(runs), plots, sizes, theme))

    def on_compare_loaded(self, message: CompareLoaded) -> None:
        self.runs = message.runs
        hidden = f"  ({self.left_out} marked run(s) hidden by the filter left out)" if self.left_out else ""
        self.query_one("#compare-title", Static).update(Text(f"runs {', '.join(f'#{r.id} {r.name}' for r in self.runs)}{hidden}"))
        self._metrics_table()
        self._diff_table(message.diff)
        for key, (series, drawn) in message.plots.items():
            self.query_one(f"#plot-{key}", OverlayPlot).show(series, drawn, message.sizes[key], message.theme)
        self.epochs = sorted({int(a["epoch"]) for r in self.runs for a in r.artifacts if a["kind"] == "grid" and a["epoch"] is not None})
        grids = self.query_one("#compare-grids", Horizontal)
        for r in self.runs:
            grids.mount(SampleImage(samples=int((r.config.get("eval") or {}).get("grid") or 64), width=30, classes="compare-grid"))
        self.epoch_at = len(self.epochs) - 1
        self.call_after_refresh(self._show_grids)

    def _metrics_table(self) -> None:
        table = self.query_one("#compare", DataTable)
        names: list[str] = []
        for run in self.runs:
            for e in run.evaluations:
                names += [n for n in e["values"] if n not in names]
        table.add_columns("metric", *[Text(f"#{r.id} {r.name}") for r in self.runs])
        for series in ("train_loss", "val_loss"):
            table.add_row(f"{series} (last)", *[format_number(r.series[series][-1]["value"]) if r.series.get(series) else "" for r in self.runs])
        for name in names:
            cells: list[str | Text] = []
            for r in self.runs:
                latest = r.latest(name)
                if latest is None:
                    cells.append("")
                elif latest["value"] is None:
                    cells.append(Text("unavailable", style="italic red"))
                else:
                    cells.append(format_number(latest["value"]))
            table.add_row(Text(name), *cells)

    def _diff_table(self, diff: dict[str, list[Any]]) -> None:
        """The keys that differ, a column per run: values as ``coldlab diff`` shows them, each cut to its share of
        the width (one long value, a metrics list, pushed the other runs' columns off screen; ``coldlab diff``
        shows them whole)."""
        from coldlab.diff import show_value

        table = self.query_one("#compare-diff", DataTable)
        table.add_columns("key", *[Text(f"#{r.id}") for r in self.runs])
        if not diff:
            table.add_row(Text("(the configs are the same)", style="italic"), *["" for _ in self.runs])
        key_width = max((len(k) for k in diff), default=10)
        share = max(12, (self.size.width - key_width - 4) // max(1, len(self.runs)) - 2)
        for key, values in diff.items():
            cells = [show_value(v) for v in values]
            table.add_row(Text(key), *[Text(c if len(c) <= share else c[: share - 1] + "…") for c in cells])

    def _show_grids(self, at: int = 0) -> None:
        """Show the grids at the current epoch, one run per screen refresh: drawing them all in one go was the
        longest stall of opening the screen (each grid is a few hundred coloured segments to lay out)."""
        label = self.query_one("#compare-epoch", Static)
        if not self.epochs:
            label.update(Text("no sample grids yet", style="italic"))
            return
        epoch = self.epochs[self.epoch_at]
        if at == 0:
            label.update(Text(f"samples at epoch {epoch} ({self.epoch_at + 1} of {len(self.epochs)}; [ ] step)", style="bold"))
        images = list(self.query(SampleImage).results(SampleImage))
        if at < min(len(self.runs), len(images)):
            run = self.runs[at]
            path = run.artifact("grid", epoch)
            images[at].show(path, f"#{run.id} {run.name}" + ("" if path else f": no grid at epoch {epoch}"))
            self.call_after_refresh(self._show_grids, at + 1)

    def action_epoch(self, delta: int) -> None:
        if self.epochs:
            self.epoch_at = max(0, min(len(self.epochs) - 1, self.epoch_at + delta))
            self._show_grids()

    def action_export(self) -> None:
        self.export_selection()

    @work(thread=True, exclusive=True)
    def export_selection(self) -> None:
        """``coldlab export`` of the compared runs in a subprocess (off the UI thread, and the dashboard never
        imports torch or matplotlib)."""
        import subprocess
        import sys

        out = self.store.root / "exports" / time.strftime("%Y%m%d-%H%M%S")
        self.post_message(Said(f"exporting to {out} ..."))
        ids = [str(r.id) for r in self.runs] or [str(i) for i in self.run_ids]
        store = ["--store", self.store.store] if self.store.store else []
        command = [sys.executable, "-m", "coldlab", "export", "--home", str(self.store.root), *store, "--out", str(out), "--runs", *ids]
        try:
            done = subprocess.run(command, capture_output=True, text=True)
        except OSError as err:
            self.post_message(Said(f"export failed: {err}", error=True))
            return
        if done.returncode == 0:
            self.post_message(Said(f"exported to {out / 'report.html'}"))
        else:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            self.post_message(Said(f"export failed: {last}", error=True))

    def on_said(self, message: Said) -> None:
        self.query_one("#compare-message", Static).update(Text(message.text, style="bold red" if message.error else "bold"))
