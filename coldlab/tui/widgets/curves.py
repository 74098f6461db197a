"""Curves of several runs on shared, labelled axes with a legend (textual-plotext), so FID 803 and 689 look
as different as they are; one series per run, coloured the same in every plot."""

from __future__ import annotations

from typing import Any

from textual.reactive import reactive
from textual_plotext import PlotextPlot

COLOURS = ("cyan", "orange", "green", "magenta", "blue", "red", "yellow", "gray")


class OverlayPlot(PlotextPlot):
    """``series``: label -> (xs, ys); drawn with ``title`` and ``xlabel`` on shared axes."""

    series: reactive[dict[str, tuple[list[float], list[float]]]] = reactive(dict, always_update=True, init=False)

    def __init__(self, title: str, xlabel: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title, self.xlabel = title, xlabel

    def on_mount(self) -> None:
        self.draw()

    def watch_series(self) -> None:
        self.draw()

    def draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.title)
        plt.xlabel(self.xlabel)
        shown = False
        for i, (label, (xs, ys)) in enumerate(self.series.items()):
            if xs:
                plt.plot(xs, ys, label=label, color=COLOURS[i % len(COLOURS)], marker="braille" if len(xs) > 1 else "dot")
                shown = True
        if not shown:
            plt.title(f"{self.title}: no values yet")
        self.refresh()

    def labels(self) -> list[str]:
        """The legend's labels, in order (what the plot shows)."""
        return [label for label, (xs, _) in self.series.items() if xs]
