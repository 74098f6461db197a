"""What ``coldlab plugins`` shows, read by a subprocess off the UI thread (loading the plugins imports torch:
seconds, and half a gigabyte the dashboard does not otherwise need)."""

from __future__ import annotations

import json
import subprocess
import sys

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from coldlab.tui.messages import PluginsLoaded


def plugins_json() -> PluginsLoaded:
    """Run ``coldlab plugins --json`` (this Python, this environment) and read its plugins."""
    try:
        out = subprocess.run([sys.executable, "-m", "coldlab", "plugins", "--json"], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as err:
        return PluginsLoaded(None, f"could not run coldlab plugins: {err}")
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return PluginsLoaded(None, f"coldlab plugins failed: {last}")
    return PluginsLoaded(json.loads(out.stdout)["plugins"])


class PluginsScreen(Screen[None]):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]

    def compose(self) -> ComposeResult:
        yield Static("loading plugins ...", id="plugins-status")
        yield DataTable(id="plugins", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True)
    def load(self) -> None:
        self.post_message(plugins_json())

    def on_plugins_loaded(self, message: PluginsLoaded) -> None:
        status = self.query_one("#plugins-status", Static)
        if message.error is not None or message.plugins is None:
            status.update(Text(message.error or "no plugins", style="bold red"))
            return
        table = self.query_one(DataTable)
        table.add_columns("plugin", "package", "version", "components", "error")
        for p in message.plugins:
            comps = "; ".join(f"{k}: {', '.join(v)}" for k, v in p["components"].items())
            table.add_row(Text(p["name"]), Text(p["package"]), Text(str(p["version"])), Text(comps), Text(p["error"] or "", style="red"))
        status.update(Text(f"{len(message.plugins)} plugins", style="dim"))
        table.focus()
