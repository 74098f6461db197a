"""The keys of the main screen, and what the columns mean."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss_none", "Close")]

    def __init__(self, bindings: list[Binding]) -> None:
        super().__init__()
        self.bindings_list = bindings

    def compose(self) -> ComposeResult:
        lines = [
            "coldlab dashboard — runs in the store, live.",
            "",
            "Arrows select a run; its curves, sample grid, config and log are on the right.",
            "",
        ]
        lines += [f"  {b.key_display or b.key:>6}  {b.description}" for b in self.bindings_list]
        lines += [
            "",
            "Filter (/): ls --where expressions joined by 'and' (status = running and metric.fid < 300);",
            "a word without an operator matches study or name. Marks outside the filter are not compared.",
            "Narrow terminals drop columns by priority: id, name, status and FID always show.",
            "Workers are separate processes: closing the dashboard does not stop training.",
            "FID column: Inception FID, or classifier FID (marked ᶜ) when only that is computed.",
        ]
        with VerticalScroll(id="dialog"):
            yield Static(Text("\n".join(lines)))  # Text: "[" and "]" are keys here, not markup

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
