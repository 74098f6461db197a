"""The dashboard's other screens: add a TOML file, workers, plugins, compare runs, help."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Input, Label, Sparkline, Static

from coldlab.formatting import format_number
from coldlab.home import Home, as_home


class AddScreen(ModalScreen[str | None]):
    """Ask for the path of an experiments TOML file."""

    BINDINGS = [Binding("escape", "dismiss_none", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Queue the experiments of a TOML file (validated first):")
            yield Input(placeholder="experiments.toml", id="path")
            with Horizontal():
                yield Button("Add", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(self.query_one("#path", Input).value.strip() or None if event.button.id == "ok" else None)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class WorkersScreen(ModalScreen[tuple[str, str] | None]):
    """Start or stop a worker per device."""

    BINDINGS = [Binding("escape", "dismiss_none", "Close")]

    def __init__(self, devices: list[str]) -> None:
        super().__init__()
        self.devices = devices

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Workers are separate processes: they keep training when the dashboard closes.")
            for i, device in enumerate(self.devices):
                with Horizontal(classes="device-row"):
                    yield Label(device, classes="device-name")
                    yield Button("Start", id=f"start-{i}", variant="success")
                    yield Button("Stop", id=f"stop-{i}", variant="error")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        action, index = (event.button.id or "").split("-")
        self.dismiss((action, self.devices[int(index)]))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class PluginsScreen(Screen[None]):
    """What ``coldlab plugins`` shows."""

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]

    def compose(self) -> ComposeResult:
        yield DataTable(id="plugins", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        from coldlab.plugins import get_registry

        table = self.query_one(DataTable)
        table.add_columns("plugin", "package", "version", "components", "error")
        for p in get_registry().plugins:
            comps = "; ".join(f"{k}: {', '.join(v)}" for k, v in p.components.items())
            table.add_row(Text(p.name), Text(p.package), Text(p.version), Text(comps), Text(p.error or "", style="red"))


class CompareScreen(Screen[None]):
    """Marked runs side by side: final metrics in a table, curves stacked per metric; ``e`` exports them."""

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back"), Binding("e", "export", "Export selection")]

    def __init__(self, home: Path | Home, run_ids: list[int]) -> None:
        super().__init__()
        self.store = as_home(home)
        self.home, self.run_ids = self.store.root, run_ids

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(f"runs {', '.join(map(str, self.run_ids))}", id="compare-title")
            yield DataTable(id="compare", zebra_stripes=True)
            yield Vertical(id="curves")
            yield Static("", id="compare-message")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True)
    def load(self) -> None:
        from coldlab.report.collect import collect

        data = collect(self.store, run_ids=self.run_ids)
        self.app.call_from_thread(self.show, data.runs)

    def show(self, runs: list[Any]) -> None:
        table = self.query_one("#compare", DataTable)
        names: list[str] = []
        for run in runs:
            for e in run.evaluations:
                names += [n for n in e["values"] if n not in names]
        table.add_columns("metric", *[Text(f"#{r.id} {r.name}") for r in runs])
        for series in ("train_loss", "val_loss"):
            table.add_row(f"{series} (last)", *[format_number(r.series[series][-1]["value"]) if r.series.get(series) else "" for r in runs])
        for name in names:
            cells: list[str | Text] = []
            for r in runs:
                latest = r.latest(name)
                if latest is None:
                    cells.append("")
                elif latest["value"] is None:
                    cells.append(Text("unavailable", style="italic red"))
                else:
                    cells.append(format_number(latest["value"]))
            table.add_row(Text(name), *cells)
        curves = self.query_one("#curves", Vertical)
        for series in ("train_loss", "val_loss"):
            curves.mount(Static(Text(series, style="bold")))
            for r in runs:
                values = [p["value"] for p in r.series.get(series, [])]
                curves.mount(Static(f"  #{r.id} {format_number(values[-1]) if values else '–'}"))
                curves.mount(Sparkline(values, classes="compare-spark"))
        for name in ("fid", "classifier-fid"):
            if any(r.metric_history(name) for r in runs):
                curves.mount(Static(Text(name, style="bold")))
                for r in runs:
                    values = [v for _, v in r.metric_history(name)]
                    curves.mount(Static(f"  #{r.id} {format_number(values[-1]) if values else '–'}"))
                    curves.mount(Sparkline(values, classes="compare-spark"))

    def action_export(self) -> None:
        self.export_selection()

    @work(thread=True, exclusive=True)
    def export_selection(self) -> None:
        from coldlab.errors import ColdlabError
        from coldlab.report.export import export

        out = self.home / "exports" / time.strftime("%Y%m%d-%H%M%S")
        self.app.call_from_thread(self.query_one("#compare-message", Static).update, Text(f"exporting to {out} ..."))
        try:
            export(self.store, out, run_ids=self.run_ids, model_figures=False, warn=lambda m: None)
            message = f"exported to {out / 'report.html'}"
        except ColdlabError as err:
            message = f"export failed: {err}"
        self.app.call_from_thread(self.query_one("#compare-message", Static).update, Text(message))


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss_none", "Close")]

    def __init__(self, bindings: list[Binding]) -> None:
        super().__init__()
        self.bindings_list = bindings

    def compose(self) -> ComposeResult:
        lines = [
            "coldlab dashboard — runs in the store, live.",
            "",
            "Arrows select a run; its curves, latest sample grid, config and log are on the right.",
            "",
        ]
        lines += [f"  {b.key_display or b.key:>6}  {b.description}" for b in self.bindings_list]
        lines += [
            "",
            "Workers are separate processes: closing the dashboard does not stop training.",
            "FID column: Inception FID, or classifier FID (marked ᶜ) when only that is computed.",
        ]
        with Vertical(id="dialog"):
            yield Static("\n".join(lines))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
