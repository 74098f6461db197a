"""``coldlab tui``: the dashboard. A worker thread reads the store (read-only) every second, never two polls
at once, and posts what it read as a typed message (:mod:`coldlab.tui.messages`); the UI thread only
renders. The queue changes only through the store's queue functions; validating and queueing a TOML file
and listing the plugins run ``coldlab`` in a subprocess, so the dashboard never imports torch. Workers are
separate processes started detached, so closing the dashboard does not stop training.

The screens (``tui/screens/``, one per file) hold the keys that act on what they show; the widgets
(``tui/widgets/``) render themselves from reactive state.
"""

from __future__ import annotations

import gc
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import App
from textual.css.query import NoMatches

from coldlab.home import Home, as_home
from coldlab.tui.data import RunRow, Snapshot, devices, load_snapshot
from coldlab.tui.messages import DevicesLoaded, QueueChanged, Said, SnapshotLoaded, StoreUnreadable
from coldlab.tui.screens.main import MainScreen

_AND = re.compile(r"\s+and\s+|\s*;\s*", re.I)


def parse_filter(text: str) -> tuple[list[Any], list[str]]:
    """The filter box: ``coldlab ls --where`` expressions joined by ``and`` (or ``;``), parsed; a part
    without an operator is a word that must appear in the run's study or name. A bad expression raises
    the same one-line error as ``--where``."""
    from coldlab.search import OPS, parse

    conditions, words = [], []
    for part in (p.strip() for p in _AND.split(text.strip()) if p.strip()):
        if any(op in part for op in OPS):
            conditions.append(parse(part))
        else:
            words.append(part)
    return conditions, words


