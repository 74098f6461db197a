"""``coldlab run``: validate, enqueue, start worker processes, and show progress from the store.

Workers are separate processes (``coldlab worker``); this process only reads the store to draw
rich progress bars (one plain line per epoch and evaluation when stderr is not a terminal: nohup,
sbatch, CI), so it can be closed (Ctrl-C checkpoints the runs and marks them interrupted).

A worker that dies (a segfault in a plugin, ``kill -9``) is reported with its exit code or signal;
the run it held counts a death and is queued again, and a new worker takes the dead one's place
while runs remain; a run that kills ``max_attempts`` workers fails ("worker died N times").

Exit code: 0 when every run that could run finished (runs skipped because their data cannot be had
are listed) and at least one run is finished; 1 when a run failed or was interrupted, or nothing
ran; 2 for usage and config errors (raised as ColdlabError).
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from coldlab.config import load_experiments
from coldlab.engine.availability import DataCheck
from coldlab.engine.budget import for_flags
from coldlab.engine.executor_spec import executor_spec
from coldlab.engine.queueing import queue_runs
from coldlab.engine.worker import describe_exit, reclaim_dead_workers, worker_id
from coldlab.errors import ColdlabError
from coldlab.formatting import format_duration, format_number
from coldlab.home import Home
from coldlab.plugins import get_registry
from coldlab.provenance import queued
from coldlab.store import get_run, mark, requeue, worker_died
from coldlab.store.queries import claimable, count_runs, progress_rows, run_events
from coldlab.store.status import DEFAULT_MAX_ATTEMPTS, RESUMABLE

POLL_S = 0.5


def default_home() -> Home:
    return Home.default()


def default_devices(device: str | None, workers: int | None) -> list[str]:
    """One worker per visible GPU, else one on the CPU; ``--device`` pins every worker to one device."""
    import torch

    if device:
        return [device] * (workers or 1)
    gpus = torch.cuda.device_count()
    if gpus:
        n = workers or gpus
        return [f"cuda:{i % gpus}" for i in range(n)]
    return ["cpu"] * (workers or 1)


def _held_elsewhere(row: sqlite3.Row) -> str:
    left = max(0.0, (row["lease_until"] or 0.0) - time.time())
    return f"{row['name']} is running on worker {row['worker']} (its lease runs {left:.0f} s more); not waited for"


def build_executor(path: str, home: Home, executor: str | dict[str, Any] | None, options: list[str] | None) -> Any:
    """The executor that starts the workers (see :mod:`coldlab.engine.executor_spec`), told the store; a
    remote one with a SQLite store is refused."""
    spec: str | dict[str, Any]
    origins: dict[str, tuple[str, ...]]
    if isinstance(executor, dict):
        spec, origins = executor, {"": ("--executor",)}
    else:
        spec, origins = executor_spec(path, executor, options)
    where = origins[""]
    try:
        starter = get_registry().build("executor", spec)
    except ColdlabError as err:
        raise err.at(*origins.get(err.where[0] if err.where else "", where)) from None
    if starter.remote and not home.postgres:
        raise ColdlabError(
            f"the {starter.component_name or 'chosen'} executor runs workers on other machines, which cannot share the SQLite store {home.db}",
            hint="give a PostgreSQL store every node reaches (--store postgresql://USER@HOST/DB, or $COLDLAB_STORE) and a --home every node mounts",
            where=where or ("--executor",),
        )
    starter.store = home.store
    return starter


def enqueue_file(
    path: str,
    home: Home,
    *,
    only: list[str] | None,
    smoke_run: bool,
    epochs: int | None,
    resume: bool,
    console: Console,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> tuple[list[int], list[tuple[str, str]]]:
    """Validate the whole file, queue its runs and check their data; returns the ids this invocation
    waits for and (run name, reason) of the runs skipped because their data cannot be had."""
    runs = load_experiments(path, only=only)
    data = DataCheck(get_registry(), on_download=lambda message: console.print(escape(message)))
    conn = home.connect()
    ids: list[int] = []
    skipped: list[tuple[str, str]] = []

    def prepare(spec: dict[str, Any]) -> dict[str, Any]:
        return for_flags(spec, smoke_run, epochs)

    try:
        for run_id, status in reclaim_dead_workers(conn):
            console.print(f"run {run_id}: its worker process is gone; " + ("queued again" if status == "queued" else status))
        origin = queued(path, get_registry())
        for _run, spec, run_id, _ in list(queue_runs(conn, runs, prepare, where=path, max_attempts=max_attempts, provenance=origin)):
            row = get_run(conn, run_id)
            name = escape(spec["name"])
            if row["status"] in ("queued", "skipped"):
                reasons = data.missing(spec)
                if reasons:
                    mark(conn, run_id, "skipped", "; ".join(reasons))
                    skipped += [(spec["name"], reason) for reason in reasons]
                    continue
                if row["status"] == "skipped" and (
                    row["depends_on"] is None or get_run(conn, row["depends_on"])["status"] in ("queued", "running", "finished")
                ):
                    requeue(conn, run_id)  # its data is here now, or its autoencoder run is queued again (or done)
                row = get_run(conn, run_id)
            if row["status"] in RESUMABLE:
                if not resume:
                    console.print(f"[yellow]{name} is {row['status']}[/yellow]: pass --resume to continue it from its checkpoint")
                    continue
                requeue(conn, run_id)
            elif row["status"] == "finished":
                console.print(f"{name} already finished (run {run_id})")
                continue
            elif row["status"] == "running":
                console.print(escape(_held_elsewhere(row)))
                continue
            elif row["status"] == "skipped":
                console.print(f"[yellow]{name} is skipped[/yellow]: {escape(row['error'] or '')}")
                continue
            ids.append(run_id)
    finally:
        conn.close()
    return ids, skipped


class Watcher:
    """Follows the runs of this invocation in the store: progress bars on a terminal, else one
    plain line per epoch, evaluation and ending of each run."""

    def __init__(self, home: Home, ids: list[int], console: Console) -> None:
        self.home, self.ids, self.console = home, ids, console
        self.conn = home.connect(readonly=True)
        self.seen_epoch: dict[int, int] = {}
        self.seen_status: dict[int, str] = {}
        self.last_event = 0

    def plain(self) -> None:
        """Lines for what happened since the last call (no bars: stderr is a file or a pipe): a run
        starting, its epochs, its evaluations, then how it ended."""
        stamp = time.strftime("%H:%M:%S")

        def say(text: str) -> None:
            self.console.print(escape(f"{stamp} {text}"), highlight=False)

        rows = progress_rows(self.conn, self.ids)
        for r in rows:
            label = f"run {r['id']} {r['name']}"
            if r["status"] == "running" and self.seen_status.get(r["id"]) != "running":
                say(f"{label}: running on {r['device']} (attempt {r['attempts']})")
            if r["finished_epoch"] is not None and r["finished_epoch"] > self.seen_epoch.get(r["id"], 0):
                self.seen_epoch[r["id"]] = r["finished_epoch"]
                losses = ", ".join(f"{k} {format_number(r[k])}" for k in ("train_loss", "val_loss") if r[k] is not None)
                say(f"{label}: epoch {r['finished_epoch']}/{r['epochs']} {losses}")
        for e in run_events(self.conn, self.ids, self.last_event):
            self.last_event = e["id"]
            shown = ", ".join(f"{k} {format_number(v) if v is not None else 'unavailable'}" for k, v in e["values"].items())
            say(f"run {e['run_id']} {e['name']}: evaluation at epoch {e['epoch']}: {shown}")
        for r in rows:
            if r["status"] not in ("queued", "running") and self.seen_status.get(r["id"]) != r["status"]:
                took = format_duration(r["run_seconds"]) if r["run_seconds"] else ""
                say(
                    f"run {r['id']} {r['name']}: {r['status']}"
                    + (f" in {took}" if took else "")
                    + (f": {r['error']}" if r["error"] and r["status"] != "finished" else "")
                )
            self.seen_status[r["id"]] = r["status"]

    def close(self) -> None:
        self.conn.close()


class Workers:
    """The worker processes of this invocation; a dead one is reported, its run charged with the
    death, and it is replaced while runs of this invocation can still be claimed."""

    def __init__(self, starter: Any, home: Home, devices: list[str], ids: list[int], console: Console) -> None:
        self.starter, self.home, self.ids, self.console = starter, home, ids, console
        self.handles = list(starter.start(home.root, devices, home.logs))
        self.reported: set[int] = set()

    def alive(self) -> bool:
        return any(h.poll() is None for h in self.handles)

    def check(self) -> None:
        for handle in list(self.handles):
            code = handle.poll()
            if code is None or id(handle) in self.reported:
                continue
            self.reported.add(id(handle))
            device = getattr(handle, "device", "?")
            pid = getattr(handle, "pid", None)
            why = describe_exit(code)
            charged: list[tuple[int, str]] = []
            conn = self.home.connect()
            try:
                prefix = getattr(handle, "worker_prefix", None) or (worker_id("", pid) if pid is not None else None)  # "HOST:PID:"
                if prefix:
                    charged = worker_died(conn, prefix, why, prefix=True)
                more = claimable(conn, self.ids) > 0
            finally:
                conn.close()
            if not charged and code in (0, 1):  # it ended on its own: the queue was empty (1: a run did not finish)
                continue
            runs = ", ".join(f"run {run_id} {'queued again' if status == 'queued' else status}" for run_id, status in charged)
            self.console.print(
                f"[red]worker on {escape(str(device))} {why}[/red]"
                + (f" ({runs})" if runs else "")
                + f"; its log is in {escape(str(self.home.logs))}"
            )
            if charged and more:  # it died holding a run: another worker takes over the queue
                self.handles += list(self.starter.start(self.home.root, [device], self.home.logs))

    def interrupt(self) -> None:
        for h in self.handles:
            if h.poll() is None:
                h.interrupt()
        for h in self.handles:
            h.wait()


class Bars:
    """One rich progress bar per active run plus one for the queue (stderr is a terminal)."""

    def __init__(self, console: Console, ids: list[int]) -> None:
        columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"), TimeRemainingColumn())
        self.progress = Progress(*columns, console=console, transient=False)
        self.ids = ids
        self.tasks: dict[int, Any] = {}
        self.queue_task = self.progress.add_task("queue", total=len(ids), info="")

    def draw(self, rows: list[dict[str, Any]]) -> None:
        done = sum(r["status"] not in ("queued", "running") for r in rows)
        self.progress.update(self.queue_task, completed=done, info=f"{done}/{len(self.ids)} done")
        for r in rows:
            if r["status"] == "running" or r["id"] in self.tasks:
                shown = min(r["epoch"] + 1, r["epochs"]) if r["status"] == "running" else r["epoch"]
                info = f"epoch {shown}/{r['epochs']} step {r['step']}" + (f" loss {r['loss']:.4f}" if r["loss"] is not None else "")
                if r["status"] not in ("queued", "running"):
                    info += f" \\[{r['status']}]"
                total = max(r["total_steps"], 1)
                if r["id"] not in self.tasks:
                    self.tasks[r["id"]] = self.progress.add_task(escape(f"{r['name']} ({r['device']})"), total=total, info=info)
                completed = total if r["status"] == "finished" else r["step"]
                self.progress.update(self.tasks[r["id"]], total=total, completed=completed, info=info)


def watch(home: Home, ids: list[int], workers: Workers, console: Console) -> None:
    """Draw one bar per active run plus the queue (or plain lines) until every worker has exited."""
    watcher = Watcher(home, ids, console)
    bars = Bars(console, ids) if console.is_terminal else None

    def show() -> None:
        if bars is not None:
            bars.draw(progress_rows(watcher.conn, ids))
        else:
            watcher.plain()

    try:
        if bars is not None:
            bars.progress.start()
        while True:
            workers.check()
            show()
            if not workers.alive():
                workers.check()  # a replacement for a worker that died may have started
                if not workers.alive():
                    show()
                    return
            time.sleep(POLL_S)
    finally:
        if bars is not None:
            bars.progress.stop()
        watcher.close()


def summarise(home: Home, ids: list[int], skipped: list[tuple[str, str]], path: str, console: Console) -> int:
    """The closing lines of ``coldlab run`` and its exit code."""
    conn = home.connect(readonly=True)
    try:
        rows = [get_run(conn, i) for i in ids]
        done_before = count_runs(conn, "finished")
    finally:
        conn.close()
    bad = [r for r in rows if r["status"] != "finished"]
    for r in bad:
        console.print(f"[red]{escape(r['name'])}[/red] {r['status']}" + (f": {escape(r['error'])}" if r["error"] else ""))
    if skipped:
        reasons: dict[str, list[str]] = {}
        for name, reason in skipped:
            reasons.setdefault(reason, []).append(name)
        for reason, names in reasons.items():
            console.print(f"[yellow]skipped {len(names)} run(s)[/yellow] ({escape(', '.join(names))}): {escape(reason)}")
    if any(r["status"] == "interrupted" for r in bad):
        where = f" --home {home.root}" if home.root != Home.default().root else ""
        where += f" --store {home.store_label}" if home.store and home.store != os.environ.get("COLDLAB_STORE") else ""
        console.print(escape(f"continue with: coldlab run {path} --resume{where}"))
    finished = len(rows) - len(bad)
    n_skipped = len({name for name, _ in skipped})
    console.print(
        escape(
            f"{finished}/{len(rows)} runs finished"
            + (f", {n_skipped} skipped (data missing)" if skipped else "")
            + f"; store: {home.store_label}; worker logs: {home.logs}"
        )
    )
    if bad:
        return 1
    if finished == 0:
        if not done_before or skipped:
            console.print("[red]nothing ran[/red]" + (": every run was skipped" if skipped else ""))
            return 1
    return 0


def run_file(
    path: str,
    *,
    home: Home | str | os.PathLike[str],
    only: list[str] | None = None,
    smoke_run: bool = False,
    epochs: int | None = None,
    workers: int | None = None,
    device: str | None = None,
    resume: bool = False,
    executor: str | dict[str, Any] | None = None,
    executor_options: list[str] | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    queue_only: bool = False,
) -> int:
    """The ``coldlab run`` command; returns the exit code (see the module's docstring).

    ``executor`` (a name or table; default: the file's ``[executor]`` table, else ``local``) is the
    executor plugin that starts the workers; ``executor_options`` are ``KEY=VALUE`` parameters of it.
    ``queue_only``: queue the runs and return, starting no worker (workers started elsewhere take them:
    ``coldlab worker --store URL`` on each workstation, ``ray job submit -- coldlab worker ...``).
    """
    home = home if isinstance(home, Home) else Home(home)
    console = Console(stderr=True, soft_wrap=True)  # long lines (paths, reasons) stay whole in logs
    starter = build_executor(path, home, executor, executor_options)
    ids, skipped = enqueue_file(path, home, only=only, smoke_run=smoke_run, epochs=epochs, resume=resume, console=console, max_attempts=max_attempts)
    if not ids:
        if skipped:
            return summarise(home, [], skipped, path, console)
        console.print("nothing to run")
        return 0
    if queue_only:
        where = f"--home {home.root}" + (f" --store {home.store_label}" if home.store else "")
        console.print(escape(f"queued {len(ids)} run(s) ({', '.join(map(str, ids))}); start workers with: coldlab worker {where}"))
        return 0
    devices = [device or "auto"] * (workers or 1) if starter.remote else default_devices(device, workers)
    started = Workers(starter, home, devices, ids, console)
    try:
        watch(home, ids, started, console)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: checkpointing the running runs...[/yellow]")
        started.interrupt()
    return summarise(home, ids, skipped, path, console)


__all__ = ["default_devices", "default_home", "enqueue_file", "queue_runs", "run_file"]
