"""Typed messages the dashboard's worker threads post to the UI thread (``post_message`` is thread-safe):
nothing is rendered off the UI thread, nothing is read from the store on it."""

from __future__ import annotations

from typing import Any

from textual.message import Message

from coldlab.tui.data import Snapshot


class SnapshotLoaded(Message):
    """A poll finished: the runs, the selected run's detail, the filter's matches (for the filter the app had
    as ``filter_version`` when the poll started)."""

    def __init__(self, snapshot: Snapshot, filter_version: int = 0) -> None:
        super().__init__()
        self.snapshot, self.filter_version = snapshot, filter_version


class StoreUnreadable(Message):
    """A poll failed (a store being migrated, a torn read): shown, and the next tick tries again."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class DevicesLoaded(Message):
    def __init__(self, devices: list[dict[str, Any]]) -> None:
        super().__init__()
        self.devices = devices


class Said(Message):
    """A line for the message bar (``error``: also a notification)."""

    def __init__(self, text: str, error: bool = False) -> None:
        super().__init__()
        self.text, self.error = text, error


class QueueChanged(Message):
    """A write went through (runs queued, cancelled, removed): poll now rather than at the next tick."""


class CompareLoaded(Message):
    """The compared runs' records (``coldlab.report.collect``), the config diff, and each plot's series with
    its drawing at ``sizes[plot]`` in plotext theme ``theme`` (None where the plot had no size yet)."""

    def __init__(
        self,
        runs: list[Any],
        diff: dict[str, list[Any]],
        plots: dict[str, tuple[dict[str, Any], Any]],
        sizes: dict[str, tuple[int, int]],
        theme: str,
    ) -> None:
        super().__init__()
        self.runs, self.diff, self.plots, self.sizes, self.theme = runs, diff, plots, sizes, theme


class PluginsLoaded(Message):
    """What ``coldlab plugins --json`` printed (read in a subprocess: the dashboard never imports torch)."""

    def __init__(self, plugins: list[dict[str, Any]] | None, error: str | None = None) -> None:
        super().__init__()
        self.plugins, self.error = plugins, error
