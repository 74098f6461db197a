"""The runs table: columns by priority (the essentials fit 80 columns, wider terminals show more), sorted by
any column (``s`` / clicking a header; again: reversed), a row cursor, marks.

It is a line-API widget (a :class:`~textual.scroll_view.ScrollView` whose ``render_line`` returns one strip
per row), not a ``DataTable``: a DataTable renders every visible cell through Rich (~0.3 ms each, and its
cache is keyed by the row's index, so a sort, a filter or a mark re-renders all of them: 100-250 ms with 45
rows of 11 columns). Here each row is one strip built straight from segments, cached by what the row shows
(its cells, the column widths and its style: zebra, cursor, focus), so a poll, sort, filter or mark only
re-renders rows whose content changed, and the rest is a dictionary look-up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from coldlab.formatting import format_eta, format_number
from coldlab.tui.data import RunRow


@dataclasses.dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int  # the cells' usual width (the name column takes what is spare)
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
PADDING = 1  # cells on each side of a column's text
ROW_STYLES = {"header": "runs-table--header", "even": "runs-table--even-row", "cursor": "runs-table--cursor"}  # odd: the base


def fit_columns(width: int) -> list[tuple[Column, int]]:
    """The columns that fit ``width`` cells (each takes its width plus 2 of padding), in table order, with
    the width each gets: taken by priority, so FID, validation loss and ETA stay on screen at 80 columns;
    the name column takes what is left (longer names are cut, and shown whole in the detail)."""
    chosen: list[Column] = []
    used = 0
    for col in sorted(COLUMNS, key=lambda c: c.priority):
        if col.priority == 0 or used + col.width + 2 * PADDING <= width:
            chosen.append(col)
            used += col.width + 2 * PADDING
    spare = max(0, width - used)
    return [(c, c.width + spare if c.key == "name" else c.width) for c in COLUMNS if c in chosen]


def progress_bar(row: RunRow, width: int = 4) -> str:
    filled = round(row.progress * width)
    return f"{row.epoch}/{row.epochs} " + "█" * filled + "░" * (width - filled)


STATUS_STYLES = {"running": "green", "failed": "red", "interrupted": "yellow", "cancelled": "magenta", "skipped": "dim"}


def cell(row: RunRow, key: str, marked: bool = False) -> tuple[str, str]:
    """One cell as (plain text, style name). User strings stay plain text: nothing is parsed as markup."""
    if key == "id":
        return ("● " if marked else "") + str(row.id), ""
    if key == "status":
        status = row.status + (" (cancelling)" if row.cancel_requested and row.status == "running" else "")
        if row.status == "queued" and row.depends_on is not None:
            status += f" (after {row.depends_on})"
        return status, STATUS_STYLES.get(row.status, "")
    if key == "fid":
        return (f"{format_number(row.fid)}{'ᶜ' if row.fid_name == 'classifier-fid' else ''}" if row.fid is not None else ""), ""
    makers: dict[str, Callable[[], tuple[str, str]]] = {
        "study": lambda: (row.study, ""),
        "name": lambda: (row.name, ""),
        "tags": lambda: (" ".join(row.tags), "cyan"),
        "device": lambda: (row.device, ""),
        "progress": lambda: (progress_bar(row), ""),
        "train": lambda: (format_number(row.train_loss), ""),
        "val": lambda: (format_number(row.val_loss), ""),
        "eta": lambda: (format_eta(row.eta_s), ""),
    }
    return makers[key]()


def _clean(text: str) -> str:
    """One line of a cell: control characters (newlines, tabs, escapes) would break the row."""
    return "".join(ch if ch.isprintable() else " " for ch in text) if not text.isprintable() else text


class RowMessage(Message):
    """A message about one run of the table (its ``run_id``)."""

    def __init__(self, table: RunsTable, run_id: int) -> None:
        super().__init__()
        self.table, self.run_id = table, run_id

    @property
    def control(self) -> RunsTable:
        return self.table


class RunsTable(ScrollView, can_focus=True):
    """Rows from ``rows_shown`` (already filtered), marks from ``marked``, sorted by ``sort_key``. The header
    stays on the first line; the cursor (a row) is the run keys act on. Posts :class:`RowHighlighted` when the
    run under the cursor changes and :class:`RowSelected` on enter (or a click on the cursor's row)."""

    DEFAULT_CSS = """
    RunsTable {
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-gutter: stable;
        &:focus { background-tint: $foreground 5%; }
        & > .runs-table--header { text-style: bold; background: $panel; color: $foreground; }
        & > .runs-table--even-row { background: $surface-darken-1 40%; }
        & > .runs-table--cursor { background: $block-cursor-blurred-background; }
        &:focus > .runs-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"runs-table--header", "runs-table--even-row", "runs-table--cursor"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "to_end(0)", "First", show=False),
        Binding("end", "to_end(1)", "Last", show=False),
        Binding("enter", "select_cursor", "Select", show=False),
    ]

    rows_shown: reactive[list[RunRow]] = reactive(list, always_update=True, init=False, repaint=False)
    marked: reactive[frozenset[int]] = reactive(frozenset, init=False, repaint=False)
    sort_key: reactive[str] = reactive("id", init=False, repaint=False)
    sort_reverse: reactive[bool] = reactive(False, init=False, repaint=False)

    class RowHighlighted(RowMessage):
        """The cursor is on another run (moved, or the rows changed under it)."""

    class RowSelected(RowMessage):
        """Enter, or a click on the cursor's row."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.layout_shown: list[tuple[Column, int]] = []
        self.columns_shown: list[Column] = []
        self._widths: tuple[int, ...] = ()
        self.order: list[RunRow] = []  # the rows in display order
        self.cursor_row = 0
        self._cells: dict[int, tuple[tuple[str, str], ...]] = {}  # run id -> its cells, as shown
        self._strips: LRUCache[tuple[Any, ...], Strip] = LRUCache(4096)
        self._styles: dict[str, Style] = {}
        self._highlighted: int | None = None
        self.strips_made = 0  # rows rendered (not served from the cache): for tests and the benchmark

    # ---- the public state -----------------------------------------------------------------------
    @property
    def row_count(self) -> int:
        return len(self.order)

    def row_ids(self) -> list[int]:
        """The shown runs' ids in display order."""
        return [r.id for r in self.order]

    def cell_text(self, run_id: int, key: str) -> str:
        """What the cell of run ``run_id`` in column ``key`` shows (the plain text)."""
        return self._cells[run_id][[c.key for c in self.columns_shown].index(key)][0]

    @property
    def selected_id(self) -> int | None:
        return self.order[self.cursor_row].id if self.order else None

    def move_cursor(self, row: int) -> None:
        """Put the cursor on display row ``row`` (clamped) and scroll it into view."""
        if not self.order:
            return
        row = max(0, min(len(self.order) - 1, row))
        if row != self.cursor_row:
            old = self.cursor_row
            self.cursor_row = row
            self._refresh_row(old)
            self._refresh_row(row)
        self._scroll_to_cursor()
        self._post_highlighted()

    # ---- layout ---------------------------------------------------------------------------------
    def on_resize(self) -> None:
        self._layout_columns()

    def on_mount(self) -> None:
        self._layout_columns()

    def _layout_columns(self) -> None:
        wanted = fit_columns(self.size.width or 80)  # the scroll bar's gutter is reserved (stable): not in size
        if wanted == self.layout_shown:
            return
        self.layout_shown = wanted
        self.columns_shown = [col for col, _ in wanted]
        self._widths = tuple(width for _, width in wanted)
        self._render_rows()

    @property
    def _page(self) -> int:
        return max(1, self.size.height - 1)  # the rows below the header

    # ---- sorting --------------------------------------------------------------------------------
    def sorted_rows(self) -> list[RunRow]:
        """The rows by the sort column (ties by id); runs without a value come last either way."""
        col = BY_KEY.get(self.sort_key, COLUMNS[0])
        keyed = [(col.sort(r), r) for r in self.rows_shown]
        missing = [r for k, r in keyed if isinstance(k, tuple) and k[0]]
        present = [(k, r) for k, r in keyed if not (isinstance(k, tuple) and k[0])]
        present.sort(key=lambda kr: (kr[0], kr[1].id), reverse=self.sort_reverse)
        return [r for _, r in present] + sorted(missing, key=lambda r: r.id)

    def sort_by(self, key: str) -> None:
        """Sort by ``key``; the column already sorted by is reversed."""
        if key == self.sort_key:
            self.sort_reverse = not self.sort_reverse
        else:
            self.set_reactive(RunsTable.sort_reverse, False)  # one redraw, by the new key's watcher
            self.sort_key = key

    def next_sort(self) -> None:
        """Sort by the next shown column (``s``)."""
        keys = [c.key for c in self.columns_shown] or [c.key for c in COLUMNS]
        at = keys.index(self.sort_key) if self.sort_key in keys else -1
        self.set_reactive(RunsTable.sort_reverse, False)
        self.sort_key = keys[(at + 1) % len(keys)]

    def _render_rows(self) -> None:
        """Bring the rows to ``rows_shown`` in the sort order, the cursor staying on its run (or, when that
        run went, on the same line). Only lines whose content changed are repainted."""
        keep = self.selected_id
        old_order = [r.id for r in self.order]
        old_cells = self._cells
        self.order = self.sorted_rows()
        keys = [c.key for c in self.columns_shown]
        self._cells = {r.id: tuple((_clean(t), s) for t, s in (cell(r, k, r.id in self.marked) for k in keys)) for r in self.order}
        ids = [r.id for r in self.order]
        if keep in self._cells:
            self.cursor_row = ids.index(keep)
        self.cursor_row = max(0, min(len(ids) - 1, self.cursor_row)) if ids else 0
        self._set_virtual_size(Size(self.size.width, len(ids) + 1))
        if ids != old_order:
            self.refresh()
        else:  # the same runs in the same order: repaint the lines that show something new
            for i, run_id in enumerate(ids):
                if old_cells.get(run_id) != self._cells[run_id]:
                    self._refresh_row(i)
        self._refresh_header()
        self._scroll_to_cursor()
        self._post_highlighted()

    def _changed(self) -> None:
        self._render_rows()

    watch_rows_shown = watch_marked = watch_sort_key = watch_sort_reverse = _changed

    def _set_virtual_size(self, size: Size) -> None:
        """The scrolled area (a line per row and the header). Set without the full-screen layout that
        ``virtual_size``'s assignment asks for (~15-30 ms): the table's own box does not depend on its rows, only
        the scroll bar does; a layout is asked for only when the scroll bar appears or goes."""
        if size == self.virtual_size:
            return
        shown = self.show_vertical_scrollbar
        self.set_reactive(RunsTable.virtual_size, size)
        self._scroll_update(size)
        if self.show_vertical_scrollbar != shown:
            self.refresh(layout=True)
        self.refresh()

    def _post_highlighted(self) -> None:
        run_id = self.selected_id
        if run_id is not None and run_id != self._highlighted:
            self._highlighted = run_id
            self.post_message(self.RowHighlighted(self, run_id))

    def _refresh_header(self) -> None:
        self.refresh(Region(0, 0, self.size.width, 1))

    def _refresh_row(self, index: int) -> None:
        y = index + 1 - self.scroll_offset.y
        if 1 <= y < self.size.height:
            self.refresh(Region(0, y, self.size.width, 1))

    def _scroll_to_cursor(self) -> None:
        top = self.scroll_offset.y
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False)
        elif self.cursor_row >= top + self._page:
            self.scroll_to(y=self.cursor_row - self._page + 1, animate=False)

    # ---- rendering ------------------------------------------------------------------------------
    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()  # a theme change: the styles are read again (they are part of the cache keys)

    def on_focus(self) -> None:
        self._styles.clear()  # the cursor's style depends on focus
        self.refresh()

    on_blur = on_focus

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            if name == "base":
                style = self.rich_style
            elif name.startswith("runs-table--"):
                style = self.get_component_rich_style(name)
            else:
                style = Style.parse(name) if name else Style()
            self._styles[name] = style
        return style

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            return self._strip(("header", self.sort_key, self.sort_reverse), self._header_cells(), "header", width)
        index = y - 1 + self.scroll_offset.y
        if index >= len(self.order):
            return Strip.blank(width, self._style("base"))
        run_id = self.order[index].id
        kind = "cursor" if index == self.cursor_row else ("even" if index % 2 else "odd")
        return self._strip((run_id,), self._cells[run_id], kind, width)

    def _header_cells(self) -> tuple[tuple[str, str], ...]:
        arrow = " ▼" if self.sort_reverse else " ▲"
        return tuple((c.label + (arrow if c.key == self.sort_key else ""), "") for c in self.columns_shown)

    def _strip(self, key: tuple[Any, ...], cells: tuple[tuple[str, str], ...], kind: str, width: int) -> Strip:
        base = self._style("base")
        row_style = ROW_STYLES.get(kind)
        style = base + self._style(row_style) if row_style else base
        cache_key = (*key, cells, self._widths, kind, style, width)
        strip = self._strips.get(cache_key)
        if strip is not None:
            return strip
        segments = []
        pad = " " * PADDING
        for (text, cell_style), col_width in zip(cells, self._widths, strict=False):
            content = set_cell_size(text, col_width) if cell_len(text) != col_width else text
            own = self._style(cell_style) if cell_style and kind != "cursor" else None
            segments.append(Segment(pad + content + pad, style + own if own else style))
        strip = Strip(segments).extend_cell_length(width, style).crop(0, width)
        self._strips[cache_key] = strip
        self.strips_made += 1
        return strip

    # ---- keys and the mouse ---------------------------------------------------------------------
    def action_cursor(self, delta: int) -> None:
        self.move_cursor(self.cursor_row + delta)

    def action_page(self, delta: int) -> None:
        self.move_cursor(self.cursor_row + delta * self._page)

    def action_to_end(self, last: int) -> None:
        self.move_cursor(len(self.order) - 1 if last else 0)

    def action_select_cursor(self) -> None:
        if self.selected_id is not None:
            self.post_message(self.RowSelected(self, self.selected_id))

    def column_at(self, x: int) -> Column | None:
        """The column drawn at ``x`` cells from the table's left edge."""
        at = 0
        for col, width in self.layout_shown:
            at += width + 2 * PADDING
            if x < at:
                return col
        return None

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        event.stop()
        if offset.y == 0:  # the header: sort by that column (again: reversed)
            col = self.column_at(offset.x)
            if col is not None:
                self.sort_by(col.key)
            return
        index = offset.y - 1 + self.scroll_offset.y
        if 0 <= index < len(self.order):
            again = index == self.cursor_row
            self.move_cursor(index)
            if again:
                self.action_select_cursor()
