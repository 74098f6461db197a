"""Curves of several runs on shared, labelled axes with a legend (textual-plotext), so FID 803 and 689 look
as different as they are; one series per run, coloured the same in every plot.

Plotext draws in pure Python (~10 ms a plot, and textual-plotext redraws on every repaint), so the figure
is built in a worker thread for the widget's size, theme and series, and ``render`` returns the built text:
opening the compare screen does not wait for three plots on the UI thread."""

from __future__ import annotations

import threading
from typing import Any

from rich.text import Text
from textual import work
from textual.message import Message
from textual.reactive import reactive
from textual_plotext import PlotextPlot

COLOURS = ("cyan", "orange", "green", "magenta", "blue", "red", "yellow", "gray")
_PLOTEXT = threading.Lock()  # plotext keeps module-level state (themes, colour tables): one figure at a time

Series = dict[str, tuple[list[float], list[float]]]


def draw_plot(title: str, xlabel: str, series: Series, width: int, height: int, theme: str) -> Text:
    """The plot as text (``width`` x ``height`` cells, plotext theme ``theme``), one line per run."""
    from textual_plotext.plot import Plot

    with _PLOTEXT:
        plt = Plot()
        plt.plotsize(width, height)
        plt._set_size(width, height)  # as textual-plotext's own render does (its issue 5)
        plt.theme(theme)
        plt.title(title)
        plt.xlabel(xlabel)
        shown = False
        for i, (label, (xs, ys)) in enumerate(series.items()):
            if xs:
                plt.plot(xs, ys, label=label, color=COLOURS[i % len(COLOURS)], marker="braille" if len(xs) > 1 else "dot")
                shown = True
        if not shown:
            plt.title(f"{title}: no values yet")
        built = plt.build()
    return Text.from_ansi(built)


class OverlayPlot(PlotextPlot):
    """``series``: label -> (xs, ys); drawn with ``title`` and ``xlabel`` on shared axes."""

    series: reactive[Series] = reactive(dict, always_update=True, init=False, repaint=False)

    class Drawn(Message):
        def __init__(self, key: tuple[Any, ...], text: Text) -> None:
            super().__init__()
            self.key, self.text = key, text

    def __init__(self, title: str, xlabel: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title, self.xlabel = title, xlabel
        self._version = 0
        self._drawn: tuple[tuple[Any, ...], Text] | None = None
        self._wanted: tuple[Any, ...] | None = None

    def watch_series(self) -> None:
        self._version += 1
        self.refresh()

    def _key(self) -> tuple[Any, ...]:
        return (self._version, self.size.width, self.size.height, self._get_plotext_theme_name(self.app.theme))

    @property
    def plot_size(self) -> tuple[int, int]:
        return self.size.width, self.size.height

    @property
    def plot_theme(self) -> str:
        return self._get_plotext_theme_name(self.app.theme)

    def show(self, series: Series, drawn: Text | None = None, size: tuple[int, int] | None = None, theme: str | None = None) -> None:
        """Show ``series``, with its drawing when it was made already (off the UI thread, by
        :func:`draw_plot` at ``size`` and ``theme``): shown at once if the plot still has that size."""
        self.series = series
        if drawn is not None and size is not None and theme is not None:
            key = (self._version, *size, theme)
            self._drawn, self._wanted = (key, drawn), key

    def render(self) -> Any:
        key = self._key()
        if self._drawn is not None and self._drawn[0] == key:
            return self._drawn[1]
        if not self._version:  # nothing to draw yet: no wasted drawing of empty axes
            return Text(f"{self.title}: loading ...", style="dim")
        if key != self._wanted and self.size.width and self.size.height:
            self._wanted = key
            self._draw(key, dict(self.series))
        return self._drawn[1] if self._drawn is not None else Text(f"{self.title}: drawing ...", style="dim")

    @work(thread=True, exclusive=True, group="draw")
    def _draw(self, key: tuple[Any, ...], series: Series) -> None:
        self.post_message(self.Drawn(key, draw_plot(self.title, self.xlabel, series, key[1], key[2], key[3])))

    def on_overlay_plot_drawn(self, message: OverlayPlot.Drawn) -> None:
        message.stop()
        if message.key == self._wanted:
            self._drawn = (message.key, message.text)
            self.refresh()

    @property
    def drawn(self) -> str:
        """What the plot shows now (plain text; empty until the first drawing is in)."""
        return self._drawn[1].plain if self._drawn is not None else ""

    def labels(self) -> list[str]:
        """The legend's labels, in order (what the plot shows)."""
        return [label for label, (xs, _) in self.series.items() if xs]
