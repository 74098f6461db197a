"""The runs table: columns by priority (the essentials fit 80 columns, wider terminals show more), sorted by
any column (``s`` / clicking a header; again: reversed), rows updated in place between polls."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.reactive import reactive
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from coldlab.formatting import format_eta, format_number
from coldlab.tui.data import RunRow


@dataclasses.dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int  # the cells' usual width (the column may grow)
    priority: int  # 0: always shown; higher: dropped first when the table is narrow
    sort: Callable[[RunRow], Any]


def _missing_last(value: float | None) -> tuple[bool, float]:
    return (value is None, value if value is not None else 0.0)


COLUMNS = (
    Column("id", "id", 4, 0, lambda r: r.id),
    Column("study", "study", 10, 4, lambda r: r.study),
    Column("name", "name", 18, 0, lambda r: r.name),
    Column("tags", "tags", 10, 3, lambda r: " ".join(r.tags)),
    Column("status", "status", 9, 0, lambda r: r.status),
    Column("device", "device", 6, 5, lambda r: r.device),
    Column("progress", "epoch", 9, 1, lambda r: r.progress),
    Column("train", "train", 7, 2, lambda r: _missing_last(r.train_loss)),
    Column("val", "val", 7, 1, lambda r: _missing_last(r.val_loss)),
    Column("fid", "FID", 7, 0, lambda r: _missing_last(r.fid)),
    Column("eta", "ETA", 6, 1, lambda r: _missing_last(r.eta_s)),
)
BY_KEY = {c.key: c for c in COLUMNS}


def fit_columns(width: int) -> list[tuple[Column, int]]:
    """The columns that fit ``width`` cells (each takes its width plus 2 of padding), in table order, with
    the width each gets: taken by priority, so FID, validation loss and ETA stay on screen at 80 columns;
    the name column takes what is left (longer names are cut, and shown whole in the detail)."""
    chosen: list[Column] = []
    used = 0
    for col in sorted(COLUMNS, key=lambda c: c.priority):
        if col.priority == 0 or used + col.width + 2 <= width:
            chosen.append(col)
            used += col.width + 2
    spare = max(0, width - used)
    return [(c, c.width + spare if c.key == "name" else c.width) for c in COLUMNS if c in chosen]


def progress_bar(row: RunRow, width: int = 4) -> str:
    filled = round(row.progress * width)
    return f"{row.epoch}/{row.epochs} " + "█" * filled + "░" * (width - filled)


def cell(row: RunRow, key: str, marked: bool = False) -> Any:
    """One cell; user strings as Rich ``Text`` (never parsed as markup)."""
    if key == "id":
        return ("● " if marked else "") + str(row.id)
    if key == "status":
        status = row.status + (" (cancelling)" if row.cancel_requested and row.status == "running" else "")
        if row.status == "queued" and row.depends_on is not None:
            status += f" (after {row.depends_on})"
        colour = {"running": "green", "failed": "red", "interrupted": "yellow", "cancelled": "magenta", "skipped": "dim"}.get(row.status)
        return Text(status, style=colour or "")
    if key == "fid":
        return f"{format_number(row.fid)}{'ᶜ' if row.fid_name == 'classifier-fid' else ''}" if row.fid is not None else ""
    makers: dict[str, Callable[[], Any]] = {
        "study": lambda: Text(row.study),
        "name": lambda: Text(row.name),
        "tags": lambda: Text(" ".join(row.tags), style="cyan"),
        "device": lambda: Text(row.device),
        "progress": lambda: progress_bar(row),
        "train": lambda: format_number(row.train_loss),
        "val": lambda: format_number(row.val_loss),
        "eta": lambda: format_eta(row.eta_s),
    }
    return makers[key]()


class RunsTable(DataTable[Any]):
    """Rows from ``rows`` (already filtered), marks from ``marked``, sorted by ``sort_key``."""

    rows_shown: reactive[list[RunRow]] = reactive(list, always_update=True, init=False, repaint=False)
    marked: reactive[frozenset[int]] = reactive(frozenset, init=False, repaint=False)
    sort_key: reactive[str] = reactive("id", init=False, repaint=False)
    sort_reverse: reactive[bool] = reactive(False, init=False, repaint=False)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.columns_shown: list[Column] = []
        self._cells: LRUCache[tuple[Any, ...], Any] = LRUCache(20000)
        self.layout_shown: list[tuple[Column, int]] = []

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int, cursor: bool = False, hover: bool = False) -> Any:
        """DataTable's cell rendering, cached by the cell's value rather than by the table's update count:
        DataTable re-renders every visible cell (through Rich, ~0.4 ms each) whenever any one cell changes, so
        a poll that moves one ETA, or a mark, redrew the whole table."""
        if row_index < 0 or column_index < 0:  # the header and row labels: DataTable's own cache
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        if row_key is None or column_key is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        value = self._data[row_key][column_key]
        key: tuple[Any, ...] = (row_index, row_key, column_key, str(value), getattr(value, "style", None), base_style, width, cursor, hover)
        key += (self._show_hover_cursor, self._pseudo_class_state)
        lines = self._cells.get(key)
        if lines is None:
            lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
            self._cells[key] = lines
        return lines

    def on_resize(self) -> None:
        self._layout_columns()

    def _layout_columns(self) -> None:
        wanted = fit_columns((self.size.width or 80) - 2)  # room for the scroll bar
        if wanted == self.layout_shown:
            return
        selected = self.selected_id
        self.clear(columns=True)
        self.layout_shown = wanted
        self.columns_shown = [col for col, _ in wanted]
        for col, width in wanted:
            arrow = (" ▼" if self.sort_reverse else " ▲") if col.key == self.sort_key else ""
            self.add_column(col.label + arrow, key=col.key, width=width)
        self._render_rows(force=True, keep=selected)

    @property
    def selected_id(self) -> int | None:
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:  # no cursor yet
            return None
        return int(key.value) if key.value is not None else None

    def sorted_rows(self) -> list[RunRow]:
        """The rows by the sort column (ties by id); runs without a value come last either way."""
        col = BY_KEY.get(self.sort_key, COLUMNS[0])
        keyed = [(col.sort(r), r) for r in self.rows_shown]
        missing = [r for k, r in keyed if isinstance(k, tuple) and k[0]]
        present = [(k, r) for k, r in keyed if not (isinstance(k, tuple) and k[0])]
        present.sort(key=lambda kr: (kr[0], kr[1].id), reverse=self.sort_reverse)
        return [r for _, r in present] + sorted(missing, key=lambda r: r.id)

    def watch_rows_shown(self) -> None:
        self._render_rows()

    def watch_marked(self) -> None:
        self._render_rows()

    def watch_sort_key(self) -> None:
        self._sorted()

    def watch_sort_reverse(self) -> None:
        self._sorted()

    def _sorted(self) -> None:
        """The header's arrow moves to the sort column, and the rows are put in its order (no rebuild)."""
        for col in self.columns_shown:
            arrow = (" ▼" if self.sort_reverse else " ▲") if col.key == self.sort_key else ""
            self.columns[ColumnKey(col.key)].label = Text(col.label + arrow)
        self._render_rows()
        self.refresh()

    def sort_by(self, key: str) -> None:
        """Sort by ``key``; the column already sorted by is reversed."""
        if key == self.sort_key:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_reverse = False
            self.sort_key = key

    def next_sort(self) -> None:
        """Sort by the next shown column (``s``)."""
        keys = [c.key for c in self.columns_shown] or [c.key for c in COLUMNS]
        at = keys.index(self.sort_key) if self.sort_key in keys else -1
        self.sort_reverse = False
        self.sort_key = keys[(at + 1) % len(keys)]

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        if event.column_key.value:
            self.sort_by(event.column_key.value)

    def _render_rows(self, force: bool = False, keep: int | None = None) -> None:
        """Bring the table to ``rows_shown`` in the sort order, touching only what changed: rows that went
        are removed, new ones added, changed cells rewritten, and the order set by a sort (no rebuild)."""
        if not self.columns_shown:
            return
        keep = self.selected_id if keep is None else keep
        if force:
            self.clear()
        rows = self.sorted_rows()
        order = [str(r.id) for r in rows]
        present = {str(k.value) for k in self.rows}
        for gone in present - set(order):
            self.remove_row(gone)
        for row in rows:
            cells = [cell(row, c.key, row.id in self.marked) for c in self.columns_shown]
            if str(row.id) not in present:
                self.add_row(*cells, key=str(row.id))
                continue
            for col, value in zip(self.columns_shown, cells, strict=True):
                if str(self.get_cell(str(row.id), col.key)) != str(value):
                    self.update_cell(str(row.id), col.key, value)
        if [r.key.value for r in self.ordered_rows] != order:
            position = {k: i for i, k in enumerate(order)}
            self.sort("id", key=lambda id_cell: position[str(id_cell).removeprefix("● ")])
        if keep is not None and str(keep) in order and self.selected_id != keep:
            self.move_cursor(row=order.index(str(keep)), animate=False)
