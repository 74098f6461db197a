"""The selected run: title (status, error, sweep values, tags, note), sparklines of its losses and FID, its
sample grid at any epoch (``[`` / ``]`` step through them; the newest is followed until you step), config
and log tail."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.widgets import Sparkline, Static

from coldlab.formatting import format_number
from coldlab.tui.data import RunDetail, RunRow
from coldlab.tui.widgets.sample_image import SampleImage

SERIES_LABELS = {"train_loss": "train loss", "val_loss": "val loss", "fid": "FID", "classifier-fid": "classifier FID"}
CONFIG_KEYS = ("kind", "dataset", "autoencoder", "latent", "degradation", "prior", "network", "sampler", "train", "eval")


def update_if_changed(widget: Static, content: Text | str, *, layout: bool = True) -> None:
    """``widget.update(content)`` unless it shows that already: an update re-lays out and redraws the
    screen, which is most of what a poll costs the UI thread (``layout=False``: a widget of fixed size,
    whose update only repaints it)."""
    key = content.markup if isinstance(content, Text) else content
    if getattr(widget, "_coldlab_shown", None) != key:
        widget._coldlab_shown = key  # type: ignore[attr-defined]
        widget.update(content, layout=layout)


class RunDetailPanel(VerticalScroll):
    detail: reactive[RunDetail | None] = reactive(None, always_update=True, init=False, repaint=False)
    row: reactive[RunRow | None] = reactive(None, init=False, repaint=False)
    epoch_index: reactive[int | None] = reactive(None, init=False, repaint=False)  # None: the newest grid

    def compose(self) -> ComposeResult:
        yield Static("select a run", id="detail-title")
        for name, label in SERIES_LABELS.items():
            yield Static(label, classes="spark-label", id=f"label-{name}")
            yield Sparkline([], id=f"spark-{name}", summary_function=max)
        yield SampleImage(id="grid")
        yield Static("", id="config")
        yield Static("", id="log")

    def step_epoch(self, delta: int) -> str:
        """Show the grid ``delta`` epochs away; returns what is shown now, for the message bar."""
        grids = self.detail.grids if self.detail else []
        if not grids:
            return "no sample grids yet"
        at = len(grids) - 1 if self.epoch_index is None else self.epoch_index
        at = max(0, min(len(grids) - 1, at + delta))
        self.epoch_index = None if at == len(grids) - 1 else at
        return f"samples at epoch {grids[at][0]} ({at + 1} of {len(grids)})"

    def watch_epoch_index(self) -> None:
        self._render_grid()

    def watch_detail(self, old: RunDetail | None, new: RunDetail | None) -> None:
        if old is not None and new is not None and old.id != new.id:
            self.epoch_index = None
        self._show_detail()

    def _show_detail(self) -> None:
        detail, row = self.detail, self.row
        if detail is None:
            return
        title = Text(f"run {detail.id}: {row.name if row else ''} — {row.status if row else ''}")
        if detail.error:
            title.append(f"\n{detail.error}", style="red")
        if detail.params:
            title.append("\nsweep: " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in detail.params.items()))
        if detail.tags:
            title.append("\ntags: " + " ".join(detail.tags), style="cyan")
        if detail.note:
            title.append("\nnote: " + detail.note, style="italic")
        update_if_changed(self.query_one("#detail-title", Static), title)
        for name, values in detail.series.items():
            spark = self.query_one(f"#spark-{name}", Sparkline)
            if spark.data != values:
                spark.data = list(values)  # a new list: Sparkline watches assignment, not mutation
            if spark.display != bool(values):
                spark.display = bool(values)
            last = f" {format_number(values[-1])}" if values else " –"
            update_if_changed(self.query_one(f"#label-{name}", Static), f"{SERIES_LABELS[name]}:{last} ({len(values)} points)", layout=False)
        self._render_grid()
        cfg = {k: detail.config[k] for k in CONFIG_KEYS if detail.config.get(k)}
        update_if_changed(self.query_one("#config", Static), Text(json.dumps(cfg, indent=1), style="dim"))
        update_if_changed(self.query_one("#log", Static), Text("\n".join(detail.log_tail) or "(no log lines)", style="italic"))

    def _render_grid(self) -> None:
        detail = self.detail
        if detail is None:
            return
        image = self.query_one("#grid", SampleImage)
        image.block_width = max(14, self.size.width - 4)
        samples = int((detail.config.get("eval") or {}).get("grid") or 64)
        grids = detail.grids
        if not grids:
            image.show(detail.grid, "samples" if detail.grid else "", samples)
            return
        at = len(grids) - 1 if self.epoch_index is None or self.epoch_index >= len(grids) else self.epoch_index
        epoch, path = grids[at]
        follow = " (newest)" if at == len(grids) - 1 else ""
        image.show(path, f"samples, epoch {epoch}{follow} — [ ] step epochs", samples)

    def current(self) -> Any:
        return self.detail
