"""The main screen: the runs table (filter, sort, marks), the selected run's detail, the devices. Its keys act
on what it shows; the other screens have their own."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static

from coldlab.tui.data import RunRow, Snapshot
from coldlab.tui.widgets.run_detail import RunDetailPanel, update_if_changed
from coldlab.tui.widgets.runs_table import RunsTable

if TYPE_CHECKING:
    from coldlab.tui.app import ColdlabApp


def empty_home_message(app: Any) -> Text:
    where = f"--home {app.home}" + (f" --store {app.store.store_label}" if app.store.store else "")
    return Text(
        f"No store at {app.store.store_label}: nothing has been queued here yet.\n\n"
        f"Press a to queue the experiments of a TOML file, or run\n  coldlab run experiments.toml {where}\n"
        "in a shell; its runs appear here as they are queued.",
        style="bold",
    )


class MainScreen(Screen[None]):
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]  # narrow: the table alone; enter shows the run
    BINDINGS = [
        Binding("a", "add", "Add TOML"),
        Binding("c", "cancel", "Cancel run"),
        Binding("r", "resume", "Resume run"),
        Binding("d", "delete", "Delete", show=False),
        Binding("plus,equals_sign", "priority(1)", "Up", key_display="+", show=False),
        Binding("minus", "priority(-1)", "Down", key_display="-", show=False),
        Binding("w", "workers", "Workers"),
        Binding("space", "mark", "Mark for compare", show=False),
        Binding("m", "compare", "Compare"),
        Binding("s", "sort", "Sort"),
        Binding("left_square_bracket", "epoch(-1)", "Earlier grid", key_display="[", show=False),
        Binding("right_square_bracket", "epoch(1)", "Later grid", key_display="]", show=False),
        Binding("p", "plugins", "Plugins"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("escape", "focus_table", "Table", show=False),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "app.quit", "Quit"),
    ]

    @property
    def dash(self) -> ColdlabApp:
        return cast("ColdlabApp", self.app)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="filter: status = running and metric.classifier-fid < 300 (/ to edit, enter to apply)", id="filter")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield RunsTable(id="runs")
                yield Static("", id="empty")
                yield Static("", id="devices")
            yield RunDetailPanel(id="detail")
        yield Static("", id="message")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#empty").display = False
        self.query_one(RunsTable).focus()

    # ---- rendering (the app calls these with each snapshot) --------------------------------
    def apply(self, snapshot: Snapshot, rows: list[RunRow], marked: set[int]) -> None:
        table = self.query_one(RunsTable)
        empty = self.query_one("#empty", Static)
        if empty.display != snapshot.store_missing:
            empty.display = snapshot.store_missing
            table.display = not snapshot.store_missing
        if snapshot.store_missing:
            update_if_changed(empty, empty_home_message(self.dash))
        table.marked = frozenset(marked)
        table.rows_shown = rows
        detail = self.query_one(RunDetailPanel)
        if snapshot.detail is not None and snapshot.detail.id == self.dash.selected:
            detail.row = next((r for r in snapshot.rows if r.id == snapshot.detail.id), None)
            detail.detail = snapshot.detail

    def show_devices(self, text: Text) -> None:
        update_if_changed(self.query_one("#devices", Static), text)

    def say(self, text: str, error: bool = False) -> None:
        update_if_changed(self.query_one("#message", Static), Text(text, style="bold red" if error else "bold"), layout=False)

    # ---- events ---------------------------------------------------------------------------
    def on_runs_table_row_highlighted(self, event: RunsTable.RowHighlighted) -> None:
        self.dash.select(event.run_id)

    def on_runs_table_row_selected(self, event: RunsTable.RowSelected) -> None:
        self.toggle_class("-detail")  # on a narrow terminal: the run's detail instead of the table, and back

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter" and self.dash.set_filter(event.value):
            self.query_one(RunsTable).focus()

    # ---- actions (each on the run this screen shows selected) -------------------------------
    def action_focus_table(self) -> None:
        self.remove_class("-detail")
        self.query_one(RunsTable).focus()

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_sort(self) -> None:
        table = self.query_one(RunsTable)
        table.next_sort()
        self.say(f"sorted by {table.sort_key} (s: next column; click a header, or s again on it, to reverse)")

    def action_epoch(self, delta: int) -> None:
        self.say(self.query_one(RunDetailPanel).step_epoch(delta))

    def _cursor(self) -> None:
        """The run under the cursor is the one keys act on (its RowHighlighted message may still be queued
        behind a fast key press)."""
        run_id = self.query_one(RunsTable).selected_id
        if run_id is not None:
            self.dash.selected = run_id

    def action_mark(self) -> None:
        self._cursor()
        self.dash.toggle_mark()

    def action_compare(self) -> None:
        self._cursor()
        self.dash.compare()

    def action_cancel(self) -> None:
        self._cursor()
        self.dash.confirm_cancel()

    def action_delete(self) -> None:
        self._cursor()
        self.dash.confirm_delete()

    def action_resume(self) -> None:
        self._cursor()
        self.dash.resume()

    def action_priority(self, delta: int) -> None:
        self._cursor()
        self.dash.change_priority(delta)

    def action_add(self) -> None:
        self.dash.ask_add()

    def action_workers(self) -> None:
        self.dash.ask_workers()

    def action_plugins(self) -> None:
        from coldlab.tui.screens.plugins import PluginsScreen

        self.app.push_screen(PluginsScreen())

    def action_help(self) -> None:
        from coldlab.tui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen([b for b in self.BINDINGS if isinstance(b, Binding)]))
