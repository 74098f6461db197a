"""Start or stop a worker per device."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label


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
