"""``coldlab tui``: the dashboard. Reads the store read-only in a worker thread every second
(never two polls at once), renders on the UI thread, and changes the queue only through the
store's queue functions. Workers are separate processes started detached, so closing the
dashboard does not stop training.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.widgets import DataTable, Footer, Header, Input, Select, Sparkline, Static

from coldlab.formatting import format_eta, format_number
from coldlab.home import Home, as_home
from coldlab.tui.data import RunRow, Snapshot, devices, load_snapshot
from coldlab.tui.render import half_blocks

STATUSES = ("all", "queued", "running", "finished", "failed", "interrupted", "cancelled", "skipped")
COLUMNS = (
    ("id", "id"),
    ("study", "study"),
    ("name", "name"),
    ("tags", "tags"),
    ("status", "status"),
    ("device", "device"),
    ("progress", "epoch / progress"),
    ("train", "train loss"),
    ("val", "val loss"),
    ("fid", "FID"),
    ("eta", "ETA"),
)


def progress_bar(row: RunRow, width: int = 8) -> str:
    filled = round(row.progress * width)
    return f"{row.epoch}/{row.epochs} " + "█" * filled + "░" * (width - filled)


def row_cells(row: RunRow) -> tuple[Any, ...]:
    status = row.status + (" (cancelling)" if row.cancel_requested and row.status == "running" else "")
    if row.status == "queued" and row.depends_on is not None:
        status += f" (after {row.depends_on})"
    colour = {"running": "green", "failed": "red", "interrupted": "yellow", "cancelled": "magenta", "skipped": "dim"}.get(row.status)
    fid = f"{format_number(row.fid)}{'ᶜ' if row.fid_name == 'classifier-fid' else ''}" if row.fid is not None else ""
    return (
        str(row.id),
        Text(row.study),
        Text(row.name),
        Text(" ".join(row.tags), style="cyan"),
        Text(status, style=colour or ""),
        Text(row.device),
        progress_bar(row),
        format_number(row.train_loss),
        format_number(row.val_loss),
        fid,
        format_eta(row.eta_s),
    )


class ColdlabApp(App[None]):
    """The dashboard of one store (``home``)."""

    CSS_PATH = "app.tcss"
    TITLE = "coldlab"
    BINDINGS = [
        Binding("a", "add", "Add TOML"),
        Binding("c", "cancel", "Cancel run"),
        Binding("r", "resume", "Resume run"),
        Binding("plus,equals_sign", "priority(1)", "Up", key_display="+"),
        Binding("minus", "priority(-1)", "Down", key_display="-"),
        Binding("w", "workers", "Workers"),
        Binding("space", "mark", "Mark for compare", show=False),
        Binding("m", "compare", "Compare"),
        Binding("p", "plugins", "Plugins"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        home: Path | Home,
        *,
        poll_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        show_devices: bool = True,
        show_timing: bool = True,
        archived: bool = False,
    ) -> None:
        super().__init__()
        self.store = as_home(home)
        self.home = self.store.root
        self.poll_s, self.clock, self.show_devices, self.show_timing = poll_s, clock, show_devices, show_timing
        self.snapshot: Snapshot | None = None
        self.selected: int | None = None
        self.marked: set[int] = set()
        self.workers_started: list[Any] = []
        self._polling = threading.Lock()
        self.polls = 0
        self.last_refresh_s = 0.0
        self.study_filter = ""
        self.status_filter = "all"
        self.device_info: list[dict[str, Any]] = []
        self.archived = archived  # show archived runs too (coldlab tui --all)

    @property
    def base(self) -> Any:
        """The main screen (queried even while another screen is on top, so polls keep it current)."""
        return self.screen_stack[0]

    # ---- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="filters"):
            yield Input(placeholder="study filter", id="study-filter")
            yield Select([(s, s) for s in STATUSES], value="all", allow_blank=False, id="status-filter")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
                yield Static("", id="devices")
            with VerticalScroll(id="detail"):
                yield Static("select a run", id="detail-title")
                for name, label in (("train_loss", "train loss"), ("val_loss", "val loss"), ("fid", "FID"), ("classifier-fid", "classifier FID")):
                    yield Static(label, classes="spark-label", id=f"label-{name}")
                    yield Sparkline([], id=f"spark-{name}", summary_function=max)
                yield Static("", id="grid")
                yield Static("", id="config")
                yield Static("", id="log")
        yield Static("", id="message")
        yield Footer()

    def on_mount(self) -> None:
        table = self.base.query_one("#runs", DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        table.focus()
        self.refresh_data()
        self.set_interval(self.poll_s, self.refresh_data)
        if self.show_devices:
            self.refresh_devices()
            self.set_interval(5.0, self.refresh_devices)

    # ---- polling (off the UI thread, never overlapping) -----------------------------------
    def refresh_data(self) -> None:
        if not self._polling.acquire(blocking=False):
            return  # the previous poll is still reading: skip this tick
        self._poll(self.selected)

    @work(thread=True, group="poll")
    def _poll(self, selected: int | None) -> None:
        try:
            try:
                snapshot = load_snapshot(self.store, selected, now=self.clock, archived=self.archived)
            except Exception as err:  # a store being migrated or a torn read: say so, try again next tick
                self._to_ui(self.say, f"could not read the store: {type(err).__name__}: {err}")
                return
            self._to_ui(self.apply, snapshot)
        finally:
            self._polling.release()

    def _to_ui(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn`` on the UI thread, unless the app is closing (then the result is not needed)."""
        if not self.is_running or self._exit_renderables:
            return
        try:
            self.call_from_thread(fn, *args)
        except RuntimeError:  # the event loop closed while this poll was reading
            pass

    @work(thread=True, group="devices", exclusive=True)
    def refresh_devices(self) -> None:
        self._to_ui(self._apply_devices, devices())

    def _apply_devices(self, info: list[dict[str, Any]]) -> None:
        self.device_info = info
        self.render_devices()

    def render_devices(self) -> None:
        users: dict[str, list[str]] = {}
        for row in self.snapshot.rows if self.snapshot else []:
            if row.status == "running" and row.device:
                users.setdefault(row.device if row.device != "cuda" else "cuda:0", []).append(f"#{row.id}")
        lines = []
        for d in self.device_info:
            gib = 2**30
            mem = f"{d['memory_used'] / gib:.1f}/{d['memory_total'] / gib:.1f} GiB" if d["memory_total"] else ""
            lines.append(f"{d['device']} ({d['name']}): {mem} {d['utilisation']}  runs: {' '.join(users.get(d['device'], [])) or '-'}")
        self.base.query_one("#devices", Static).update(Text("\n".join(lines)))

    def visible_rows(self) -> list[RunRow]:
        rows = self.snapshot.rows if self.snapshot else []
        return [
            r
            for r in rows
            if (not self.study_filter or self.study_filter in r.study) and (self.status_filter == "all" or r.status == self.status_filter)
        ]

    def apply(self, snapshot: Snapshot) -> None:
        """Render a snapshot (UI thread): update cells in place, add and remove rows."""
        try:
            self._apply(snapshot)
        except NoMatches:  # a poll that lands while the app is closing
            pass

    def _apply(self, snapshot: Snapshot) -> None:
        start = time.perf_counter()
        self.snapshot = snapshot
        table = self.base.query_one("#runs", DataTable)
        rows = self.visible_rows()
        wanted = {str(r.id) for r in rows}
        for key in [k for k in list(table.rows) if k.value not in wanted]:
            table.remove_row(key)
        present = {k.value for k in table.rows}
        for row in rows:
            cells = row_cells(row)
            label = ("● " if row.id in self.marked else "") + str(row.id)
            cells = (label,) + cells[1:]
            if str(row.id) in present:
                for (col, _), value in zip(COLUMNS, cells, strict=True):
                    if str(table.get_cell(str(row.id), col)) != str(value):
                        table.update_cell(str(row.id), col, value, update_width=True)
            else:
                table.add_row(*cells, key=str(row.id))
        if self.selected is None and rows:
            self.selected = rows[0].id
        self.render_detail()
        self.render_devices()
        self.polls += 1
        self.last_refresh_s = snapshot.seconds + time.perf_counter() - start
        timing = f"  ·  refresh {self.last_refresh_s * 1000:.0f} ms" if self.show_timing else ""
        self.sub_title = f"{self.home.name}  ·  {len(snapshot.rows)} runs{timing}"  # Textual shows titles as plain text

    def render_detail(self) -> None:
        snapshot = self.snapshot
        detail = snapshot.detail if snapshot else None
        if snapshot is None or detail is None or detail.id != self.selected:
            return
        row = next((r for r in snapshot.rows if r.id == detail.id), None)
        title = Text(f"run {detail.id}: {row.name if row else ''} — {row.status if row else ''}")
        if detail.error:
            title.append(f"\n{detail.error}", style="red")
        if detail.params:
            title.append("\nsweep: " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in detail.params.items()))
        if detail.tags:
            title.append("\ntags: " + " ".join(detail.tags), style="cyan")
        if detail.note:
            title.append("\nnote: " + detail.note, style="italic")
        self.base.query_one("#detail-title", Static).update(title)
        for name, values in detail.series.items():
            spark = self.base.query_one(f"#spark-{name}", Sparkline)
            spark.data = list(values)  # a new list: Sparkline watches assignment, not mutation
            spark.display = bool(values)
            last = f" {format_number(values[-1])}" if values else " –"
            label = {"train_loss": "train loss", "val_loss": "val loss", "fid": "FID", "classifier-fid": "classifier FID"}[name]
            self.base.query_one(f"#label-{name}", Static).update(f"{label}:{last} ({len(values)} points)")
        grid = self.base.query_one("#grid", Static)
        grid.update(half_blocks(detail.grid, width=32, max_rows=16) if detail.grid else "no sample grid yet")
        cfg = {
            k: detail.config[k]
            for k in ("kind", "dataset", "autoencoder", "latent", "degradation", "prior", "network", "sampler", "train", "eval")
            if detail.config.get(k)
        }
        self.base.query_one("#config", Static).update(Text(json.dumps(cfg, indent=1), style="dim"))
        self.base.query_one("#log", Static).update(Text("\n".join(detail.log_tail) or "(no log lines)", style="italic"))

    # ---- events ------------------------------------------------------------------------
    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value is not None:
            new = int(event.row_key.value)
            if new != self.selected:
                self.selected = new
                self.refresh_data()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "study-filter":
            self.study_filter = event.value.strip()
            if self.snapshot:
                self.apply(self.snapshot)

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "status-filter":
            self.status_filter = str(event.value)
            if self.snapshot:
                self.apply(self.snapshot)

    def say(self, message: str, error: bool = False) -> None:
        self.base.query_one("#message", Static).update(Text(message, style="bold red" if error else "bold"))
        if error:
            self.notify(message, severity="error", timeout=8)

    # ---- queue control (writes through the store's queue functions) ------------------------
    def _write(self, fn: Callable[..., Any], *args: Any) -> bool:
        from coldlab.errors import ColdlabError

        conn = self.store.connect()
        try:
            fn(conn, *args)
            return True
        except ColdlabError as err:
            self.say(str(err), error=True)
            return False
        finally:
            conn.close()

    def action_cancel(self) -> None:
        from coldlab.store import request_cancel

        if self.selected is not None and self._write(request_cancel, self.selected):
            self.say(f"run {self.selected}: cancel requested (the worker checkpoints and stops it)")
            self.refresh_data()

    def action_resume(self) -> None:
        from coldlab.store import requeue

        if self.selected is not None and self._write(requeue, self.selected):
            self.say(f"run {self.selected} queued again; it resumes from its checkpoint when a worker claims it")
            self.refresh_data()

    def action_priority(self, delta: int) -> None:
        from coldlab.store import set_priority

        row = next((r for r in (self.snapshot.rows if self.snapshot else []) if r.id == self.selected), None)
        if row is not None and self._write(set_priority, row.id, row.priority + delta):
            self.say(f"run {row.id}: priority {row.priority + delta} (higher runs first)")
            self.refresh_data()

    def action_mark(self) -> None:
        if self.selected is not None:
            self.marked ^= {self.selected}
            if self.snapshot:
                self.apply(self.snapshot)

    def action_filter(self) -> None:
        self.base.query_one("#study-filter", Input).focus()

    def add_file(self, path: str) -> None:
        """Validate a TOML file and queue its runs; errors are shown, never raised."""
        from coldlab.config import load_experiments
        from coldlab.engine.queueing import queue_runs
        from coldlab.errors import ColdlabError
        from coldlab.plugins import get_registry
        from coldlab.provenance import queued

        try:
            runs = load_experiments(path)
            origin = queued(path, get_registry(), command=["coldlab", "tui", f"(key a: {path})"])
            conn = self.store.connect()
            try:  # the same checks as `coldlab run`: a changed experiment under an existing name is refused
                created = sum(new for _, _, _, new in queue_runs(conn, runs, where=path, provenance=origin))  # autoencoder runs first
            finally:
                conn.close()
        except ColdlabError as err:
            self.say(str(err), error=True)
            return
        except OSError as err:
            self.say(f"{path}: {err.strerror or err}", error=True)
            return
        self.say(f"{path}: {created} runs queued ({len(runs) - created} already in the store); start a worker with w")
        self.refresh_data()

    def action_add(self) -> None:
        from coldlab.tui.screens import AddScreen

        self.push_screen(AddScreen(), lambda path: self.add_file(path) if path else None)

    def start_worker(self, device: str) -> None:
        from coldlab.plugins import get_registry

        executor = get_registry().build("executor", {"name": "local", "detach": True})
        executor.store = self.store.store
        self.workers_started += executor.start(self.home, [device], self.store.logs)
        self.say(f"worker started on {device} (it keeps running if you close the dashboard)")

    def stop_workers(self, device: str) -> int:
        """Interrupt the workers on ``device``: those started here, and those of running runs on this host."""
        stopped = 0
        for handle in self.workers_started:
            if handle.poll() is None and handle.device == device:
                handle.interrupt()
                stopped += 1
        host = socket.gethostname()
        for row in self.snapshot.rows if self.snapshot else []:
            if row.status == "running" and row.device == device:
                worker = self._worker_of(row.id)
                if worker and worker[0] == host and worker[1] != os.getpid():
                    try:
                        os.kill(worker[1], signal.SIGINT)
                        stopped += 1
                    except ProcessLookupError:
                        pass
        self.say(f"{stopped} worker(s) on {device} asked to checkpoint and stop")
        return stopped

    def _worker_of(self, run_id: int) -> tuple[str, int] | None:
        from coldlab.store.queries import find_run

        conn = self.store.connect(readonly=True)
        try:
            row = find_run(conn, run_id)
        finally:
            conn.close()
        parts = (row["worker"] or "").split(":") if row else []
        return (parts[0], int(parts[1])) if len(parts) >= 2 and parts[1].isdigit() else None

    def action_workers(self) -> None:
        from coldlab.tui.screens import WorkersScreen

        names = [d["device"] for d in self.device_info] or ["cpu"]
        self.push_screen(WorkersScreen(names), self._workers_chosen)

    def _workers_chosen(self, choice: tuple[str, str] | None) -> None:
        if choice:
            action, device = choice
            self.start_worker(device) if action == "start" else self.stop_workers(device)

    def action_plugins(self) -> None:
        from coldlab.tui.screens import PluginsScreen

        self.push_screen(PluginsScreen())

    def action_compare(self) -> None:
        from coldlab.tui.screens import CompareScreen

        ids = sorted(self.marked) or ([self.selected] if self.selected is not None else [])
        if not ids:
            self.say("mark runs with space first", error=True)
            return
        self.push_screen(CompareScreen(self.store, ids))

    def action_help(self) -> None:
        from coldlab.tui.screens import HelpScreen

        self.push_screen(HelpScreen([b for b in self.BINDINGS if isinstance(b, Binding)]))


def run(home: Path | Home, archived: bool = False) -> int:
    ColdlabApp(home, archived=archived).run()
    return 0