class ColdlabApp(App[None]):
    """The dashboard of one store (``home``). ``show_timing`` puts each refresh's time in the title (off by
    default: a title that changes every second re-lays out the whole screen)."""

    CSS_PATH = "app.tcss"
    TITLE = "coldlab"

    def __init__(
        self,
        home: Path | Home,
        *,
        poll_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        show_devices: bool = True,
        show_timing: bool = False,
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
        self.filter_text = ""
        self.conditions: list[Any] = []
        self.words: list[str] = []
        self.device_info: list[dict[str, Any]] = []
        self.archived = archived  # show archived runs too (coldlab tui --all)
        self.filter_version = 0  # bumped by each new filter; a snapshot says which one it was read for
        self.snapshot_version = 0

    def get_default_screen(self) -> MainScreen:
        return MainScreen()

    @property
    def main(self) -> MainScreen:
        """The main screen (rendered even while another screen is on top, so polls keep it current)."""
        stack = self.screen_stack
        if not stack or not isinstance(stack[0], MainScreen):
            raise NoMatches("the main screen is not up yet")  # a poll that lands before it, or while closing
        return stack[0]

    def on_mount(self) -> None:
        gc.freeze()  # what startup made lives as long as the app: full collections no longer walk it
        self._warm_up()
        self.refresh_data()
        self.set_interval(self.poll_s, self.refresh_data)
        if self.show_devices:
            self.refresh_devices()
            self.set_interval(5.0, self.refresh_devices)

    # ---- polling (off the UI thread, never overlapping) -------------------------------------
    def refresh_data(self) -> None:
        if not self._polling.acquire(blocking=False):
            return  # the previous poll is still reading: skip this tick
        self._poll(self.selected, list(self.conditions), self.filter_version)

    @work(thread=True, group="poll")
    def _poll(self, selected: int | None, conditions: list[Any], filter_version: int) -> None:
        try:
            try:
                snapshot = load_snapshot(self.store, selected, now=self.clock, archived=self.archived, where=conditions)
            except Exception as err:  # a store being migrated or a torn read: say so, try again next tick
                self.post_message(StoreUnreadable(f"could not read the store: {type(err).__name__}: {err}"))
                return
            self.post_message(SnapshotLoaded(snapshot, filter_version))
        finally:
            self._polling.release()

    @work(thread=True, group="warm-up")
    def _warm_up(self) -> None:
        """Import what the other screens and the filter need (plotext, the report's reader, PIL, the --where
        parser) in a thread, so the first press of m, p or / does not stall the UI for the imports (about half a
        second)."""
        import PIL.Image  # noqa: F401
        import rich.ansi  # noqa: F401  (the plots' text)
        import textual_plotext.plot  # noqa: F401

        import coldlab.diff  # noqa: F401
        import coldlab.report.collect  # noqa: F401
        import coldlab.search  # noqa: F401  (the filter's parser)
        import coldlab.tui.screens.compare  # noqa: F401
        import coldlab.tui.screens.confirm  # noqa: F401
        import coldlab.tui.screens.plugins  # noqa: F401

        gc.freeze()  # and what the imports made

    @work(thread=True, group="devices", exclusive=True)
    def refresh_devices(self) -> None:
        self.post_message(DevicesLoaded(devices()))

    def on_snapshot_loaded(self, message: SnapshotLoaded) -> None:
        if self.conditions and message.filter_version != self.filter_version:
            self.call_later(self.refresh_data)  # read for an earlier filter: its matches are not this one's
            return
        self.snapshot_version = message.filter_version
        self.apply(message.snapshot)

    @property
    def filter_pending(self) -> bool:
        """The filter's conditions changed and the store has not been read for them yet."""
        return bool(self.conditions) and self.snapshot_version != self.filter_version

    def on_store_unreadable(self, message: StoreUnreadable) -> None:
        self.say(message.error)

    def on_devices_loaded(self, message: DevicesLoaded) -> None:
        self._apply_devices(message.devices)

    def on_said(self, message: Said) -> None:
        self.say(message.text, message.error)

    def on_queue_changed(self, message: QueueChanged) -> None:
        self.refresh_data()

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
        try:
            self.main.show_devices(Text("\n".join(lines)))
        except NoMatches:
            pass

    def visible_rows(self) -> list[RunRow]:
        """The runs the filter shows."""
        snapshot = self.snapshot
        if snapshot is None:
            return []
        rows = snapshot.rows
        if self.conditions and snapshot.matching is not None and not self.filter_pending:
            rows = [r for r in rows if r.id in snapshot.matching]
        elif self.conditions:
            rows = []  # the filter changed since this snapshot was read: the next one brings its matches
        for word in self.words:
            rows = [r for r in rows if word.lower() in r.study.lower() or word.lower() in r.name.lower()]
        return rows

    def apply(self, snapshot: Snapshot) -> None:
        """Render a snapshot (UI thread). While a new filter's matches are being read, the table keeps what
        it shows (rather than emptying for a moment: the poll that reads them was started with the filter)."""
        start = time.perf_counter()
        self.snapshot = snapshot
        if self.filter_pending:
            return
        rows = self.visible_rows()
        if rows and self.selected not in {r.id for r in rows}:
            self.selected = rows[0].id
            self.call_later(self.refresh_data)  # its detail, now rather than at the next tick
        try:
            self.main.apply(snapshot, rows, self.marked)
        except NoMatches:  # a poll that lands while the app is closing
            return
        self.render_devices()
        self.polls += 1
        self.last_refresh_s = snapshot.seconds + time.perf_counter() - start
        timing = f"  ·  refresh {self.last_refresh_s * 1000:.0f} ms" if self.show_timing else ""
        shown = f"{len(rows)} of {len(snapshot.rows)} runs" if self.conditions or self.words else f"{len(snapshot.rows)} runs"
        title = f"{self.home.name}  ·  {shown}{timing}"  # Textual shows titles as plain text
        if title != self.sub_title:
            self._show_sub_title(title)

    def _show_sub_title(self, title: str) -> None:
        """``sub_title = title`` without the repaint of the whole app that assigning it asks for (App.sub_title is
        a reactive with repaint: a full-screen render, 15-25 ms with 200 runs, on every filter change): the
        header's title is a line of fixed size, so only it is updated."""
        from textual.widgets import Header
        from textual.widgets._header import HeaderTitle

        self.set_reactive(App.sub_title, title)
        try:
            headers = list(self.main.query(Header).results(Header))
        except NoMatches:
            headers = []
        for header in headers:
            header.query_one(HeaderTitle).update(header.format_title(), layout=False)

    def select(self, run_id: int) -> None:
        if run_id != self.selected:
            self.selected = run_id
            self.refresh_data()

    def set_filter(self, text: str) -> bool:
        """Apply the filter box's text; a bad expression is shown and the previous filter kept."""
        from coldlab.errors import ColdlabError

        try:
            self.conditions, self.words = parse_filter(text)
        except ColdlabError as err:
            self.say(f"filter: {err}", error=True)
            return False
        self.filter_text = text
        self.filter_version += 1
        hidden = len(self.marked - {r.id for r in self.visible_rows()}) if self.snapshot and not self.conditions else 0
        self.say(f"filter: {text}" if text.strip() else "filter cleared" + (f" ({hidden} marked hidden)" if hidden else ""))
        if self.snapshot:
            self.apply(self.snapshot)
        self.refresh_data()
        return True

    def say(self, message: str, error: bool = False) -> None:
        try:
            self.main.say(message, error)
        except NoMatches:
            pass
        if error:
            self.notify(message, severity="error", timeout=8)

    # ---- marks and compare ------------------------------------------------------------------
    def toggle_mark(self) -> None:
        if self.selected is not None:
            self.marked ^= {self.selected}
            if self.snapshot:
                self.apply(self.snapshot)

    def compare(self) -> None:
        """Compare the marked runs the filter shows (marks it hides are left out, and counted)."""
        from coldlab.tui.screens.compare import CompareScreen

        visible = {r.id for r in self.visible_rows()}
        ids = sorted(self.marked & visible) or ([self.selected] if self.selected in visible else [])
        if not ids:
            self.say("mark runs with space first", error=True)
            return
        self.push_screen(CompareScreen(self.store, ids, left_out=len(self.marked - visible)))

    # ---- queue control (writes through the store's queue functions) ---------------------------
    def _write(self, fn: Callable[..., Any], *args: Any) -> Any:
        from coldlab.errors import ColdlabError

        conn = self.store.connect()
        try:
            return fn(conn, *args) or True
        except ColdlabError as err:
            self.say(str(err), error=True)
            return None
        finally:
            conn.close()

    def selected_row(self) -> RunRow | None:
        return next((r for r in self.visible_rows() if r.id == self.selected), None)

    def confirm_cancel(self) -> None:
        from coldlab.tui.screens.confirm import ConfirmScreen

        row = self.selected_row()
        if row is None:
            return
        what = "its worker checkpoints and stops it" if row.status == "running" else "it will not be run"
        self.push_screen(ConfirmScreen(f"Cancel run {row.id} ({row.name}, {row.status})? {what}."), lambda yes: self.cancel(row.id) if yes else None)

    def cancel(self, run_id: int) -> None:
        from coldlab.store import request_cancel

        if self._write(request_cancel, run_id):
            self.say(f"run {run_id}: cancel requested (the worker checkpoints and stops it)")
            self.refresh_data()

    def confirm_delete(self) -> None:
        from coldlab.tui.screens.confirm import ConfirmScreen

        row = self.selected_row()
        if row is None:
            return
        question = f"Delete run {row.id} ({row.name}) from the store, with its folder (checkpoints, weights, grids)? This cannot be undone."
        self.push_screen(ConfirmScreen(question), lambda yes: self.delete(row.id) if yes else None)

    def delete(self, run_id: int) -> None:
        import shutil

        from coldlab.store.records import remove_runs

        if self._write(remove_runs, [run_id]):
            shutil.rmtree(self.store.run_dir(run_id), ignore_errors=True)
            self.marked.discard(run_id)
            self.say(f"run {run_id} deleted")
            self.refresh_data()

    def resume(self) -> None:
        from coldlab.store import requeue

        if self.selected is not None and self._write(requeue, self.selected):
            self.say(f"run {self.selected} queued again; it resumes from its checkpoint when a worker claims it")
            self.refresh_data()

    def change_priority(self, delta: int) -> None:
        from coldlab.store import set_priority

        row = self.selected_row()
        if row is not None and self._write(set_priority, row.id, row.priority + delta):
            self.say(f"run {row.id}: priority {row.priority + delta} (higher runs first)")
            self.refresh_data()

    def ask_add(self) -> None:
        from coldlab.tui.screens.add import AddScreen

        self.push_screen(AddScreen(), lambda path: self.add_file(path) if path else None)

    def add_file(self, path: str) -> None:
        """Validate a TOML file and queue its runs, off the UI thread (``coldlab run FILE --queue-only``: the
        same checks, errors as one line); the result comes back as a message."""
        self.say(f"{path}: validating and queueing ...")
        self._add_file(path)

    @work(thread=True, group="add")
    def _add_file(self, path: str) -> None:
        self.post_message(queue_file(self.store, path))
        self.post_message(QueueChanged())

    def start_worker(self, device: str) -> None:
        self.workers_started.append(start_detached_worker(self.store, device))
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

    def ask_workers(self) -> None:
        from coldlab.tui.screens.workers import WorkersScreen

        names = [d["device"] for d in self.device_info] or ["cpu"]
        self.push_screen(WorkersScreen(names), self._workers_chosen)

    def _workers_chosen(self, choice: tuple[str, str] | None) -> None:
        if choice:
            action, device = choice
            self.start_worker(device) if action == "start" else self.stop_workers(device)


class DetachedWorker:
    """A ``coldlab worker`` process in its own session (closing the dashboard does not stop it)."""

    def __init__(self, proc: subprocess.Popen[bytes], device: str) -> None:
        self.proc, self.device = proc, device

    def poll(self) -> int | None:
        return self.proc.poll()

    def interrupt(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # the worker checkpoints and marks its run interrupted


def start_detached_worker(home: Home, device: str) -> DetachedWorker:
    """What the ``local`` executor with ``detach = true`` starts (the same :mod:`coldlab.launch` command line
    and log file), without loading the plugins: the dashboard never imports torch."""
    from coldlab.launch import next_worker_log, worker_command

    with open(next_worker_log(home.logs), "a") as log:
        proc = subprocess.Popen[bytes](
            worker_command(str(home.root), home.store, device),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return DetachedWorker(proc, device)


def queue_file(home: Home, path: str) -> Said:
    """``coldlab run PATH --queue-only`` for this store; its last line (the error, or what was queued)."""
    store = ["--store", home.store] if home.store else []
    command = [sys.executable, "-m", "coldlab", "run", path, "--queue-only", "--home", str(home.root), *store]
    try:
        done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    except OSError as err:
        return Said(f"{path}: could not run coldlab: {err}", error=True)
    lines = [line for line in (done.stderr + done.stdout).strip().splitlines() if line.strip()]
    if done.returncode != 0:
        errors = [line for line in lines if "error" in line] or lines or ["failed"]
        return Said(errors[-1].removeprefix("coldlab: error: "), error=True)
    last = lines[-1] if lines else "nothing to run"
    return Said(f"{path}: {last}" + ("; start a worker with w" if "queued" in last else ""))


def run(home: Path | Home, archived: bool = False) -> int:
    from coldlab.tui.widgets.sample_image import prepare

    prepare()  # ask the terminal whether it shows images, before Textual takes it over
    ColdlabApp(home, archived=archived).run()
    return 0
